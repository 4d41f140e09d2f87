"""The ``storepulse`` command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from storepulse.errors import StorePulseError
from storepulse_cli.alert_commands import alerts
from storepulse_cli.dashboard_commands import dashboards
from storepulse_cli.ingest_commands import ingest, specs
from storepulse_cli.ml_lines import echo_ml_lines
from storepulse_cli.quality_commands import quality
from storepulse_cli.shared import POSITIVE, warehouse_engine
from storepulse_cli.tenant_commands import tenants


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="storepulse")
def cli() -> None:
    """StorePulse: retail analytics for merchants with many stores.

    The warehouse is DATABASE_URL when set, else an embedded PostgreSQL in
    $STOREPULSE_HOME (default ./.storepulse).
    """


for command in (tenants, ingest, specs, quality, alerts, dashboards):
    cli.add_command(command)


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

    applied = migrate(warehouse_engine())
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

    engine = warehouse_engine()
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
        quarantined = (f", {t.last_file_quarantined:,} row(s) quarantined"
                       if t.last_file_quarantined else "")
        click.echo(f"  last file   {t.last_file or '-'} ({when(t.last_file_at)}){quarantined}; "
                   f"{t.rejected_files} rejected, {t.held_files} held")
        waiting = waiting_message(engine, landing_dir, t.tenant_id)
        if waiting:
            click.echo(f"  waiting     {waiting}")
        if t.awaiting_gate:
            click.echo(f"  unchecked   {t.awaiting_gate} file(s) loaded but not through the "
                       f"gate yet, so not in the marts: `storepulse quality check "
                       f"{t.tenant_id}` (or the tenant's next ingestion run) checks them")
        if t.held_files:
            click.echo(f"  held        {t.held_files} file(s) kept out of the marts by a failed "
                       f"gate: `storepulse quality holds --tenant {t.tenant_id}` says why, "
                       f"`storepulse quality release {t.tenant_id}` lets them through")
        click.echo(f"  gate        {t.last_gate or 'never run'}")
        click.echo(f"  marts       through {t.marts_through or '-'}")
        echo_ml_lines(engine, t)
        nobody = "" if t.alert_recipients else (
            f"; no recipients, so anomalies reach nobody: storepulse alerts set {t.tenant_id} "
            "--email ...")
        undelivered = "" if not t.alerts_undelivered else (
            f", {t.alerts_undelivered} not delivered in the last 7 days "
            f"(latest: {t.last_undelivered})")
        history = "" if not t.alerts_suppressed else (
            f", {t.alerts_suppressed} about older days suppressed in the last 7 days "
            "(history, not news: storepulse alerts set --recent-days)")
        click.echo(f"  alerts      {t.alerts_pending} pending{undelivered}{history}{nobody}")


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

    get_tenant(warehouse_engine(), tenant_id)
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
    from storepulse.status import tenant_status

    # what the run left, in `storepulse status`'s words
    [status] = [t for t in tenant_status(warehouse_engine()) if t.tenant_id == tenant_id]
    echo_ml_lines(warehouse_engine(), status)


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
    from storepulse.dbt_runtime import (
        dbt_executable,
        dbt_paths,
        keep_partial_parse,
        partial_parse_cache,
    )
    from storepulse.warehouse import dbt_environment, resolve_database_url

    paths = dbt_paths()
    connection = dbt_environment(resolve_database_url())
    # dbt reads the project, profile and output folders from its own variables, so the
    # user's arguments reach it untouched (`storepulse dbt --version` works).
    # dbt starts from the parse state the pipeline's builds keep for this warehouse (it
    # re-parses the whole project for any other profile than the one its state was written
    # with), and the state this call leaves is kept for them in turn.
    parse_state = partial_parse_cache(paths, connection)
    env = {**os.environ, **paths.environment(), **connection,
           "DBT_PARTIAL_PARSE_FILE_PATH": str(parse_state / "partial_parse.msgpack")}
    code = subprocess.call([dbt_executable(), *dbt_args], env=env, cwd=paths.project_dir)
    keep_partial_parse(paths.target_dir, parse_state)
    raise SystemExit(code)


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
