"""`storepulse tenants`: register, limit and list tenants."""

from __future__ import annotations

import os

import click

from storepulse_cli.shared import warehouse_engine


@click.group()
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
    engine = warehouse_engine()
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
              help="Also delete every row, landing file and forecast plot of the tenant, and "
                   "its Dagster partition and runs (GDPR erasure).")
@click.confirmation_option(prompt="Remove the tenant's database role (and data, with --purge)?")
def tenants_remove(slug: str, purge: bool) -> None:
    """Revoke and drop tenant SLUG's role; with --purge erase its data, in one transaction."""
    from storepulse.settings import load_settings
    from storepulse.tenants import remove_tenant

    settings = load_settings()
    removed = remove_tenant(warehouse_engine(), slug, purge=purge,
                            landing_dir=settings.landing_dir, plots_dir=settings.plots_dir)
    click.echo(f"tenant {slug}: role {removed.role or '(none)'} dropped")
    for table, count in sorted(removed.counts.items()):
        click.echo(f"  {table:<36} {count:>10,} rows deleted")
    if not purge:
        return
    from orchestration.partitions import forget_tenant

    runs = forget_tenant(slug)
    if runs is not None:
        click.echo(f"Dagster partition '{slug}' deleted, with its {runs} run(s) and their logs")
    else:
        click.echo("DAGSTER_HOME is unset: the landing sensor deletes the Dagster partition on "
                   "its next tick; the tenant's runs stay in the instance's history")
    click.echo("its Metabase space is retired by the next dashboards sync of every tenant (the "
               "pipeline's, or `storepulse dashboards sync`)")


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
    limits = set_gate_limits(warehouse_engine(), slug, max_unit_price, accepted)
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

    set_native_sql(warehouse_engine(), slug, enabled)
    click.echo(f"tenant {slug}: native SQL in Metabase {'on' if enabled else 'off'} "
               "(applied by the next `storepulse dashboards sync`)")


@tenants.command("list")
def tenants_list() -> None:
    """List registered tenants."""
    from storepulse.tenants import list_tenants

    rows = list_tenants(warehouse_engine())
    if not rows:
        click.echo("no tenants registered")
    for t in rows:
        click.echo(f"{t.tenant_id:<20} {t.name:<28} {t.timezone:<20} {t.currency} {t.country_code}")
