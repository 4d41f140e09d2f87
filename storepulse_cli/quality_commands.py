"""`storepulse quality`: run the raw gate on a batch, list and release held files."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import click

from storepulse_cli.shared import warehouse_engine

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


@click.group()
def quality() -> None:
    """Great Expectations gates: check a tenant's new batches, list and release holds."""


@quality.command("check")
@click.argument("tenant_id")
def quality_check(tenant_id: str) -> None:
    """Validate TENANT's files awaiting the gate (every load not checked yet), else its
    latest batch (raw suite); publish them to the marts, or hold them if an error rule
    fails."""
    from quality.gate import validate_batch
    from quality.suites import RAW_SALES_LINES
    from storepulse.tenants import get_tenant

    engine = warehouse_engine()
    get_tenant(engine, tenant_id)
    run_id = f"cli-{uuid.uuid4().hex[:12]}"
    outcome = validate_batch(engine, RAW_SALES_LINES, tenant_id, run_id=run_id,
                             asset="raw/sales_lines")
    click.echo(f"{tenant_id}: batch of {len(outcome.file_ids)} file(s) {list(outcome.file_ids)}")
    file_names = ledger_names(engine, outcome.file_ids)
    for rule in outcome.rules:
        mark = "ok  " if rule.success else ("FAIL" if rule.severity == "error" else "warn")
        click.echo(f"  {mark} {rule.summary()}")
        failed_columns = [item.get("column") for item in rule.observed]
        for sample in sorted(rule.samples, key=lambda row: (row.get("source_file_id") or 0,
                                                              row.get("source_line") or 0)):
            click.echo(f"         {sample_line(sample, file_names, failed_columns)}")
    if outcome.hold_action == "held":
        click.echo(f"batch held: its files stay out of the marts. Fix the export and load it "
                   f"again; or change what the gate accepts (`storepulse tenants limits "
                   f"{tenant_id}`) and run this check again; or let the files through as they "
                   f"are: `storepulse quality release {tenant_id}`")
    elif outcome.hold_action != "none":
        click.echo(f"batch {outcome.hold_action}")
    if outcome.blocking_failures:
        raise SystemExit(1)
    if outcome.published:
        tell_dagster(tenant_id, outcome.published, f"storepulse quality check ({run_id})")


def tell_dagster(tenant_id: str, file_ids: tuple[int, ...] | list[int], by: str) -> None:
    """Published files flow on to the marts, forecasts and dashboards as a landed file's do,
    once the Dagster instance knows of them."""
    from orchestration.publication import report_to_dagster_home

    if report_to_dagster_home(tenant_id, file_ids, by):
        click.echo(f"published {len(file_ids)} file(s) and told the Dagster instance in "
                   "DAGSTER_HOME: its daemon builds the marts, forecasts and dashboards from "
                   "them")
    else:
        click.echo(f"published {len(file_ids)} file(s); DAGSTER_HOME is unset, so no daemon "
                   "was told: they reach the marts with the next dbt build (`storepulse dbt "
                   f"build`, then `storepulse forecast {tenant_id}`)")


def ledger_names(engine: Engine, file_ids: tuple[int, ...]) -> dict[int, str]:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return dict(conn.execute(sa.text(
            "select file_id, file_name from raw.ingest_files where file_id = any(:ids)"),
            {"ids": list(file_ids)}).all())


def sample_line(sample: dict, file_names: dict[int, str], failed_columns: list[str | None]
                ) -> str:
    """A failing row as a person finds it: the file and line, then the value that failed
    (``online_retail.csv line 15018: unit_price 13541.33``); a row of a rule's own query
    (a day's revenue) as its values, the failed one last."""
    shown = [key for key in sample if key not in ("source_file_id", "source_line")]
    shown.sort(key=lambda key: key in failed_columns)
    values = ", ".join(f"{key} {sample[key]}" for key in shown)
    if "source_line" not in sample:
        return values
    file_id = sample.get("source_file_id")
    where = f"{file_names.get(file_id, f'file {file_id}')} line {sample['source_line']}"
    return f"{where}: {values}" if values else where


@quality.command("holds")
@click.option("--tenant", "tenant_id", default=None, help="Only this tenant's held files.")
def quality_holds(tenant_id: str | None) -> None:
    """List files held out of the marts by a failed blocking check."""
    from quality.gate import list_holds
    from storepulse.tenants import get_tenant

    engine = warehouse_engine()
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
    from storepulse.tenants import get_tenant

    engine = warehouse_engine()
    get_tenant(engine, tenant_id)  # an unknown tenant is a mistake, not "0 file(s) released"
    released = release_holds(engine, tenant_id, list(file_ids) or None)
    click.echo(f"{tenant_id}: {len(released)} file(s) released")
    if released:
        tell_dagster(tenant_id, released, "storepulse quality release")
