"""`storepulse quality`: run the raw gate on a batch, list and release held files."""

from __future__ import annotations

import uuid

import click

from storepulse_cli.shared import warehouse_engine


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

    count = release_holds(warehouse_engine(), tenant_id, list(file_ids) or None)
    click.echo(f"{tenant_id}: {count} file(s) released; the next dbt build publishes them")
