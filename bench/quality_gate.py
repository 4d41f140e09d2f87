"""Quality gate benchmark: the raw suite on one UCI Online Retail batch (541,909 lines).

Compared in the same run with:
  * the same rules validated the way GE's docs show: each distinct query a GE query asset
    over SQL, all its expectations with GE's default result format (BASIC);
  * the load that brought the batch in (the gate runs right after it, in the same step).

The first gate runs right after the load, on the planner's statistics of before it (a
table analyzed when it held only an earlier small file), as `storepulse quality check` did
after `storepulse ingest`; the repeats run on fresh statistics.

    python bench/quality_gate.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import UCI_CSV, announce_machine, emit_json, print_table, scratch_database
from ingestion.loader import load_file
from ingestion.spec import shipped_specs
from quality import gate
from quality.suites import RAW_SALES_LINES, BatchContext, great_expectations
from storepulse.tenants import Tenant, add_tenant


def ge_over_sql(engine: sa.Engine, batch: BatchContext) -> dict[str, bool]:
    """Each rule's pass or fail, every query validated over SQL with result format BASIC."""
    gx = great_expectations()
    datasource = gate._quiet_context(gx).data_sources.add_sql(
        "naive", connection_string=engine.url.render_as_string(hide_password=False))
    passed: dict[str, bool] = {}
    for index, (query, rules) in enumerate(gate._rules_by_query(RAW_SALES_LINES,
                                                                batch).items()):
        name = f"naive_{index}"
        gx_batch = datasource.add_query_asset(
            name, query=f"select * from ({query.strip()}) as batch_rows"
        ).add_batch_definition_whole_table("batch").get_batch()
        gx_suite, expectations = gate._expectation_suite(gx, name, rules, batch)
        results = gate._validate(gx_batch, gx_suite, {"result_format": "BASIC"})
        for rule, expectation in expectations:
            ok = bool(results[gate._config_key(expectation)].success)
            passed[rule.name] = passed.get(rule.name, True) and ok
    return passed


def timed(fn, *args):
    started = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3,
                        help="attempts of each way, alternating; the median is reported")
    args = parser.parse_args()
    info = announce_machine()
    spec = shipped_specs()["uci_online_retail_csv"]
    with scratch_database("sp_gate") as (_url, engine), \
            tempfile.TemporaryDirectory() as scratch:
        add_tenant(engine, Tenant("uci", "UCI Online Retail", "Europe/London", "GBP", "GB"))
        # an earlier small file, analyzed: the statistics the big batch arrives to
        earlier = Path(scratch) / "earlier.csv"
        with gzip.open(UCI_CSV, "rt", encoding="utf-8") as source:
            earlier.write_text("".join(line for _, line in zip(range(2_001), source,
                                                                strict=False)))
        first = load_file(engine, earlier, "uci", spec)
        with engine.begin() as conn:
            conn.execute(sa.text("analyze raw.sales_lines"))
            warm_up = gate.batch_context(conn, "uci", (first.file_id,))
        gate.run_suite(engine, RAW_SALES_LINES, warm_up)  # GE's first-use imports, not timed
        load_s, loaded = timed(load_file, engine, UCI_CSV, "uci", spec)
        with engine.connect() as conn:
            batch = gate.batch_context(conn, "uci", (loaded.file_id,))
        stale_s, _ = timed(gate.run_suite, engine, RAW_SALES_LINES, batch)
        with engine.begin() as conn:
            conn.execute(sa.text("analyze raw.sales_lines"))
        gate_times, naive_times = [], []
        for _ in range(args.repeat):
            seconds, outcomes = timed(gate.run_suite, engine, RAW_SALES_LINES, batch)
            gate_times.append(seconds)
            seconds, naive = timed(ge_over_sql, engine, batch)
            naive_times.append(seconds)
        verdicts = {o.rule: o.success for o in outcomes}
        assert verdicts == naive, (verdicts, naive)
    gate_s, naive_s = statistics.median(gate_times), statistics.median(naive_times)
    lines = loaded.rows_loaded
    print("attempts (gate / GE over SQL, s): " + ", ".join(
        f"{a:.2f} / {b:.2f}" for a, b in zip(gate_times, naive_times, strict=True)))
    print_table(f"Raw suite on one batch of {lines:,} lines ({len(RAW_SALES_LINES.rules)} rules; "
                f"failing: {', '.join(r for r, ok in verdicts.items() if not ok) or 'none'})",
                ["method", "seconds", "lines/s", "vs the load"],
                [["StorePulse gate", f"{gate_s:.2f}", f"{lines / gate_s:,.0f}",
                  f"{gate_s / load_s:.0%}"],
                 ["GE over SQL, BASIC results", f"{naive_s:.2f}", f"{lines / naive_s:,.0f}",
                  f"{naive_s / load_s:.0%}"],
                 ["StorePulse gate, statistics stale", f"{stale_s:.2f}",
                  f"{lines / stale_s:,.0f}", f"{stale_s / load_s:.0%}"],
                 ["the load (for scale)", f"{load_s:.2f}", f"{lines / load_s:,.0f}", "100%"]])
    print(f"\nThe gate takes {gate_s / naive_s:.0%} of the time of GE over SQL with its "
          f"defaults ({naive_s / gate_s:.1f}x as fast).")
    emit_json({"lines": lines, "gate_s": round(gate_s, 2), "gate_stale_stats_s": round(stale_s, 2),
               "ge_over_sql_s": round(naive_s, 2),
               "load_s": round(load_s, 2), "gate_speedup": round(naive_s / gate_s, 2),
               "machine": info})


if __name__ == "__main__":
    main()
