"""End-to-end benchmark: the whole pipeline, as Dagster runs it, at three sizes.

For each size (stores spread over tenants, two years of daily sales) in a scratch database,
the platform runs itself as the daemon would (orchestration/pipeline.py: the landing sensor,
the dbt sensor and the automation conditions of orchestration/definitions.py, in-process):
ingest with the raw quality gate (one run per tenant) -> dbt build (models, tests, the staging
checks) -> each tenant's forecasts with backtests and anomalies -> dashboards. Then one more day is
appended to the largest size and everything runs again. Prints rows, wall time per stage,
rows/s, peak memory (the process tree: dbt and forecast workers included), how each stage
grows from size to size, and a JSON line with per-stage seconds and ``incremental_ratio``.
Between the full run and the extra day the database is vacuumed and analyzed (see settle()).
Target: the incremental day costs under 10% of the full run at the largest size.

    python bench/end_to_end.py [--sizes 10,50,200] [--scale 0.35] [--workers 2]

With ``--executor celery`` the steps run on real ``dagster-celery worker`` processes
(RabbitMQ on 127.0.0.1:5672, or STOREPULSE_CELERY_BROKER) instead, once per worker count in
``--workers`` (e.g. ``1,2``), at the first size; the JSON line holds
``celery_parallel_speedup``, the fewest workers' time over the most workers' time on the
stages that run in parallel (per-tenant ingestion with its checks, forecasts with anomalies).
See bench/celery_stages.py.

    python bench/end_to_end.py --executor celery --workers 1,2 --sizes 50
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import itertools
import os
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
from dagster import DagsterInstance

from bench.common import (
    QUIET_RUNS,
    emit_json,
    machine,
    print_table,
    scratch_database,
    step_spans,
)
from ingestion.generator import DEMO_TENANTS, END_DATE, TenantProfile, generate_sample
from orchestration.definitions import defs
from orchestration.pipeline import PipelineRun, PlatformLoop
from storepulse.tenants import Tenant, add_tenant

STAGES = ("ingest", "quality checks", "dbt build", "forecasts", "anomalies", "dashboards")
ALL_STAGES = (*STAGES, "orchestration")


def tenant_profiles(stores: int) -> tuple[TenantProfile, ...]:
    """``stores`` stores over tenants of up to 25 stores, cycling the demo tenants' shapes."""
    per_tenant = 5 if stores <= 10 else 10 if stores <= 50 else 25
    profiles, left, index = [], stores, 0
    while left > 0:
        template = DEMO_TENANTS[index % len(DEMO_TENANTS)]
        count = min(per_tenant, left)
        profiles.append(dataclasses.replace(
            template, tenant_id=f"{template.tenant_id[:6]}_{index:02d}",
            name=f"{template.name} {index}", stores=count))
        left -= count
        index += 1
    return tuple(profiles)


class PeakMemory:
    """Samples the RSS of this process and all its children (dbt, forecast workers)."""

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s, self.peak, self._stop = interval_s, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


STEP_STAGE = {  # Dagster step -> stage of the table
    # the raw suite runs inside the ingestion step (its seconds are in "ingest")
    "ingest_landing_files": "ingest",
    "stg_sales_lines_quality": "quality checks",
    "storepulse_dbt_models": "dbt build",
    "store_forecasts": "forecasts",
    "ml__anomalies": "anomalies",
    "dashboards__metabase": "dashboards",
}


def run_pipeline(loop: PlatformLoop) -> dict:
    """Whatever the platform runs by itself on what is in landing/; seconds per stage from each
    step's start and end events, and the rest of the wall time (automation ticks, run
    start-up, resource set-up) as orchestration."""
    seconds = dict.fromkeys(STAGES, 0.0)
    peaks = dict.fromkeys(STAGES, 0)
    memory: list[PeakMemory] = []

    def started_run(_label: str) -> None:
        memory.append(PeakMemory().__enter__())

    def finished_run(run: PipelineRun) -> None:
        memory[-1].__exit__(None, None, None)
        if not run.success:
            sys.exit(f"run {run.label} failed: {run.failed_checks or 'see its logs'}")
        for step, duration in _step_seconds(loop.instance, run.run_id).items():
            stage = STEP_STAGE[step]
            seconds[stage] += duration
            peaks[stage] = max(peaks[stage], memory[-1].peak)

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        runs = loop.run_until_settled(on_start=started_run, on_run=finished_run)
    print(f"    {len(runs)} runs: " + ", ".join(run.label for run in runs), flush=True)
    wall = time.perf_counter() - started
    figures = {stage: {"seconds": seconds[stage], "peak_mib": peaks[stage] / 2**20}
               for stage in STAGES}
    figures["orchestration"] = {"seconds": wall - sum(seconds.values()), "peak_mib": 0.0}
    for stage, figure in figures.items():
        print(f"    {stage:<15} {figure['seconds']:8.1f} s   peak {figure['peak_mib']:7.0f} MiB",
              flush=True)
    return figures


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    return {step: end - start for step, (start, end) in step_spans(instance, run_id).items()}


def raw_lines(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("select count(*) from raw.sales_lines").scalar_one()


def settle(engine) -> float:
    """VACUUM ANALYZE after the full load, timed. A daily run comes a day after the previous
    one, by which time autovacuum has processed the millions of rows the load wrote; seconds
    later, as here, its workers would still be at it and the new day would pay for the full
    load's maintenance. Reported, and counted in neither run."""
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("vacuum (analyze)")
    return time.perf_counter() - started


def bench_size(stores: int, scale: float, workers: int, incremental: bool) -> dict:
    profiles = tenant_profiles(stores)
    tenant_ids = [p.tenant_id for p in profiles]
    with scratch_database("sp_e2e") as (url, engine), \
            tempfile.TemporaryDirectory() as landing_dir, \
            DagsterInstance.ephemeral() as instance:
        landing = Path(landing_dir)
        print(f"\n{stores} stores over {len(profiles)} tenants: generating ...", flush=True)
        generate_sample(landing, seed=11, scale=scale, tenants=profiles)
        for p in profiles:
            add_tenant(engine, Tenant(p.tenant_id, p.name, p.timezone, p.currency,
                                      p.country_code), landing)
        # The platform's own definitions, pointed at this database and landing folder.
        os.environ["DATABASE_URL"] = url.render_as_string(hide_password=False)
        os.environ["STOREPULSE_LANDING"] = str(landing)
        # The files were written whole just now; the loop would otherwise wait a few seconds
        # for them to be still (what the landing sensor does for uploads), and time that.
        os.environ["STOREPULSE_LANDING_SETTLE_SECONDS"] = "0"
        loop = PlatformLoop(defs, instance, run_config=QUIET_RUNS,
                            op_config={"store_forecasts": {"workers": workers}})
        full = run_pipeline(loop)
        rows = raw_lines(engine)
        out = {"stores": stores, "tenants": len(profiles), "rows": rows, "full": full}
        if incremental:
            out["maintenance_s"] = settle(engine)
            print(f"  vacuum analyze after the full load (not counted): "
                  f"{out['maintenance_s']:.1f} s\n  one more day ...", flush=True)
            generate_sample(landing / "next_day", seed=12, scale=scale, tenants=profiles,
                            end_date=END_DATE + timedelta(days=1), history_days=1,
                            broken_rows=False, order_offset=9_000_000)
            for tenant in tenant_ids:  # the new day's files land beside the history
                for path in (landing / "next_day" / tenant).rglob("*.*"):
                    target = landing / tenant / path.parent.name / f"next_{path.name}"
                    path.rename(target)
            out["incremental"] = run_pipeline(loop)
            out["incremental_rows"] = raw_lines(engine) - rows
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,200", help="store counts, comma-separated")
    parser.add_argument("--scale", type=float, default=0.35, help="order volume per store")
    parser.add_argument("--workers", default="2",
                        help="forecast worker processes; with --executor celery, Celery "
                             "worker counts, comma-separated")
    parser.add_argument("--executor", choices=("in_process", "celery"), default="in_process")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    facts = machine()
    print(f"machine: {facts}")
    if args.executor == "celery":
        celery_main(sizes[0], args.scale, [int(w) for w in args.workers.split(",")], facts)
        return
    started = time.perf_counter()
    results = [bench_size(n, args.scale, int(args.workers), incremental=(n == sizes[-1]))
               for n in sizes]

    rows = []
    previous = None
    for result in results:
        total = sum(s["seconds"] for s in result["full"].values())
        for stage in ALL_STAGES:
            figure = result["full"][stage]
            growth = ""
            if previous is not None and previous["full"][stage]["seconds"]:
                growth = f"{figure['seconds'] / previous['full'][stage]['seconds']:.1f}x"
            rate = result["rows"] / figure["seconds"] if figure["seconds"] else 0
            rows.append([result["stores"], f"{result['rows']:,}", stage,
                         f"{figure['seconds']:.1f}", f"{rate:,.0f}",
                         f"{figure['peak_mib']:.0f}" if figure["peak_mib"] else "", growth])
        rows.append([result["stores"], f"{result['rows']:,}", "TOTAL", f"{total:.1f}",
                     f"{result['rows'] / total:,.0f}", "",
                     f"{total / sum(s['seconds'] for s in previous['full'].values()):.1f}x"
                     if previous else ""])
        previous = result
    largest = results[-1]
    growth = " then ".join(f"{b['rows'] / a['rows']:.1f}x"
                           for a, b in itertools.pairwise(results))
    print_table(f"Full pipeline (scale {args.scale}, {args.workers} forecast workers; growth = "
                f"seconds against the previous size; rows grew {growth or 'n/a'})",
                ["stores", "raw rows", "stage", "seconds", "rows/s", "peak MiB", "growth"], rows)
    full_total = sum(s["seconds"] for s in largest["full"].values())
    inc_total = sum(s["seconds"] for s in largest["incremental"].values())
    inc_rows = []
    for stage in ALL_STAGES:
        full_s = largest["full"][stage]["seconds"]
        inc_s = largest["incremental"][stage]["seconds"]
        inc_rows.append([stage, f"{full_s:.1f}", f"{inc_s:.1f}",
                         f"{inc_s / full_s:.1%}" if full_s else ""])
    inc_rows.append(["TOTAL", f"{full_total:.1f}", f"{inc_total:.1f}",
                     f"{inc_total / full_total:.1%}"])
    print_table(f"One more day at {largest['stores']} stores "
                f"({largest['incremental_rows']:,} new rows; target < 10%)",
                ["stage", "full s", "incremental s", "ratio"], inc_rows)
    print(f"(between the two: vacuum analyze {largest['maintenance_s']:.1f} s, in neither)")
    print(f"\nbenchmark wall time: {time.perf_counter() - started:.0f} s")
    emit_json({
        "machine": facts, "scale": args.scale,
        "sizes": {str(r["stores"]): {"rows": r["rows"], "tenants": r["tenants"],
                                     **{s: round(r["full"][s]["seconds"], 2) for s in ALL_STAGES},
                                     "total": round(sum(v["seconds"]
                                                        for v in r["full"].values()), 2)}
                  for r in results},
        "incremental": {s: round(largest["incremental"][s]["seconds"], 2) for s in ALL_STAGES},
        "incremental_ratio": round(inc_total / full_total, 4),
        "maintenance_s": round(largest["maintenance_s"], 2),
    })


def celery_main(stores: int, scale: float, counts: list[int], facts: dict) -> None:
    from bench.celery_stages import PARALLEL_STAGES, run_on_workers

    profiles = tenant_profiles(stores)
    by_count = {}
    for count in counts:
        print(f"\n{stores} stores over {len(profiles)} tenants, {count} Celery worker(s):",
              flush=True)
        by_count[count] = run_on_workers(profiles, scale, count)
    fewest, most = min(counts), max(counts)
    rows = []
    for stage in by_count[fewest]:
        base = by_count[fewest][stage]["steps_s"]
        rows.extend([stage, count, f"{figures['steps_s']:.1f}", f"{figures['busy_s']:.1f}",
                     f"{figures['wall_s']:.1f}", f"{base / figures['steps_s']:.2f}x",
                     ", ".join(figures["workers"])]
                    for count, figures in ((c, by_count[c][stage]) for c in counts))

    def parallel(count: int) -> float:
        return sum(by_count[count][stage]["steps_s"] for stage in PARALLEL_STAGES)

    speedup = parallel(fewest) / parallel(most)
    print_table(f"The pipeline on Celery workers, {stores} stores (scale {scale}); steps = first "
                "step start to last step end, busy = the steps' own seconds added up",
                ["stage", "workers", "steps s", "busy s", "with runs' start-up s", "speed-up",
                 "steps ran on"], rows)
    print(f"\nparallel stages ({', '.join(PARALLEL_STAGES)}): {parallel(fewest):.1f} s on "
          f"{fewest} worker(s), {parallel(most):.1f} s on {most}: {speedup:.2f}x (target 1.5x)")
    emit_json({
        "machine": facts, "scale": scale, "stores": stores, "executor": "celery",
        "stages": {str(c): {stage: round(f["steps_s"], 2) for stage, f in by_count[c].items()}
                   for c in counts},
        "celery_parallel_speedup": round(speedup, 3),
    })


if __name__ == "__main__":
    main()
