"""`storepulse alerts`: a tenant's alert rules, and the outbox."""

from __future__ import annotations

import click

from storepulse_cli.shared import warehouse_engine


@click.group()
def alerts() -> None:
    """Alert rules per tenant (recipients, thresholds, quiet hours, cap) and the outbox."""


@alerts.command("set")
@click.argument("tenant_id")
@click.option("--email", "emails", multiple=True, help="Email recipient (repeatable).")
@click.option("--sms", "phones", multiple=True, help="SMS recipient, E.164 (repeatable).")
@click.option("--email-min", default="medium", show_default=True,
              type=click.Choice(["low", "medium", "high", "critical"]),
              help="Lowest anomaly severity that is emailed.")
@click.option("--sms-min", default="critical", show_default=True,
              type=click.Choice(["low", "medium", "high", "critical"]),
              help="Lowest anomaly severity that is sent by SMS.")
@click.option("--quiet", default=None, metavar="HH:MM-HH:MM",
              help="SMS quiet hours in the tenant's time zone (email still goes).")
@click.option("--cap", default=6, show_default=True, help="Messages per recipient per hour.")
@click.option("--stale-after-hours", default=72, show_default=True,
              help="Alert when no sales file arrived for this long.")
@click.option("--dashboard-url", default=None, help="Link put in alert emails.")
@click.option("--recent-days", default=7, show_default=True,
              help="Send anomalies on the tenant's latest judged day and the days before it, "
                   "this many in all; older ones (a first load of history, a rescan's finds) "
                   "stay in the dashboards and are recorded as suppressed.")
def alerts_set(tenant_id: str, emails: tuple[str, ...], phones: tuple[str, ...],
               email_min: str, sms_min: str, quiet: str | None, cap: int,
               stale_after_hours: int, dashboard_url: str | None, recent_days: int) -> None:
    """Set TENANT's alert rules (replacing the previous ones)."""
    from datetime import time, timedelta

    from alerting.rules import AlertRules, save_rules
    from storepulse.tenants import get_tenant

    engine = warehouse_engine()
    get_tenant(engine, tenant_id)  # an unknown tenant is one line, not a foreign-key trace
    quiet_start = quiet_end = None
    if quiet:
        try:
            start, end = quiet.split("-")
            quiet_start, quiet_end = time.fromisoformat(start), time.fromisoformat(end)
        except ValueError as exc:
            raise click.BadParameter(f"{quiet!r} is not HH:MM-HH:MM", param_hint="--quiet") \
                from exc
    save_rules(engine, AlertRules(
        tenant_id, email_recipients=emails, sms_recipients=phones, email_min_severity=email_min,
        sms_min_severity=sms_min, quiet_hours_start=quiet_start, quiet_hours_end=quiet_end,
        max_messages_per_hour=cap, stale_after=timedelta(hours=stale_after_hours),
        dashboard_url=dashboard_url, recent_days=recent_days))
    click.echo(f"{tenant_id}: {len(emails)} email and {len(phones)} SMS recipient(s); "
               f"email from {email_min}, SMS from {sms_min}; anomalies of the last "
               f"{recent_days} day(s) of data")


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
