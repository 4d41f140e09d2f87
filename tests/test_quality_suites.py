"""Great Expectations suites on real batches in PostgreSQL: a clean batch passes, each kind of
bad batch fails exactly the rule meant to catch it, errors hold the batch, warnings do not."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from quality.gate import (
    batch_context,
    files_awaiting_gate,
    list_holds,
    release_holds,
    resolve_batch,
    validate_batch,
)
from quality.suites import RAW_SALES_LINES, STG_SALES_LINES
from tests.dbt_helpers import run_dbt
from tests.ingestion_helpers import publish, register, scalar
from tests.quality_helpers import (
    HISTORY_DAYS,
    HISTORY_START,
    ORDERS_PER_DAY,
    insert_batch,
    line,
    load_history,
)


@pytest.fixture
def shop(engine, tmp_path):
    register(engine, "shop")
    load_history(engine, tmp_path / "landing", "shop", batch_id="history")
    return "shop"


def _failed(outcome) -> set[str]:
    return {r.rule for r in outcome.rules if not r.success}


def _failed_errors(outcome) -> set[str]:
    return {r.rule for r in outcome.blocking_failures}


def test_clean_batch_passes_every_rule(engine, shop):
    outcome = validate_batch(engine, RAW_SALES_LINES, shop, run_id="r1", batch_id="history")
    assert len(outcome.file_ids) == 1
    assert _failed(outcome) == set()
    assert outcome.hold_action == "none"
    recorded = scalar(engine, "select count(*) from ops.quality_results where run_id = 'r1' "
                              "and success and suite = 'raw_sales_lines'")
    assert recorded == len(RAW_SALES_LINES.rules)


def test_the_gate_never_reads_the_batch_back(engine, shop):
    """GE learns a query's columns by fetching all its rows, and asks every passing
    expectation for samples; the gate shows GE the batch as a view and asks pass or fail
    first, so no query hands back more rows than the batch has days."""
    returned: list[tuple[int, str]] = []

    def count_rows(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().lower().startswith(("select", "with")):
            returned.append((cursor.rowcount, statement))

    sa.event.listen(sa.engine.Engine, "after_cursor_execute", count_rows)
    try:
        outcome = validate_batch(engine, RAW_SALES_LINES, shop, run_id="r0", batch_id="history")
    finally:
        sa.event.remove(sa.engine.Engine, "after_cursor_execute", count_rows)
    assert _failed(outcome) == set()
    assert len(outcome.file_ids) == 1
    lines = scalar(engine, "select count(*) from raw.sales_lines where source_file_id = :f",
                   f=outcome.file_ids[0])
    assert lines == HISTORY_DAYS * ORDERS_PER_DAY
    assert any("batch_rows" in statement for _, statement in returned)  # GE's queries seen
    most, statement = max(returned)
    assert most <= HISTORY_DAYS, statement


BAD_BATCHES = {
    "line_keys_present": [line(), line(order="X2", store=" ")],
    "line_keys_unique": [line(), line()],
    "quantity_not_zero": [line(), line(order="X2", quantity=0)],
    "unit_price_plausible": [line(), line(order="X2", price=25_000)],
    "ordered_at_in_window": [line(), line(order="X2", at="2099-01-01 10:00:00+00")],
    "currency_accepted": [line(), line(order="X2", currency="EUR")],
    "tenant_registered": [line(), line(order="X2", tenant_id="ghost")],
}


@pytest.mark.parametrize("rule", sorted(BAD_BATCHES))
def test_each_bad_batch_fails_its_rule_and_is_held(engine, shop, rule):
    file_id = insert_batch(engine, shop, "bad", BAD_BATCHES[rule])
    outcome = validate_batch(engine, RAW_SALES_LINES, shop, run_id="r2", batch_id="bad")
    assert outcome.file_ids == (file_id,)
    assert _failed_errors(outcome) == {rule}, [r.summary() for r in outcome.blocking_failures]
    failure = outcome.rule(rule)
    assert failure.severity == "error" and failure.observed
    # the sample names the offending line of the file (source_line 3 is the second row)
    assert any(s.get("source_line") == 3 for s in failure.samples), failure.samples
    if rule == "line_keys_unique":  # both lines that share the key
        assert sorted(s["source_line"] for s in failure.samples) == [2, 3]
        assert failure.unexpected_count == 2
    assert outcome.hold_action == "held"
    holds = list_holds(engine, shop)
    assert [h.file_id for h in holds] == [file_id]
    assert rule in holds[0].reason
    stored = scalar(engine, "select observed from ops.quality_results where run_id = 'r2' "
                            "and expectation = :r and not success", r=rule)
    assert stored["failures"][0]["expectation"]


def _plan_nodes(plan: dict) -> list[str]:
    return [plan["Node Type"], *(node for child in plan.get("Plans", ())
                                 for node in _plan_nodes(child))]


def test_repeated_keys_are_found_in_one_scan_whatever_the_statistics(engine, shop):
    """A batch loaded since the table was last analyzed looks like a handful of rows to the
    planner. The repeated-keys query must not then be planned as a nested loop joining the
    lines to their grouped keys, which is quadratic in the batch (a UCI-sized file never
    finished): it reads the batch once, whatever the estimate."""
    with engine.begin() as conn:
        conn.execute(sa.text("analyze raw.sales_lines"))
    lines = [line(order=f"U{n}") for n in range(2_000)] + [line(order="U7")]
    file_id = insert_batch(engine, shop, "unanalyzed", lines)
    with engine.connect() as conn:
        batch = batch_context(conn, shop, (file_id,))
        unique_keys = next(r for r in RAW_SALES_LINES.rules if r.name == "line_keys_unique")
        query = unique_keys.query(batch)
        estimate = conn.execute(sa.text(
            "explain (format json) select * from raw.sales_lines where source_file_id = :f"),
            {"f": file_id}).scalar_one()[0]["Plan"]["Plan Rows"]
        assert estimate < len(lines) / 10  # the planner really does not know the batch
        plan = conn.execute(sa.text(f"explain (format json) {query}")).scalar_one()[0]["Plan"]
        repeated = conn.execute(sa.text(query)).mappings().all()
    nodes = _plan_nodes(plan)
    assert "Nested Loop" not in nodes and not any("Join" in node for node in nodes), nodes
    assert [(r["order_id"], r["source_line"], r["copies"]) for r in repeated] == [
        ("U7", 9, 2), ("U7", len(lines) + 1, 2)]


def test_empty_batch_fails_row_count(engine, shop):
    insert_batch(engine, shop, "empty", [])
    outcome = validate_batch(engine, RAW_SALES_LINES, shop, run_id="r3", batch_id="empty")
    assert _failed_errors(outcome) == {"batch_has_rows"}
    assert outcome.rule("batch_has_rows").observed[0]["observed_value"] == 0


def test_revenue_spike_warns_without_holding(engine, database_url, shop):
    # history as published: the daily KPI mart the band compares with
    run_dbt(database_url, "run", "--select", "+mart_daily_store_kpis")
    spike_day = HISTORY_START + timedelta(days=40)
    lines = [line(order=f"S{n}", at=f"{spike_day} 12:00:00+00", price=400) for n in range(12)]
    insert_batch(engine, shop, "spike", lines)
    outcome = validate_batch(engine, RAW_SALES_LINES, shop, run_id="r4", batch_id="spike")
    assert _failed(outcome) == {"daily_revenue_in_band"}
    warning = outcome.rule("daily_revenue_in_band")
    assert warning.severity == "warn" and not warning.blocking
    assert warning.samples[0]["day"] == str(spike_day)
    assert outcome.hold_action == "none" and list_holds(engine, shop) == []


def test_tenant_limits_decide_and_a_passing_recheck_releases(engine, shop):
    insert_batch(engine, shop, "pricey", [line(price=12_000)])
    first = validate_batch(engine, RAW_SALES_LINES, shop, run_id="r5", batch_id="pricey")
    assert first.hold_action == "held"
    with engine.begin() as conn:  # the merchant really sells 12k items
        conn.execute(sa.text("update ops.tenants set max_unit_price = 50000 "
                             "where tenant_id = 'shop'"))
    again = validate_batch(engine, RAW_SALES_LINES, shop, run_id="r6")  # latest batch
    assert again.file_ids == first.file_ids
    assert again.hold_action == "released" and list_holds(engine, shop) == []


def test_held_batch_stays_out_of_staging_until_released(engine, database_url, shop):
    held_file = insert_batch(engine, shop, "bad", [line(order="X9", currency="EUR")])
    validate_batch(engine, RAW_SALES_LINES, shop, run_id="r7", batch_id="bad")
    run_dbt(database_url, "run", "--select", "stg_sales_lines")
    in_staging = "select count(*) from staging.stg_sales_lines where source_file_id = :f"
    assert scalar(engine, in_staging, f=held_file) == 0
    assert scalar(engine, "select count(*) from raw.sales_lines where source_file_id = :f",
                  f=held_file) == 1  # nothing deleted
    assert len(release_holds(engine, shop)) == 1
    assert scalar(engine, in_staging, f=held_file) == 1
    assert scalar(engine, "select count(*) from ops.audit_log "
                          "where action = 'quality_release'") == 1


def test_an_unchecked_batch_stays_out_of_staging_until_the_gate_passes_it(engine, database_url,
                                                                        shop):
    """What `storepulse ingest` loads is published by `storepulse quality check`, not by
    the next dbt build."""
    unchecked = insert_batch(engine, shop, "unchecked", [line(order="U1")])
    run_dbt(database_url, "run", "--select", "stg_sales_lines")
    in_staging = "select count(*) from staging.stg_sales_lines where source_file_id = :f"
    assert scalar(engine, in_staging, f=unchecked) == 0
    outcome = validate_batch(engine, RAW_SALES_LINES, shop, run_id="r10", batch_id="unchecked")
    assert not outcome.blocking_failures
    assert scalar(engine, in_staging, f=unchecked) == 1
    assert scalar(engine, "select published_at is not null from raw.ingest_files "
                          "where file_id = :f", f=unchecked)


def test_a_load_no_gate_judged_is_judged_with_the_next_batch(engine, shop):
    """A run interrupted between its load and its gate leaves its files unjudged: the next
    run's gate judges them with its own batch. A held batch stays held."""
    held = insert_batch(engine, shop, "pricey", [line(order="P1", price=12_000)])
    assert validate_batch(engine, RAW_SALES_LINES, shop, run_id="g1",
                          batch_id="pricey").hold_action == "held"
    interrupted = insert_batch(engine, shop, "interrupted", [line(order="I1")])
    following = insert_batch(engine, shop, "following", [line(order="F1")])
    with engine.connect() as conn:
        assert files_awaiting_gate(conn, shop) == (interrupted, following)
    outcome = validate_batch(engine, RAW_SALES_LINES, shop, run_id="g2", batch_id="following")
    assert outcome.file_ids == (interrupted, following)
    assert not outcome.blocking_failures
    with engine.connect() as conn:
        assert files_awaiting_gate(conn, shop) == ()
    assert scalar(engine, "select count(*) from raw.ingest_files where published_at is not "
                          "null and file_id = any(:f)", f=[interrupted, following]) == 2
    assert [h.file_id for h in list_holds(engine, shop)] == [held]
    # the staging check (no gate) still reads the latest batch only
    with engine.connect() as conn:
        assert resolve_batch(conn, shop) == (following,)


def test_staging_suite_checks_typed_lines(engine, database_url, shop):
    run_dbt(database_url, "run", "--select", "stg_sales_lines")
    clean = validate_batch(engine, STG_SALES_LINES, shop, run_id="r8", gate=False)
    assert _failed(clean) == set()
    insert_batch(engine, shop, "odd", [
        {**line(order=f"Y{n}"), "product_id": f"P{n}"} for n in range(3)])
    with engine.begin() as conn:  # blank names and an unknown channel survive raw's rules
        conn.execute(sa.text("update raw.sales_lines set product_name = ' ', channel = 'fax' "
                             "where order_id like 'Y%'"))
    publish(engine)  # the raw gate passed it
    odd = validate_batch(engine, STG_SALES_LINES, shop, run_id="r9", gate=False)
    assert _failed(odd) == {"product_name_present", "channel_known"}
    assert odd.hold_action == "none"


def test_a_validated_batch_is_not_scanned_again_when_reuse_is_allowed(engine, shop):
    first = validate_batch(engine, RAW_SALES_LINES, shop, run_id="v1", batch_id="history")
    again = validate_batch(engine, RAW_SALES_LINES, shop, run_id="v2", reuse=True)
    assert again.reused_from_run == "v1" and again.file_ids == first.file_ids
    assert [r.success for r in again.rules] == [r.success for r in first.rules]
    assert scalar(engine, "select count(distinct run_id) from ops.quality_results") == 1
    forced = validate_batch(engine, RAW_SALES_LINES, shop, run_id="v3")  # asked explicitly
    assert forced.reused_from_run is None
    assert scalar(engine, "select count(distinct run_id) from ops.quality_results") == 2
