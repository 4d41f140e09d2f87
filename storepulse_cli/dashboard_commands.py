"""`storepulse dashboards`: Metabase dashboards as code."""

from __future__ import annotations

from pathlib import Path

import click

from storepulse.errors import StorePulseError
from storepulse_cli.shared import warehouse_engine


@click.group()
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
    report = sync_dashboards(warehouse_engine(), resolve_database_url(), settings, tenant_id,
                             dry_run=dry_run, prune=prune, specs_dir=specs_dir)
    verb = "would " if dry_run else ""
    for action in report.actions:
        click.echo(f"{verb}{action}")
    for card in report.unmanaged_cards:
        click.echo(f"not in the specs (kept; --prune archives): {card}")
    click.echo(f"{report.changes} change(s)" if report.changes else "no changes")
