"""The ``storepulse`` command line."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import click

from storepulse.errors import StorePulseError

POSITIVE = click.FloatRange(min=0, min_open=True)


def _engine():
    from storepulse.warehouse import get_engine

    return get_engine()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="storepulse")
def cli() -> None:
    """StorePulse: retail analytics for merchants with many stores.

    The warehouse is DATABASE_URL when set, else an embedded PostgreSQL in
    $STOREPULSE_HOME (default ./.storepulse).
    """


@cli.command()
@click.option("--scale", default=1.0, show_default=True, type=POSITIVE,
              help="Sample size multiplier (order volume per store).")
@click.option("--seed", default=42, show_default=True, help="Seed of the sample generator.")
@click.option("--regenerate", is_flag=True, help="Write the sample data again even if present.")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Last day of the sample data, YYYY-MM-DD (default: yesterday, so the "
                   "forecasts start today).")
def demo(scale: float, seed: int, regenerate: bool, as_of) -> None:
    """Set up the database, generate sample data and let the platform's own sensors and
    automation run the whole pipeline, in this process."""
    from storepulse_cli.demo import run_demo

    run_demo(scale=scale, seed=seed, regenerate=regenerate,
             as_of=as_of.date() if as_of else None, echo=click.echo)


@cli.group()
def db() -> None:
    """Database set-up and connection."""


@db.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations (idempotent)."""
    from storepulse.migrate import migrate

    applied = migrate(_engine())
    if applied:
        for m in applied:
            click.echo(f"applied {m.version:04d}_{m.name}")
    else:
        click.echo("database is up to date")


@db.command("url")
def db_url() -> None:
    """Print the warehouse URL in use (password hidden)."""
    from storepulse.warehouse import resolve_database_url

    click.echo(resolve_database_url().render_as_string(hide_password=True))


@cli.group()
def tenants() -> None:
    """Register and list tenants (merchants)."""


@tenants.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="Display name of the merchant.")
@click.option("--timezone", "timezone_", default="UTC", show_default=True,
              help="IANA time zone of the tenant's stores.")
@click.option("--currency", default="USD", show_default=True, help="ISO 4217 currency code.")
@click.option("--country", default="US", show_default=True,
              help="ISO 3166 country code (holidays in forecasts).")
@click.option("--password-env", default=None, metavar="VAR",
              help="Environment variable holding the role's password "
                   "(default STOREPULSE_TENANT_PASSWORD_<SLUG>); generated when unset.")
def tenants_add(slug: str, name: str, timezone_: str, currency: str, country: str,
                password_env: str | None) -> None:
    """Register tenant SLUG: its row, login role, landing folder and Dagster partition."""
    from storepulse.settings import load_settings
    from storepulse.tenants import Tenant, add_tenant, refuse_other_details

    settings = load_settings()
    variable = password_env or f"STOREPULSE_TENANT_PASSWORD_{slug.upper()}"
    engine = _engine()
    wanted = Tenant(slug, name, timezone_, currency, country)
    refuse_other_details(engine, wanted)
    result = add_tenant(engine, wanted, landing_dir=settings.landing_dir,
                        password=os.environ.get(variable))
    click.echo(f"tenant {slug} {'registered' if result.created else 'already registered'}; "
               f"database role {result.role}")
    from orchestration.partitions import register_tenant_partition

    if register_tenant_partition(slug):
        click.echo(f"Dagster partition '{slug}' registered")
    else:
        click.echo("DAGSTER_HOME is unset: the landing sensor registers the Dagster partition "
                   "on its next tick")
    if result.generated_password:
        click.echo(f"generated password for {result.role} (shown once, store it now): "
                   f"{result.generated_password}")


@tenants.command("remove")
@click.argument("slug")
@click.option("--purge", is_flag=True,
              help="Also delete every row and landing file of the tenant (GDPR erasure).")
@click.confirmation_option(prompt="Remove the tenant's database role (and data, with --purge)?")
def tenants_remove(slug: str, purge: bool) -> None:
    """Revoke and drop tenant SLUG's role; with --purge erase its data, in one transaction."""
    from storepulse.settings import load_settings
    from storepulse.tenants import remove_tenant

    removed = remove_tenant(_engine(), slug, purge=purge,
                            landing_dir=load_settings().landing_dir)
    click.echo(f"tenant {slug}: role {removed.role or '(none)'} dropped")
    for table, count in sorted(removed.counts.items()):
        click.echo(f"  {table:<36} {count:>10,} rows deleted")


@tenants.command("limits")
@click.argument("slug")
@click.option("--max-unit-price", type=float, default=None,
              help="Highest unit price the gate accepts (default 10,000).")
@click.option("--currencies", default=None, metavar="EUR,USD",
              help="Currencies the gate accepts, comma-separated (empty: the tenant's own).")
def tenants_limits(slug: str, max_unit_price: float | None, currencies: str | None) -> None:
    """Show or change the limits TENANT's raw quality gate applies (audited). A batch with a
    few legitimate prices above the limit (marketplace fees, manual lines) loads once the
    limit is raised, instead of being released whole."""
    from storepulse.tenants import set_gate_limits

    accepted = None if currencies is None else tuple(
        c.strip().upper() for c in currencies.split(",") if c.strip())
    limits = set_gate_limits(_engine(), slug, max_unit_price, accepted)
    click.echo(f"tenant {slug}: max unit price {limits.max_unit_price:,.2f}; currencies "
               f"{', '.join(limits.accepted_currencies) or 'its own only'}")


@tenants.command("native-sql")
@click.argument("slug")
@click.option("--on/--off", "enabled", required=True,
              help="Allow or forbid native SQL questions for the tenant's Metabase group.")
def tenants_native_sql(slug: str, enabled: bool) -> None:
    """Let tenant SLUG's managers write SQL in Metabase on their own database (off by
    default). Their SQL still sees only their rows, but it can read table sizes and planner
    estimates of shared tables and change session settings: see SECURITY.md. Applied by the
    next `storepulse dashboards sync`."""
    from storepulse.tenants import set_native_sql

    set_native_sql(_engine(), slug, enabled)
    click.echo(f"tenant {slug}: native SQL in Metabase {'on' if enabled else 'off'} "
               "(applied by the next `storepulse dashboards sync`)")


@tenants.command("list")
def tenants_list() -> None:
    """List registered tenants."""
    from storepulse.tenants import list_tenants

    rows = list_tenants(_engine())
    if not rows:
        click.echo("no tenants registered")
    for t in rows:
        click.echo(f"{t.tenant_id:<20} {t.name:<28} {t.timezone:<20} {t.currency} {t.country_code}")


@cli.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--tenant", "tenant_id", required=True, help="Tenant the file belongs to.")
@click.option("--source", default=None,
              help="Spec name (default: the shipped or folder spec whose columns fit the file).")
def ingest(path: Path, tenant_id: str, source: str | None) -> None:
    """Load PATH (a file, or a folder of files) for TENANT with COPY, exactly once. The batch
    reaches the marts once `storepulse quality check TENANT` has passed it."""
    from tqdm import tqdm

    from ingestion.landing import given_files
    from ingestion.loader import load_file, reject_file
    from storepulse.tenants import record_manual_ingest

    engine = _engine()
    files = given_files(path, tenant_id, source)
    batch_id = f"cli-{uuid.uuid4().hex[:12]}"  # what `storepulse quality check` validates
    failed = 0
    total_bytes = sum(f.path.stat().st_size for f in files)
    with tqdm(total=total_bytes, desc=f"{len(files)} file(s)", unit="B", unit_scale=True,
              disable=not sys.stderr.isatty()) as overall:
        for item in files:
            if item.problem:  # that file is rejected, with why; the others go on
                result = reject_file(engine, item.path, tenant_id, item.source, item.target,
                                     item.path.name, item.problem, batch_id)
            else:
                if not source:
                    click.echo(f"{item.path.name}: spec '{item.spec.name}' (its columns fit "
                               "the file)")
                with tqdm(desc=item.path.name, unit=" rows", unit_scale=True, leave=False,
                          disable=not sys.stderr.isatty()) as bar:
                    def progress(read: int, _quarantined: int, bar=bar) -> None:
                        bar.update(read - bar.n)

                    result = load_file(engine, item.path, tenant_id, item.spec,
                                       source=item.source, progress=progress,
                                       batch_id=batch_id)
            overall.update(item.path.stat().st_size)
            click.echo(result.message)
            record_manual_ingest(engine, result)
            # a file of which nothing loaded is a failure, whether rejected or all quarantined
            failed += result.status == "rejected" or (
                result.status == "loaded" and result.rows_read > 0 and result.rows_loaded == 0)
    if failed:
        click.echo(f"{failed} of {len(files)} file(s) loaded nothing; see the reasons above "
                   "and `raw.quarantine`", err=True)
        raise SystemExit(2)
    click.echo(f"batch {batch_id}: run `storepulse quality check {tenant_id}` to check and "
               "publish it")


@cli.group()
def specs() -> None:
    """Source specs: how a POS export maps onto StorePulse's tables."""


@specs.command("check")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", default=None,
              help="Spec name, or a spec.yaml path (default: the spec whose columns fit).")
@click.option("--tenant", "tenant_id", default=None,
              help="Check as this registered tenant: its currency, time zone and store "
                   "catalogue (default: placeholders, and no catalogue check).")
@click.option("--rows", default=5, show_default=True, type=click.IntRange(min=0),
              help="How many parsed rows to show.")
def specs_check(path: Path, source: str | None, tenant_id: str | None, rows: int) -> None:
    """Dry run: read PATH with a spec and show the mapping, the first parsed rows and what
    would be quarantined. Writes nothing. Exit 2 when nothing would load."""
    from tabulate import tabulate

    from ingestion.dry_run import PLACEHOLDER_TENANT, describe, dry_run
    from ingestion.readers import detect_spec
    from ingestion.spec import load_spec, spec_for_source

    if source and source.endswith((".yaml", ".yml")):
        spec = load_spec(Path(source))
    else:
        spec = spec_for_source(source, path.parent) if source else detect_spec(path)
    tenant, known = PLACEHOLDER_TENANT, None
    if tenant_id:
        from ingestion.loader import known_stores, tenant_info

        with _engine().connect() as conn:
            tenant = tenant_info(conn, tenant_id)
            known = known_stores(conn, tenant_id) if spec.target == "sales_lines" else None
    click.echo(f"spec: {spec.name} ({spec.format} -> {spec.contract.table})"
               + (f", from {spec.path}" if spec.path else ""))
    click.echo(tabulate([(name, describe(m)) for name, m in spec.columns.items()],
                        headers=["column", "comes from"]))
    report = dry_run(path, spec, tenant, known, keep=rows)
    if report.rejected:
        click.echo(f"\nthe file would be rejected: {report.rejected}")
        raise SystemExit(2)
    if report.first_rows:
        click.echo(f"\nfirst {len(report.first_rows)} row(s) as they would load:")
        click.echo(tabulate(report.first_rows, headers="keys"))
    if report.quarantined:
        click.echo(f"\nwould quarantine (first {len(report.quarantined)}):")
        click.echo(tabulate([(r.line_number, r.field or "", r.reason)
                             for r in report.quarantined],
                            headers=["line", "field", "reason"]))
    notes = [] if tenant_id else [" (no --tenant: tenant fields are placeholders and stores "
                                  "are not checked against a catalogue)"]
    click.echo(f"\n{report.rows_read:,} rows read: {report.rows_loadable:,} would load, "
               f"{report.rows_quarantined:,} would be quarantined{''.join(notes)}; nothing "
               "was written")
    if report.rows_read and not report.rows_loadable:
        raise SystemExit(2)


@specs.command("schema")
def specs_schema() -> None:
    """Print the JSON Schema of spec files (for editors and CI)."""
    from ingestion.spec import SCHEMA_PATH

    click.echo(SCHEMA_PATH.read_text(), nl=False)


@cli.command()
def status() -> None:
    """Per tenant: the last file loaded, rejected and held files, files waiting in its
    landing folder (and a hint when nothing has loaded them for long), the quality gate's last
    result, how far the marts, forecasts and anomaly scan reach, and alerts waiting to be sent, not
    delivered this week (with the latest reason) or reaching nobody; first, landing folders
    that name no registered tenant."""
    from ingestion.landing import unregistered_folders, unregistered_message, waiting_message
    from storepulse.settings import load_settings
    from storepulse.status import tenant_status

    engine = _engine()
    rows = tenant_status(engine)
    landing_dir = load_settings().landing_dir
    unregistered = unregistered_folders(landing_dir, {t.tenant_id for t in rows})
    for folder, files in unregistered.items():
        click.echo(f"warning: {unregistered_message(folder, files)}")
    if not rows:
        click.echo("no tenants registered")
        return

    def when(value) -> str:
        return f"{value:%Y-%m-%d %H:%M}" if value else "-"

    for t in rows:
        click.echo(f"{t.tenant_id}")
        click.echo(f"  last file   {t.last_file or '-'} ({when(t.last_file_at)}); "
                   f"{t.rejected_files} rejected, {t.held_files} held")
        waiting = waiting_message(engine, landing_dir, t.tenant_id)
        if waiting:
            click.echo(f"  waiting     {waiting}")
        click.echo(f"  gate        {t.last_gate or 'never run'}")
        click.echo(f"  marts       through {t.marts_through or '-'}")
        click.echo(f"  forecasts   made {when(t.forecasts_made)}, from {t.forecasts_from or '-'}")
        click.echo(f"  anomalies   {t.anomalies_line()}")
        nobody = "" if t.alert_recipients else (
            f"; no recipients, so anomalies reach nobody: storepulse alerts set {t.tenant_id} "
            "--email ...")
        undelivered = "" if not t.alerts_undelivered else (
            f", {t.alerts_undelivered} not delivered in the last 7 days "
            f"(latest: {t.last_undelivered})")
        click.echo(f"  alerts      {t.alerts_pending} pending{undelivered}{nobody}")


@cli.command()
@click.argument("tenant_id")
def forecast(tenant_id: str) -> None:
    """Refresh TENANT's forecasts and anomalies now, from the marts as they are (what the
    automation does after each new batch and every morning), as a Dagster run."""
    import contextlib
    import io

    from dagster import DagsterInstance

    from orchestration.definitions import defs
    from orchestration.pipeline import refresh_tenant_ml
    from storepulse.tenants import get_tenant

    get_tenant(_engine(), tenant_id)
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    # Dagster's own output (its first-use telemetry notice included) stays off the terminal
    with contextlib.redirect_stdout(io.StringIO()):
        instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else \
            DagsterInstance.ephemeral()
        with instance:
            run = refresh_tenant_ml(defs, instance, tenant_id, quiet)
    click.echo(f"{run.label}: {'done' if run.success else 'FAILED'} in {run.seconds:.1f}s "
               f"(run {run.run_id})")
    if not run.success:
        raise SystemExit(1)


@cli.group()
def quality() -> None:
    """Great Expectations gates: check a tenant's latest batch, list and release holds."""


@quality.command("check")
@click.argument("tenant_id")
def quality_check(tenant_id: str) -> None:
    """Validate TENANT's latest loaded batch (raw suite); hold it if an error rule fails."""
    from quality.gate import validate_batch
    from quality.suites import RAW_SALES_LINES
    from storepulse.tenants import get_tenant

    engine = _engine()
    get_tenant(engine, tenant_id)
    outcome = validate_batch(engine, RAW_SALES_LINES, tenant_id,
                             run_id=f"cli-{uuid.uuid4().hex[:12]}", asset="raw/sales_lines")
    click.echo(f"{tenant_id}: batch of {len(outcome.file_ids)} file(s) {list(outcome.file_ids)}")
    for rule in outcome.rules:
        mark = "ok  " if rule.success else ("FAIL" if rule.severity == "error" else "warn")
        click.echo(f"  {mark} {rule.summary()}")
    if outcome.hold_action != "none":
        click.echo(f"batch {outcome.hold_action}")
    if outcome.blocking_failures:
        raise SystemExit(1)


@quality.command("holds")
@click.option("--tenant", "tenant_id", default=None, help="Only this tenant's held files.")
def quality_holds(tenant_id: str | None) -> None:
    """List files held out of the marts by a failed blocking check."""
    from quality.gate import list_holds
    from storepulse.tenants import get_tenant

    engine = _engine()
    if tenant_id:
        get_tenant(engine, tenant_id)  # an unknown tenant is a mistake, not "no held files"
    holds = list_holds(engine, tenant_id)
    if not holds:
        click.echo("no held files")
    for hold in holds:
        click.echo(f"{hold.tenant_id:<16} file {hold.file_id:<6} {hold.file_name:<28} "
                   f"held {hold.held_at:%Y-%m-%d %H:%M}  {hold.reason}")


@quality.command("release")
@click.argument("tenant_id")
@click.option("--file-id", "file_ids", type=int, multiple=True,
              help="Release only these files (default: all of the tenant's held files).")
def quality_release(tenant_id: str, file_ids: tuple[int, ...]) -> None:
    """Let TENANT's held files through to staging and the marts (recorded in ops.audit_log)."""
    from quality.gate import release_holds

    count = release_holds(_engine(), tenant_id, list(file_ids) or None)
    click.echo(f"{tenant_id}: {count} file(s) released; the next dbt build publishes them")


@cli.group()
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
def alerts_set(tenant_id: str, emails: tuple[str, ...], phones: tuple[str, ...],
               email_min: str, sms_min: str, quiet: str | None, cap: int,
               stale_after_hours: int, dashboard_url: str | None) -> None:
    """Set TENANT's alert rules (replacing the previous ones)."""
    from datetime import time, timedelta

    from alerting.rules import AlertRules, save_rules
    from storepulse.tenants import get_tenant

    engine = _engine()
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
        dashboard_url=dashboard_url))
    click.echo(f"{tenant_id}: {len(emails)} email and {len(phones)} SMS recipient(s); "
               f"email from {email_min}, SMS from {sms_min}")


@alerts.command("outbox")
def alerts_outbox() -> None:
    """Count alert deliveries by status (pending, sent, failed, not_configured)."""
    from alerting.delivery import outbox_status

    status = outbox_status(_engine())
    if not status:
        click.echo("the outbox is empty")
    for name, count in sorted(status.items()):
        click.echo(f"{name:<16} {count:>8,}")


@cli.group()
def dashboards() -> None:
    """Metabase dashboards as code (specs in dashboards/specs/)."""


@dashboards.command("sync")
@click.option("--tenant", "tenant_id", default=None, help="Only this tenant's space.")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--prune", is_flag=True, help="Archive managed cards no longer in the specs.")
@click.option("--setup", is_flag=True,
              help="First wait for Metabase and complete its first-time setup (creates the "
                   "admin from METABASE_ADMIN_*) if nobody has yet.")
@click.option("--specs", "specs_dir", default=None,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of dashboard specs (default: the shipped dashboards/specs).")
def dashboards_sync(tenant_id: str | None, dry_run: bool, prune: bool, setup: bool,
                    specs_dir: Path | None) -> None:
    """Create or update each tenant's Metabase connection, collection, group, permissions and
    dashboards (and the data team's), idempotently. Needs METABASE_URL,
    METABASE_ADMIN_EMAIL, METABASE_ADMIN_PASSWORD and METABASE_TENANT_DB_SECRET."""
    from dashboards.specs import SPEC_DIR, load_specs
    from dashboards.sync import sync_dashboards
    from storepulse.settings import load_metabase_settings
    from storepulse.warehouse import resolve_database_url

    specs_dir = specs_dir or SPEC_DIR
    load_specs(specs_dir)  # a broken spec is reported before Metabase is even asked
    settings = load_metabase_settings()
    if settings is None:
        raise StorePulseError("METABASE_URL is not set: nothing to sync dashboards to")
    if setup:
        from dashboards.setup import complete_setup, wait_until_healthy

        wait_until_healthy(settings.url)
        if complete_setup(settings.url, settings.admin_email, settings.admin_password):
            click.echo(f"Metabase set up with admin {settings.admin_email}")
    report = sync_dashboards(_engine(), resolve_database_url(), settings, tenant_id,
                             dry_run=dry_run, prune=prune, specs_dir=specs_dir)
    verb = "would " if dry_run else ""
    for action in report.actions:
        click.echo(f"{verb}{action}")
    for card in report.unmanaged_cards:
        click.echo(f"not in the specs (kept; --prune archives): {card}")
    click.echo(f"{report.changes} change(s)" if report.changes else "no changes")


@cli.command("generate-sample")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--scale", default=1.0, show_default=True, type=POSITIVE,
              help="Sample size multiplier (order volume per store).")
@click.option("--seed", default=42, show_default=True,
              help="Seed of the generator: the same seed writes the same bytes.")
def generate_sample_cmd(directory: Path, scale: float, seed: int) -> None:
    """Write the deterministic multi-tenant sample into DIRECTORY (landing layout)."""
    from ingestion.generator import generate_sample

    sample = generate_sample(directory, seed=seed, scale=scale)
    for tenant, count in sample.line_counts.items():
        click.echo(f"{tenant}: {count:,} lines")
    click.echo(f"planted anomalies: {len(sample.anomalies)} (see {directory}/ground_truth.csv)")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED)
def dbt(dbt_args: tuple[str, ...]) -> None:
    """Run dbt on StorePulse's project against the warehouse (e.g. `storepulse dbt build`);
    its artifacts and logs go under $STOREPULSE_HOME/dbt."""
    from storepulse.dbt_runtime import dbt_executable, dbt_paths
    from storepulse.warehouse import dbt_environment, resolve_database_url

    paths = dbt_paths()
    # dbt reads the project, profile and output folders from its own variables, so the
    # user's arguments reach it untouched (`storepulse dbt --version` works).
    env = {**os.environ, **paths.environment(), **dbt_environment(resolve_database_url())}
    raise SystemExit(subprocess.call([dbt_executable(), *dbt_args], env=env,
                                     cwd=paths.project_dir))


def main() -> None:
    from alerting.rules import InvalidAlertRules
    from dashboards.provision import MetabaseError
    from dashboards.specs import DashboardSpecError
    from ingestion.loader import IngestError
    from ingestion.spec import SpecError

    try:
        cli(standalone_mode=True)
    except (StorePulseError, IngestError, SpecError, DashboardSpecError, MetabaseError,
            InvalidAlertRules) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    except Exception as exc:
        if not _warehouse_not_migrated(exc):
            raise
        click.echo("error: the warehouse has no StorePulse tables yet; run "
                   "`storepulse db migrate` first", err=True)
        raise SystemExit(1) from None


def _warehouse_not_migrated(exc: Exception) -> bool:
    """A query on a table migrations create, before any migration ran. (SQLAlchemy is looked
    up, not imported: `storepulse --help` must not pay for it.)"""
    sa = sys.modules.get("sqlalchemy")
    return (sa is not None and isinstance(exc, sa.exc.ProgrammingError)
            and "relation" in str(exc.orig) and "does not exist" in str(exc.orig))


if __name__ == "__main__":
    main()
