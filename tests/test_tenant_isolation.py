"""Attacks on tenant isolation, as tenant A's own login role over a real connection.

Run against the configured server (DATABASE_URL, or embedded) and against a freshly started
embedded pgserver. Every attempt must return A's rows only or be denied.
"""

import shutil
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from ingestion.generator import DEMO_TENANTS
from ml.anomalies import detect_tenant
from ml.tables import read_daily_kpis, write_anomalies
from storepulse.tenants import remove_tenant
from tests.conftest import drop_database, embedded_server, tenant_warehouse
from tests.dbt_helpers import parsed_manifest, run_dbt

A, B = "northwind", "acme_grocers"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module", params=["configured_server", "embedded_server"])
def warehouse(request, server_url, tmp_path_factory):
    server = server_url if request.param == "configured_server" else \
        embedded_server(tmp_path_factory)
    landing = tmp_path_factory.mktemp("landing")
    profiles = [p for p in DEMO_TENANTS if p.tenant_id in (A, B)]
    url, engine, roles = tenant_warehouse(server, landing, (A, B), seed=3, password=PASSWORD)
    run_dbt(url, "build")
    for p in profiles:
        with engine.connect() as conn:
            kpis = read_daily_kpis(conn, p.tenant_id)
        write_anomalies(engine, p.tenant_id, detect_tenant(kpis, p.tenant_id, p.currency),
                        "test")
    tenant_a = sa.create_engine(url.set(username=roles[A], password=PASSWORD),
                                poolclass=sa.pool.NullPool)
    try:
        yield url, engine, tenant_a, roles
    finally:
        tenant_a.dispose()
        for tenant in (A, B):
            remove_tenant(engine, tenant)
        drop_database(url)
        shutil.rmtree(landing, ignore_errors=True)


def _tables(engine, schemas=("marts", "ml")):
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "select schemaname || '.' || tablename from pg_tables where schemaname = any(:s) "
            "order by 1"), {"s": list(schemas)}).scalars().all()


def _denied(engine, sql: str) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(sql))
        return False
    except DBAPIError as exc:
        return "permission denied" in str(exc.orig) or "must be" in str(exc.orig)


def test_every_mart_and_ml_table_has_forced_row_level_security(warehouse):
    _, engine, *_ = warehouse
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "select n.nspname || '.' || c.relname, c.relrowsecurity, c.relforcerowsecurity "
            "from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname in ('marts', 'ml') and c.relkind in ('r', 'p', 'v', 'm')")).all()
    # Every mart dbt builds and every ml table the migrations create, and nothing else.
    manifest = parsed_manifest()
    marts = {f"marts.{n['alias'] or n['name']}" for n in manifest["nodes"].values()
             if n["resource_type"] == "model" and n["config"]["schema"] == "marts"}
    ml_tables = {"ml.forecasts", "ml.forecast_backtests", "ml.anomalies", "ml.anomaly_scans",
                 "ml.model_states"}
    assert {name for name, *_ in rows} == marts | ml_tables
    unprotected = [name for name, rls, forced in rows if not (rls and forced)]
    assert unprotected == [], f"tables without forced RLS (a view cannot have it): {unprotected}"


def test_tenant_sees_only_its_own_rows_in_every_table(warehouse):
    _, engine, tenant_a, _ = warehouse
    seen_own = 0
    for table in _tables(engine):
        with tenant_a.connect() as conn:
            tenants = conn.execute(sa.text(f"select distinct tenant_id from {table}")).scalars()
            tenants = set(tenants)
        assert tenants <= {A}, (table, tenants)
        seen_own += bool(tenants)
        with engine.connect() as conn:  # the platform sees both, so the filter did the work
            everyone = set(conn.execute(sa.text(f"select distinct tenant_id from {table}"))
                           .scalars())
        if B in everyone:
            assert B not in tenants
    assert seen_own >= 10


def test_session_settings_do_not_change_the_tenant(warehouse):
    _, _, tenant_a, _ = warehouse
    with tenant_a.connect() as conn:
        for setting in ("app.tenant_id", "storepulse.tenant", "request.jwt.claim.tenant"):
            conn.execute(sa.text(f"select set_config('{setting}', '{B}', false)"))
        conn.execute(sa.text("set search_path = marts, ops, public"))
        assert conn.execute(sa.text("select ops.current_tenant()")).scalar_one() == A
        tenants = set(conn.execute(sa.text("select distinct tenant_id from marts.fct_orders"))
                      .scalars())
    assert tenants == {A}


def test_set_role_to_another_tenant_is_denied(warehouse):
    _, _, tenant_a, roles = warehouse
    assert _denied(tenant_a, f'set role "{roles[B]}"')
    assert _denied(tenant_a, "set role storepulse_platform")
    assert _denied(tenant_a, "set session authorization postgres")


@pytest.mark.parametrize("table", ["raw.sales_lines", "raw.ingest_files", "raw.quarantine",
                                   "staging.stg_sales_lines", "intermediate.rfm_segment_map",
                                   "ops.tenants", "ops.tenant_roles", "ops.audit_log",
                                   "ops.alert_deliveries"])
def test_internal_schemas_are_denied(warehouse, table):
    _, _, tenant_a, _ = warehouse
    assert _denied(tenant_a, f"select * from {table} limit 1")


def test_functions_and_object_creation_are_denied(warehouse):
    _, _, tenant_a, _ = warehouse
    assert _denied(tenant_a, "select ops.apply_tenant_isolation('marts.fct_orders')")
    assert _denied(tenant_a, "select pg_read_file('postgresql.conf')")
    assert _denied(tenant_a, "create table marts.stolen (x int)")
    assert _denied(tenant_a, "create table public.stolen (x int)")
    assert _denied(tenant_a, "create temporary table stolen (x int)")
    assert _denied(tenant_a, "create view marts.leak as select * from marts.fct_orders")
    assert _denied(tenant_a, "alter table marts.fct_orders disable row level security")
    assert _denied(tenant_a, "drop policy tenant_rows on marts.fct_orders")
    assert _denied(tenant_a, f"update marts.fct_orders set tenant_id = '{A}'")
    assert _denied(tenant_a, "delete from ml.anomalies")


def test_catalog_statistics_do_not_leak_other_tenants_values(warehouse):
    _, engine, tenant_a, _ = warehouse
    with engine.connect() as conn:
        conn.execute(sa.text("analyze marts.fct_orders"))
        admin_view = conn.execute(sa.text(
            "select count(*) from pg_stats where schemaname = 'marts' and "
            "tablename = 'fct_orders'")).scalar_one()
    assert admin_view > 0
    with tenant_a.connect() as conn:
        stats = conn.execute(sa.text(
            "select most_common_vals::text from pg_stats where schemaname = 'marts' "
            "and tablename = 'fct_orders'")).scalars().all()
        histogram = conn.execute(sa.text(
            "select count(*) from pg_stats where schemaname in ('marts', 'ml', 'raw')"
        )).scalar_one()
    assert not any(B in (s or "") for s in stats)
    assert histogram == 0


def test_new_mart_without_the_post_hook_is_caught(warehouse):
    """A table added to marts later without the post-hook fails the RLS audit above."""
    _, engine, *_ = warehouse
    with engine.begin() as conn:
        conn.execute(sa.text("create table marts.mart_forgotten as "
                             "select tenant_id, count(*) n from marts.fct_orders group by 1"))
    try:
        with pytest.raises(AssertionError, match="mart_forgotten"):
            test_every_mart_and_ml_table_has_forced_row_level_security(warehouse)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("drop table marts.mart_forgotten"))


def _in_thread(work, timeout: float = 60.0):
    """Run ``work``; fail if it has not finished within ``timeout`` seconds (it is blocked)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(work).result(timeout=timeout)
    finally:
        pool.shutdown(wait=False)


def test_a_tenant_cannot_stall_another_tenants_load_or_a_migration(warehouse, tmp_path):
    from ingestion.loader import load_file
    from ingestion.spec import shipped_specs
    from storepulse.migrate import _LOCK_KEY, migrate
    from tests.ingestion_helpers import good_row, pos_csv

    _, engine, tenant_a, _ = warehouse
    path = pos_csv(tmp_path / "late.csv", [good_row(order="LATE1", store="S9")])
    with tenant_a.connect() as conn:
        # the keys the loader and migrations used to lock, and every key near them
        conn.execute(sa.text("select pg_advisory_lock(hashtextextended(:k, 0))"),
                     {"k": f"{B}/generic_pos_csv/late.csv"})
        conn.execute(sa.text("select pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
        assert conn.execute(sa.text("select count(*) from pg_locks where locktype = 'advisory' "
                                    "and pid = pg_backend_pid()")).scalar() == 2
        result = _in_thread(lambda: load_file(engine, path, B,
                                              shipped_specs()["generic_pos_csv"]))
        assert result.status == "loaded" and result.file_id is not None  # not blocked
        assert _in_thread(lambda: migrate(engine)) == []
    # and the locks that are used now are out of a tenant's reach
    assert _denied(tenant_a, "select * from ops.load_locks for update")
    assert _denied(tenant_a, "lock table ops.schema_migrations in access share mode")


def test_an_idle_tenant_transaction_does_not_block_the_isolation_post_hook(warehouse):
    _, engine, tenant_a, _ = warehouse
    with tenant_a.connect() as idle:
        idle.execute(sa.text("begin"))
        idle.execute(sa.text("select count(*) from marts.fct_orders"))
        # what dbt's post-hook runs after every build of the mart: nothing to change, no lock
        started = time.monotonic()
        _in_thread(lambda: _apply_isolation(engine, "marts.fct_orders"), timeout=30)
        assert time.monotonic() - started < 5
        idle.execute(sa.text("rollback"))


def _apply_isolation(engine, table: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("select ops.apply_tenant_isolation(cast(:t as regclass))"),
                     {"t": table})


def test_tenant_logins_have_limits(warehouse):
    _, engine, tenant_a, roles = warehouse
    with engine.connect() as conn:
        limit = conn.execute(sa.text("select rolconnlimit from pg_roles where rolname = :r"),
                             {"r": roles[A]}).scalar()
        superuser = conn.execute(sa.text("select rolsuper from pg_roles "
                                         "where rolname = current_user")).scalar()
    assert 0 < limit <= 20
    with tenant_a.connect() as conn:
        settings = dict(conn.execute(sa.text(
            "select name, setting from pg_settings where name in ('statement_timeout', "
            "'idle_in_transaction_session_timeout', 'work_mem', 'temp_file_limit')")).all())
        assert int(settings["statement_timeout"]) > 0
        assert int(settings["idle_in_transaction_session_timeout"]) > 0
        if superuser:  # only a superuser may set it; then the tenant cannot raise it
            assert int(settings["temp_file_limit"]) > 0
    if superuser:
        assert _denied(tenant_a, "set temp_file_limit = -1")


def test_a_tenant_cannot_read_table_sizes_nor_make_large_objects(warehouse):
    _, engine, tenant_a, _ = warehouse
    with engine.connect() as conn:
        superuser = conn.execute(sa.text("select rolsuper from pg_roles "
                                         "where rolname = current_user")).scalar()
    if superuser:  # revoking built-ins from PUBLIC needs their owner
        assert _denied(tenant_a, "select pg_total_relation_size('marts.fct_orders')")
        assert _denied(tenant_a, "select pg_relation_size('raw.sales_lines'::regclass::oid)")
        assert _denied(tenant_a, "select n_live_tup from pg_stat_user_tables")
        assert _denied(tenant_a, "select lo_create(0)")
    with engine.connect() as conn:
        public_connect = conn.execute(sa.text(
            "select has_database_privilege('public', current_database(), 'connect')")).scalar()
    assert public_connect is False


def test_purge_completes_despite_a_large_object_in_another_database(server_url, tmp_path):
    """A tenant's large object in another database once made the purge roll back."""
    from storepulse.tenants import remove_tenant
    from tests.conftest import create_database

    landing = tmp_path / "landing"
    url, engine, roles = tenant_warehouse(server_url, landing, (A,), seed=5, password=PASSWORD)
    other = create_database(server_url, prefix="sp_other")
    try:
        other_db = sa.create_engine(other.set(username=roles[A], password=PASSWORD),
                                    poolclass=sa.pool.NullPool)
        with other_db.begin() as conn:
            conn.execute(sa.text("select lo_from_bytea(0, 'kept for ever'::bytea)"))
        other_db.dispose()
        removed = remove_tenant(engine, A, purge=True, landing_dir=landing)
        assert removed.purged and removed.counts["raw.sales_lines"] > 0
        with engine.connect() as conn:
            assert conn.execute(sa.text("select count(*) from pg_roles where rolname = :r"),
                                {"r": roles[A]}).scalar() == 0
            assert conn.execute(sa.text("select count(*) from raw.sales_lines")).scalar() == 0
        assert not (landing / A).exists()
    finally:
        drop_database(other)
        drop_database(url)


def test_a_slug_with_a_trailing_newline_is_refused_clearly(engine):
    from storepulse.errors import StorePulseError
    from storepulse.tenants import Tenant, add_tenant

    with pytest.raises(StorePulseError, match="tenant slug"):
        add_tenant(engine, Tenant("shop\n", "Shop", "UTC", "USD", "US"))


def test_role_names_do_not_reveal_the_tenant_roster(warehouse):
    _, _, tenant_a, roles = warehouse
    with tenant_a.connect() as conn:
        visible = conn.execute(sa.text("select rolname from pg_roles")).scalars().all()
    assert set(roles.values()) <= set(visible)  # pg_roles is readable by every role ...
    assert not any(tenant in name for name in visible for tenant in (A, B))  # ... but mute


@pytest.mark.parametrize("table, column", [("ml.anomalies", "alert_seq"),
                                           ("marts.fct_sales_lines", "source_file_id")])
def test_ids_numbered_across_tenants_are_hidden(warehouse, table, column):
    _, engine, tenant_a, _ = warehouse
    assert _denied(tenant_a, f"select {column} from {table}")
    assert _denied(tenant_a, f"select * from {table}")
    with engine.connect() as conn:  # what a tenant still gets: every other column
        others = [c for c in conn.execute(sa.text(
            "select column_name from information_schema.columns where table_schema || '.' "
            "|| table_name = :t order by ordinal_position"), {"t": table}).scalars()
            if c != column]
    with tenant_a.connect() as conn:
        rows = conn.execute(sa.text(f"select {', '.join(others)} from {table}")).all()
        assert conn.execute(sa.text(f"select count(*) from {table}")).scalar() == len(rows) > 0
