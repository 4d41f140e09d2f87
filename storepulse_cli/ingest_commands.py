"""`storepulse ingest` and `storepulse specs`: load files by hand; check a spec on a file."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import click

from storepulse_cli.shared import warehouse_engine


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--tenant", "tenant_id", required=True, help="Tenant the file belongs to.")
@click.option("--source", default=None,
              help="Spec name (default: the shipped or folder spec whose columns fit the file).")
def ingest(path: Path, tenant_id: str, source: str | None) -> None:
    """Load PATH (a file, or a folder of files) for TENANT with COPY, exactly once. The batch
    reaches the marts once `storepulse quality check TENANT` has passed it."""
    from tqdm import tqdm

    from ingestion.landing import given_files
    from ingestion.loader import load_file, refresh_statistics, reject_file
    from storepulse.tenants import record_manual_ingest

    engine = warehouse_engine()
    files = given_files(path, tenant_id, source)
    batch_id = f"cli-{uuid.uuid4().hex[:12]}"  # what `storepulse quality check` validates
    failed = 0
    results = []
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
            results.append(result)
            click.echo(result.message)
            if result.status == "loaded":
                for line in result.quarantine_lines:
                    click.echo(f"  {line}")
            record_manual_ingest(engine, result)
            # a file of which nothing loaded is a failure, whether rejected or all quarantined
            failed += result.status == "rejected" or (
                result.status == "loaded" and result.rows_read > 0 and result.rows_loaded == 0)
    refresh_statistics(engine, results)
    if failed:
        click.echo(f"{failed} of {len(files)} file(s) loaded nothing; see the reasons above "
                   "and `raw.quarantine`", err=True)
        raise SystemExit(2)
    if not any(r.status == "loaded" for r in results):
        click.echo("nothing new loaded (every file was loaded before): no batch to check")
        return
    click.echo(f"batch {batch_id}: run `storepulse quality check {tenant_id}` to check and "
               "publish it")


@click.group()
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

        with warehouse_engine().connect() as conn:
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
