import pytest
import sqlalchemy as sa

from storepulse import migrate as migrate_module
from storepulse.errors import StorePulseError
from storepulse.migrate import Migration, available_migrations, migrate

EXPECTED_TABLES = {
    "raw": {"ingest_files", "sales_lines", "stores", "products", "customers", "quarantine"},
    "ml": {"forecasts", "forecast_backtests", "anomalies", "anomaly_scans"},
    "ops": {"tenants", "tenant_roles", "audit_log", "quality_results", "alert_deliveries",
            "alert_rules", "schema_migrations"},
}


def _snapshot(engine):
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "select table_schema, table_name, column_name, data_type, is_nullable "
            "from information_schema.columns where table_schema in "
            "('raw','staging','intermediate','marts','ml','ops') order by 1, 2, 3")).all()


def test_creates_every_schema_and_table(database_url):
    from storepulse.warehouse import get_engine

    engine = get_engine(database_url)
    applied = migrate(engine)
    assert [m.version for m in applied] == [m.version for m in available_migrations()]
    with engine.connect() as conn:
        schemas = set(conn.execute(sa.text(
            "select schema_name from information_schema.schemata")).scalars())
        assert {"raw", "staging", "intermediate", "marts", "ml", "ops"} <= schemas
        for schema, tables in EXPECTED_TABLES.items():
            found = set(conn.execute(sa.text(
                "select table_name from information_schema.tables where table_schema = :s"),
                {"s": schema}).scalars())
            assert tables <= found, (schema, tables - found)


def test_running_twice_changes_nothing(engine):
    before = _snapshot(engine)
    with engine.connect() as conn:
        recorded = conn.execute(sa.text("select version, applied_at from ops.schema_migrations"
                                        )).all()
    assert migrate(engine) == []
    assert _snapshot(engine) == before
    with engine.connect() as conn:
        assert conn.execute(sa.text("select version, applied_at from ops.schema_migrations"
                                    )).all() == recorded


def test_an_edited_migration_is_refused(engine, monkeypatch):
    edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in available_migrations()]
    monkeypatch.setattr(migrate_module, "available_migrations", lambda: edited)
    with pytest.raises(StorePulseError, match="was edited after it was applied"):
        migrate(engine)


def test_existing_tenant_roles_named_after_their_slug_are_renamed(engine, tenant_role_prefix):
    """Migration 0013 on a warehouse onboarded before it: role names lose the slug, the
    mapping follows, the login keeps working."""
    old = f"{tenant_role_prefix}legacy"
    with engine.begin() as conn:
        conn.execute(sa.text("insert into ops.tenants (tenant_id, name, timezone, currency, "
                             "country_code) values ('legacy', 'Legacy', 'UTC', 'USD', 'US')"))
        conn.execute(sa.text(f'create role "{old}" login password \'pw-legacy\' '
                             "in role storepulse_tenants"))
        conn.execute(sa.text("insert into ops.tenant_roles values (:r, 'legacy')"), {"r": old})
        (rename,) = [m for m in available_migrations() if m.version == 13]
        conn.connection.driver_connection.cursor().execute(rename.sql)
        new = conn.execute(sa.text("select role_name from ops.tenant_roles "
                                   "where tenant_id = 'legacy'")).scalar_one()
        exists = conn.execute(sa.text("select count(*) from pg_roles where rolname = :r"),
                              {"r": new}).scalar_one()
    assert new != old and new.startswith(tenant_role_prefix) and "legacy" not in new
    assert exists == 1
    login = sa.create_engine(engine.url.set(username=new, password="pw-legacy"),
                             poolclass=sa.pool.NullPool)
    with login.connect() as conn:
        assert conn.execute(sa.text("select ops.current_tenant()")).scalar() == "legacy"
    login.dispose()
