"""dbt builds correct, tested marts from loaded sample data, incrementally and by version."""

import json
import os
import shutil
import subprocess

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from ingestion.landing import ingest_tenant
from storepulse.dbt_runtime import dbt_executable
from storepulse.migrate import migrate
from storepulse.warehouse import dbt_environment, get_engine
from tests.conftest import create_database, drop_database, register_demo_tenants
from tests.dbt_helpers import (
    DBT_PATHS,
    TEST_TARGET,
    frame,
    lint_sql,
    materialize_dbt,
    parsed_manifest,
    run_dbt,
)
from tests.ingestion_helpers import publish


@pytest.fixture(scope="module")
def built(server_url, small_sample, tmp_path_factory):
    """A warehouse with the small sample loaded and the dbt assets materialized by Dagster."""
    url = create_database(server_url)
    landing = tmp_path_factory.mktemp("landing")
    shutil.copytree(small_sample.root, landing, dirs_exist_ok=True)
    engine = get_engine(url)
    migrate(engine)
    for tenant in register_demo_tenants(engine):
        ingest_tenant(engine, landing, tenant)
    publish(engine)
    result = materialize_dbt(url)
    try:
        yield url, engine, landing, result
    finally:
        drop_database(url)


def test_every_dbt_test_passes_as_an_asset_check(built):
    *_, result = built
    evaluations = result.get_asset_check_evaluations()
    # one evaluation per dbt data test of the project (unit tests stay out of daily builds)
    manifest = parsed_manifest()
    assert sorted(e.check_name for e in evaluations) == sorted(
        n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "test")
    assert [e.check_name for e in evaluations if not e.passed] == []
    metadata = {e.materialization.asset_key.to_user_string(): e.materialization.metadata
                for e in result.get_asset_materialization_events()}
    assert metadata["marts/fct_sales_lines"]["dagster/row_count"].value > 0


def test_unit_tests_pass_in_ci_and_stay_out_of_daily_builds(built):
    url, *_, result = built
    # the Dagster build left them out (its dbt invocation's own results say what ran)
    target, = DBT_PATHS.runs_dir.glob(f"{result.run_id[:8]}-*")
    ran = [r["unique_id"] for r in json.loads((target / "run_results.json").read_text())["results"]]
    assert any(node.startswith("test.") for node in ran)
    assert not any(node.startswith("unit_test.") for node in ran)
    done = run_dbt(url, "test", "--select", "test_type:unit")
    declared = [test["name"] for path in (DBT_PATHS.project_dir / "models").rglob("*.yml")
                for test in yaml.safe_load(path.read_text()).get("unit_tests") or []]
    assert "rfm_retail_shaped_history" in declared
    assert all(f"::{name} " in done.stdout for name in declared), done.stdout
    assert f"PASS={len(declared)} " in done.stdout and "ERROR=0" in done.stdout


def test_marts_are_tenant_scoped(built):
    _, engine, *_ = built
    with engine.connect() as conn:
        tables = conn.execute(sa.text(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        )).scalars().all()
        for table in tables:
            columns = conn.execute(sa.text(
                "select column_name from information_schema.columns where table_schema = "
                "'marts' and table_name = :t"), {"t": table}).scalars().all()
            assert "tenant_id" in columns, table
        assert set(conn.execute(sa.text("select distinct tenant_id from marts.fct_orders"))
                   .scalars()) == {"northwind", "acme_grocers", "alpen_outdoor"}


def test_closed_days_are_zero_rows_and_guests_are_kept(built):
    _, engine, *_ = built
    sundays = frame(engine, "select * from marts.mart_daily_store_kpis where tenant_id = "
                            "'northwind' and iso_weekday = 7")
    assert len(sundays) > 50
    assert (sundays.net_revenue == 0).all() and sundays.is_closed_day.all()
    guests = frame(engine, "select count(*) as n from marts.fct_orders where is_guest")
    assert guests.n[0] > 0
    kpis = frame(engine, "select sum(guest_orders) as g from marts.mart_daily_store_kpis")
    assert kpis.g[0] == frame(engine, "select count(*) as n from marts.fct_orders where "
                                      "is_guest and not is_return").n[0]


def test_returns_are_netted(built):
    _, engine, *_ = built
    totals = frame(engine, "select sum(gross_revenue) g, sum(returns_amount) r, "
                           "sum(net_revenue) n from marts.mart_daily_store_kpis")
    assert totals.r[0] > 0
    assert float(totals.n[0]) == pytest.approx(float(totals.g[0] - totals.r[0]), abs=0.01)
    raw = frame(engine, "select sum(quantity * unit_price) s from raw.sales_lines")
    assert float(totals.n[0]) == pytest.approx(float(raw.s[0]), abs=0.01)


def test_affinity_finds_the_planted_pairs(built):
    _, engine, *_ = built
    top = frame(engine, "select * from marts.mart_product_affinity where also_bought_rank = 1 "
                        "order by lift desc limit 10")
    assert (top.lift > 2).all()
    assert ((top.confidence > 0) & (top.confidence <= 1)).all()


def test_rfm_segments_cover_every_buyer(built):
    _, engine, *_ = built
    rfm = frame(engine, "select * from marts.mart_customer_rfm")
    buyers = frame(engine, "select count(*) n from marts.dim_customers where orders > 0").n[0]
    assert len(rfm) == buyers
    assert rfm.segment.notna().all()
    assert {"Champions", "Lost"} <= set(rfm.segment)
    champions = rfm[rfm.segment == "Champions"]
    assert champions.recency_days.median() < rfm.recency_days.median()


def _customer_snapshot(engine) -> pd.DataFrame:
    return frame(engine, "select * from marts.dim_customers order by tenant_id, customer_id"
                 ).drop(columns="batch_loaded_at")


def _cohort_snapshot(engine) -> pd.DataFrame:
    return frame(engine, "select * from marts.mart_cohort_retention order by 1, 2, 3")


def _kpi_snapshot(engine):
    return frame(engine, "select tenant_id, store_id, day, gross_revenue, returns_amount, "
                         "net_revenue, orders, return_orders, units, customers, new_customers, "
                         "avg_order_value from marts.mart_daily_store_kpis "
                         "order by 1, 2, 3").reset_index(drop=True)


EXTRA_DAY = "sales_extra_day.csv"


def _load_extra_day(url, engine, landing) -> pd.Timestamp:
    """Two orders on the day after the data, loaded, published and built; returns the day."""
    last_day = frame(engine, "select max(day) d from marts.mart_daily_store_kpis").d[0]
    next_day = pd.Timestamp(last_day) + pd.Timedelta(days=1)
    (landing / "acme_grocers" / "generic_pos_csv" / EXTRA_DAY).write_text(
        "store_id,order_id,line_number,ordered_at,sku,product_name,quantity,unit_price,currency,"
        "customer_id,channel,transaction_type\n"
        f"ACM01,NEW-1,1,{next_day:%Y-%m-%d} 10:00:00,KIT-000,Kitchen item 1,2,5.00,USD,,store,"
        "sale\n"
        f"ACM02,NEW-2,1,{next_day:%Y-%m-%d} 11:00:00,KIT-000,Kitchen item 1,1,5.00,USD,ACC1,store,"
        "sale\n")
    loaded = ingest_tenant(engine, landing, "acme_grocers")
    assert [r.rows_loaded for r in loaded if r.status == "loaded"] == [2]
    publish(engine)
    run_dbt(url, "run")
    return next_day


def test_incremental_rerun_processes_only_new_rows_and_matches_full_refresh(built, tmp_path):
    url, engine, landing, _ = built
    before = frame(engine, "select count(*) n, max(batch_loaded_at) b from marts.fct_sales_lines")
    next_day = _load_extra_day(url, engine, landing)
    after = frame(engine, "select count(*) n from marts.fct_sales_lines")
    assert after.n[0] == before.n[0] + 2
    # Old rows were not rewritten: only the two new lines carry the new batch time.
    rewritten = frame(engine, "select count(*) n from marts.fct_sales_lines where "
                              f"batch_loaded_at > '{before.b[0]}'")
    assert rewritten.n[0] == 2
    incremental = _kpi_snapshot(engine)
    assert next_day.date() in set(incremental.day)
    # Every tenant-store gets the new day (zero where it sold nothing).
    new_day = incremental[(incremental.tenant_id == "acme_grocers") &
                          (incremental.day == next_day.date())]
    assert len(new_day) == 3 and new_day.net_revenue.sum() == 15
    customers, cohorts = _customer_snapshot(engine), _cohort_snapshot(engine)
    # ACC1 is active in the new day's month (and only its month was rebuilt)
    months = frame(engine, "select activity_month, batch_loaded_at from "
                           "intermediate.int_customer_months where tenant_id = 'acme_grocers' "
                           "and customer_id = 'ACC1' order by 1")
    assert months.activity_month.iloc[-1] == next_day.replace(day=1).date()
    rebuilt = frame(engine, "select distinct activity_month from intermediate.int_customer_months "
                            f"where batch_loaded_at > '{before.b[0]}'")
    assert set(rebuilt.activity_month) == {next_day.replace(day=1).date()}
    run_dbt(url, "run", "--full-refresh")
    pd.testing.assert_frame_equal(incremental, _kpi_snapshot(engine))
    pd.testing.assert_frame_equal(customers, _customer_snapshot(engine))
    pd.testing.assert_frame_equal(cohorts, _cohort_snapshot(engine))


def test_new_file_version_replaces_rows_downstream(built):
    url, engine, landing, _ = built
    path = landing / "acme_grocers" / "generic_pos_csv" / EXTRA_DAY
    if not path.exists():  # run alone: the extra day the incremental test would have added
        _load_extra_day(url, engine, landing)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1].replace(",2,5.00,", ",4,5.00,")]) + "\n")
    result = ingest_tenant(engine, landing, "acme_grocers")
    versions = [r for r in result if r.status == "loaded"]
    assert len(versions) == 1 and versions[0].version == 2
    publish(engine)
    run_dbt(url, "run")
    rows = frame(engine, "select order_id, quantity from marts.fct_sales_lines "
                         "where order_id like 'NEW-%' order by 1")
    assert list(rows.order_id) == ["NEW-1"]  # NEW-2 left with the old version
    assert float(rows.quantity[0]) == 4.0
    orders = frame(engine, "select order_id from marts.fct_orders where order_id like 'NEW-%'")
    assert list(orders.order_id) == ["NEW-1"]
    # The day's KPIs drop the vanished order and count the new quantity.
    day = frame(engine, "select store_id, net_revenue, orders from marts.mart_daily_store_kpis "
                        "where tenant_id = 'acme_grocers' and day = (select max(day) from "
                        "marts.mart_daily_store_kpis) order by 1")
    assert list(day.net_revenue.astype(float)) == [20.0, 0.0, 0.0]
    assert list(day.orders) == [1, 0, 0]
    # ACC1's order left with the old version: the incremental customer row already knows.
    customers, cohorts = _customer_snapshot(engine), _cohort_snapshot(engine)
    run_dbt(url, "run", "--full-refresh", "--select", "dim_customers int_customer_months+")
    pd.testing.assert_frame_equal(customers, _customer_snapshot(engine))
    pd.testing.assert_frame_equal(cohorts, _cohort_snapshot(engine))


def _compiled(model: str) -> str:
    return (TEST_TARGET / "compiled" / "storepulse" / "models" / "marts"
            / f"{model}.sql").read_text()


def test_touched_keys_are_inlined_when_few_and_both_paths_agree(built):
    url, engine, landing, _ = built
    header = ("store_id,order_id,line_number,ordered_at,sku,product_name,quantity,unit_price,"
              "currency,customer_id,channel,transaction_type\n")
    last_day = frame(engine, "select max(day) d from marts.mart_daily_store_kpis").d[0]
    for offset, vars_ in ((1, []), (2, ["--vars", "{inline_set_max_rows: 0}"])):
        day = pd.Timestamp(last_day) + pd.Timedelta(days=offset)
        (landing / "acme_grocers" / "generic_pos_csv" / f"sales_day_{offset}.csv").write_text(
            header + f"ACM01,DAY-{offset},1,{day:%Y-%m-%d} 09:00:00,KIT-001,Kitchen item 2,3,"
                     "4.00,USD,ACC1,store,sale\n")
        ingest_tenant(engine, landing, "acme_grocers")
        publish(engine)
        run_dbt(url, "run", *vars_)
        inlined = [model for model in ("fct_orders", "dim_customers", "fct_daily_product_sales")
                   if "(values (" in _compiled(model)]
        # the first day's few keys are written into the SQL; with the limit at 0, none are
        assert inlined == ([] if vars_ else ["fct_orders", "dim_customers",
                                             "fct_daily_product_sales"])
        assert "'-infinity'" not in _compiled("fct_orders")  # the watermark is a literal
    kpis, customers, cohorts = (_kpi_snapshot(engine), _customer_snapshot(engine),
                                _cohort_snapshot(engine))
    assert (pd.Timestamp(last_day) + pd.Timedelta(days=2)).date() in set(kpis.day)
    run_dbt(url, "run")  # nothing new: every touched set is empty, and nothing moves
    assert "where false" in _compiled("fct_orders")
    pd.testing.assert_frame_equal(kpis, _kpi_snapshot(engine))
    pd.testing.assert_frame_equal(customers, _customer_snapshot(engine))
    run_dbt(url, "run", "--full-refresh")
    pd.testing.assert_frame_equal(kpis, _kpi_snapshot(engine))
    pd.testing.assert_frame_equal(customers, _customer_snapshot(engine))
    pd.testing.assert_frame_equal(cohorts, _cohort_snapshot(engine))


def test_incremental_branches_and_data_tests_follow_the_house_style(built):
    url, *_ = built
    project = DBT_PATHS.project_dir
    findings = lint_sql(url, project, "models", "tests")
    singular_tests = {p.relative_to(project).as_posix() for p in project.glob("tests/*.sql")}
    models = {p.relative_to(project).as_posix() for p in project.glob("models/**/*.sql")}
    assert set(findings) == models | singular_tests  # every one compiled and linted
    assert {path: found for path, found in findings.items() if found} == {}


def test_source_freshness_is_declared(built):
    """`dbt source freshness` measures the raw sources: the ledger was just written, the
    sample's newest sale is weeks old."""
    url, *_ = built
    env = {**os.environ, **DBT_PATHS.environment(), "DBT_TARGET_PATH": str(TEST_TARGET),
           **dbt_environment(url)}
    done = subprocess.run([dbt_executable(), "source", "freshness"], env=env,
                          cwd=DBT_PATHS.project_dir, capture_output=True, text=True)
    assert "PASS freshness of raw.ingest_files" in done.stdout, done.stdout[-2000:]
    assert "ERROR STALE freshness of raw.sales_lines" in done.stdout, done.stdout[-2000:]
