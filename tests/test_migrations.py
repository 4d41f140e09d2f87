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
