"""`storepulse alerts`: a tenant's alert rules, and the outbox."""

from __future__ import annotations

import click

from storepulse_cli.shared import warehouse_engine

# alerting.rules.SEVERITIES, spelled out: the command line imports libraries only when a
# command runs
SEVERITIES = ("low", "medium", "high", "critical")


@click.group()
def alerts() -> None:
    """Alert rules per tenant (recipients, thresholds, quiet hours, cap) and the outbox."""


@alerts.command("set")
@click.argument("tenant_id")
@click.option("--email", "emails", multiple=True,
              help="Email recipient (repeatable); replaces the email recipients.")
@click.option("--no-email", is_flag=True, help="Remove every email recipient.")
@click.option("--sms", "phones", multiple=True,
              help="SMS recipient, E.164 (repeatable); replaces the SMS recipients.")
@click.option("--no-sms", is_flag=True, help="Remove every SMS recipient.")
@click.option("--email-min", type=click.Choice(SEVERITIES),
              help="Lowest anomaly severity that is emailed (first set: medium).")
@click.option("--sms-min", type=click.Choice(SEVERITIES),
              help="Lowest anomaly severity that is sent by SMS (first set: critical).")
@click.option("--quiet", metavar="HH:MM-HH:MM|off",
              help="SMS quiet hours in the tenant's time zone (email still goes); off: none.")
@click.option("--cap", type=int,
              help="Messages per recipient per hour (first set: 6).")
@click.option("--stale-after-hours", type=int,
              help="Alert when no sales file arrived for this long (first set: 72).")
@click.option("--dashboard-url", help="Link put in alert emails (empty: none).")
@click.option("--recent-days", type=int,
              help="Send anomalies on the tenant's latest judged day and the days before it, "
                   "this many in all; older ones (a first load of history, a rescan's finds) "
                   "stay in the dashboards and are recorded as suppressed (first set: 7).")
def alerts_set(tenant_id: str, emails: tuple[str, ...], no_email: bool,
               phones: tuple[str, ...], no_sms: bool, email_min: str | None,
               sms_min: str | None, quiet: str | None, cap: int | None,
               stale_after_hours: int | None, dashboard_url: str | None,
               recent_days: int | None) -> None:
    """Set TENANT's alert rules: what is given changes, the rest stays as it was (a tenant
    without rules starts from the defaults)."""
    from dataclasses import replace
    from datetime import time, timedelta

    from alerting.rules import AlertRules, load_rules, save_rules
    from storepulse.tenants import get_tenant

    engine = warehouse_engine()
    get_tenant(engine, tenant_id)  # an unknown tenant is one line, not a foreign-key trace
    with engine.connect() as conn:
        rules = load_rules(conn, tenant_id) or AlertRules(tenant_id)
    changes: dict = {}
    if emails or no_email:
        changes["email_recipients"] = () if no_email else emails
    if phones or no_sms:
        changes["sms_recipients"] = () if no_sms else phones
    if quiet == "off":
        changes.update(quiet_hours_start=None, quiet_hours_end=None)
    elif quiet:
        try:
            start, end = quiet.split("-")
            changes.update(quiet_hours_start=time.fromisoformat(start),
                           quiet_hours_end=time.fromisoformat(end))
        except ValueError as exc:
            raise click.BadParameter(f"{quiet!r} is not HH:MM-HH:MM or off",
                                     param_hint="--quiet") from exc
    given = {"email_min_severity": email_min, "sms_min_severity": sms_min,
             "max_messages_per_hour": cap, "recent_days": recent_days,
             "stale_after": None if stale_after_hours is None
             else timedelta(hours=stale_after_hours)}
    changes.update({k: v for k, v in given.items() if v is not None})
    if dashboard_url is not None:
        changes["dashboard_url"] = dashboard_url or None
    rules = replace(rules, **changes)
    save_rules(engine, rules)
    quiet_hours = (f"{rules.quiet_hours_start:%H:%M}-{rules.quiet_hours_end:%H:%M}"
                   if rules.quiet_hours_start else "none")
    click.echo(f"{tenant_id}: email {', '.join(rules.email_recipients) or 'nobody'} from "
               f"{rules.email_min_severity}; SMS {', '.join(rules.sms_recipients) or 'nobody'} "
               f"from {rules.sms_min_severity}, quiet hours {quiet_hours}; at most "
               f"{rules.max_messages_per_hour} per hour; anomalies of the last "
               f"{rules.recent_days} day(s) of data; stale after "
               f"{rules.stale_after / timedelta(hours=1):g} hours without a file")


@alerts.command("outbox")
def alerts_outbox() -> None:
    """Count alert deliveries by status (pending, sent, failed, not_configured, suppressed:
    anomalies on days before the tenant's recent days, not sent)."""
    from alerting.delivery import outbox_status

    status = outbox_status(warehouse_engine())
    if not status:
        click.echo("the outbox is empty")
    for name, count in sorted(status.items()):
        click.echo(f"{name:<16} {count:>8,}")
