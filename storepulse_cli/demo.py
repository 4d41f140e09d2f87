"""`storepulse demo`: the whole pipeline, in-process, on generated sample data."""

import contextlib
import json
import logging
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from dagster import DagsterInstance, build_sensor_context

from ingestion.generator import DEMO_TENANTS, generate_sample
from orchestration.progress import PROGRESS
from storepulse.errors import StorePulseError
from storepulse.migrate import migrate
from storepulse.settings import load_settings
from storepulse.tenants import Tenant, add_tenant, list_tenants
from storepulse.warehouse import get_engine, resolve_database_url

Echo = Callable[..., None]  # print or click.echo: (text, file=...)

SAMPLE_MARKER = "sample.json"  # what the landing sample was generated with
# Dagster's console logger off: the demo prints each run's warnings and errors itself, after
# the run, without the stack trace Dagster's own failure events carry (a held batch's blocking
# check is a data problem, not a crash).
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

# Counted for the summary, in pipeline order.
SUMMARY_TABLES = [
    ("raw", "raw.sales_lines"), ("raw", "raw.quarantine"),
    ("staging", "staging.stg_sales_lines"),
    ("marts", "marts.fct_sales_lines"), ("marts", "marts.fct_orders"),
    ("marts", "marts.mart_daily_store_kpis"), ("marts", "marts.mart_customer_rfm"),
    ("marts", "marts.mart_product_affinity"),
    ("ml", "ml.forecasts"), ("ml", "ml.forecast_backtests"), ("ml", "ml.anomalies"),
    ("ops", "ops.quality_results"), ("ops", "ops.alert_deliveries"),
]


def run_demo(scale: float = 1.0, seed: int = 42, regenerate: bool = False,
             as_of: date | None = None, echo: Echo = print) -> dict[str, int]:
    """Set up, generate sample data ending ``as_of`` (default: yesterday), then let the
    platform's own sensors and automation conditions run everything (orchestration/pipeline).
    """
    started = time.perf_counter()
    as_of = as_of or datetime.now(UTC).date() - timedelta(days=1)
    settings = load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    dagster_home = settings.home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_config = dagster_home / "dagster.yaml"
    if not instance_config.exists():  # local SQLite storage, no telemetry
        instance_config.write_text("telemetry:\n  enabled: false\n")
    # Runs land in a persistent instance, so `dagster dev` shows them afterwards.
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home))

    terminal = sys.stdout  # progress goes here while dbt's own output goes to the log

    def step(text: str) -> None:
        echo(f"[{time.perf_counter() - started:6.1f}s] {text}", file=terminal)

    url = resolve_database_url(settings)
    step(f"warehouse: {url.render_as_string(hide_password=True)}")
    engine = get_engine(url)
    applied = migrate(engine)
    step(f"migrations: {len(applied)} applied" if applied else "migrations: up to date")

    landing = settings.landing_dir
    wanted = {"seed": seed, "scale": scale, "end_date": as_of.isoformat()}
    marker = landing / SAMPLE_MARKER
    have = json.loads(marker.read_text()) if marker.exists() else None
    if regenerate or have != wanted:
        for profile in DEMO_TENANTS:  # a new end date writes other files: drop the old ones
            shutil.rmtree(landing / profile.tenant_id, ignore_errors=True)
        sample = generate_sample(landing, seed=seed, scale=scale, end_date=as_of)
        marker.write_text(json.dumps(wanted))
        step(f"sample data: {sum(sample.line_counts.values()):,} lines for "
             f"{len(sample.tenants)} tenants up to {as_of} written to {landing}")
    else:
        step(f"sample data: reusing {landing} (up to {as_of})")

    onboarded = [add_tenant(engine, Tenant(p.tenant_id, p.name, p.timezone, p.currency,
                                           p.country_code), landing)
                 for p in DEMO_TENANTS]
    tenant_ids = [p.tenant_id for p in DEMO_TENANTS]
    step(f"tenants: {', '.join(tenant_ids)} (database roles "
         f"{', '.join(o.role for o in onboarded)})")
    for o in onboarded:
        if o.generated_password:
            echo(f"    password for {o.role} (shown once): {o.generated_password}")
    from alerting.rules import AlertRules, load_rules, save_rules

    # Sample recipients (delivered when SMTP_*/TWILIO_* are set) for a tenant without rules;
    # rules set since with `storepulse alerts set` are the user's and stay.
    for tenant_id in tenant_ids:
        with engine.connect() as conn:
            has_rules = load_rules(conn, tenant_id) is not None
        if not has_rules:
            save_rules(engine, AlertRules(tenant_id,
                                          email_recipients=(f"manager@{tenant_id}.example",),
                                          sms_recipients=("+15005550006",)))

    from orchestration.definitions import defs
    from orchestration.pipeline import run_until_settled

    instance = DagsterInstance.get()
    log_path = settings.home / "demo.log"
    step(f"pipeline logs (dbt output included): {log_path}")

    def started_run(label: str) -> None:
        step(f"running {label} ...")

    def finished_run(run) -> None:
        note = "" if run.success else " FAILED"
        step(f"  done {run.label} in {run.seconds:.1f}s{note}")
        for message in run_messages(instance, run.run_id):
            echo("    " + message.replace("\n", "\n    "), file=terminal)
        for check in run.failed_checks:
            echo(f"    failed check: {check}", file=terminal)

    # Long steps report as they go (orchestration/progress.py): dbt nodes, series forecast.
    progress = _TerminalProgress(step)
    PROGRESS.addHandler(progress)
    PROGRESS.setLevel(logging.INFO)
    # The landing sensor requests each tenant's ingestion, dbt_after_ingestion the dbt build,
    # and the automation conditions each tenant's forecasts and anomalies and the dashboards.
    # dagster-dbt echoes every dbt event to stdout: keep the terminal readable.
    with open(log_path, "a") as log, contextlib.redirect_stdout(log):
        # Forecasts start the day after the sample's last day, as on the morning after it.
        runs = run_until_settled(defs, instance, run_config=QUIET, on_start=started_run,
                                 on_run=finished_run, op_config={"store_forecasts": {
                                     "today": (as_of + timedelta(days=1)).isoformat()}})
    PROGRESS.removeHandler(progress)
    failed = [r for r in runs if not r.success]

    step(f"alerts: {_alert_once(instance)}")

    counts = _counts(engine)
    echo("")
    echo("StorePulse demo summary")
    # every registered tenant, like the table counts below (a user's own tenant among them)
    echo(f"  tenants: {len(list_tenants(engine))}    runs: {len(runs)} ({len(failed)} failed)    "
         f"wall time: {time.perf_counter() - started:.1f}s")
    for layer, table in SUMMARY_TABLES:
        echo(f"  {layer:<8} {table:<36} {counts[table]:>12,}")
    echo("")
    echo("Open the Dagster UI on these runs:")
    echo(f"  DAGSTER_HOME={shlex.quote(os.environ['DAGSTER_HOME'])} "
         "dagster dev -m orchestration.definitions")
    if failed:
        raise StorePulseError(f"{len(failed)} run(s) failed: "
                              f"{', '.join(r.label for r in failed)} (see {log_path})")
    return counts


def run_messages(instance: DagsterInstance, run_id: str) -> list[str]:
    """What a run's steps logged at warning level or above (a file's quarantined rows, a
    failed rule, Metabase not configured), as its log in the UI shows them; Dagster's own
    events (a failed step and its stack trace) are left to the UI and the demo log."""
    return [f"{logging.getLevelName(entry.level).lower()}: {entry.user_message}"
            for entry in instance.all_logs(run_id)
            if entry.level >= logging.WARNING and not entry.is_dagster_event]


class _TerminalProgress(logging.Handler):
    """Progress lines of the runs, on the terminal while their other output goes to the log."""

    def __init__(self, step: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.step = step

    def emit(self, record: logging.LogRecord) -> None:
        self.step(f"    {record.getMessage()}")


# Where the demo keeps the alert sensor's cursor in the instance, as the daemon keeps its own
# in the sensor's state: a second demo run reads only the anomalies that are new since.
ALERT_CURSOR_KEY = "storepulse/demo/anomaly_alert_sensor_cursor"


def _alert_once(instance: DagsterInstance) -> str:
    """One tick of the anomaly alert sensor, as the daemon would run it."""
    from orchestration.definitions import defs

    storage = instance.run_storage
    cursor = storage.get_cursor_values({ALERT_CURSOR_KEY}).get(ALERT_CURSOR_KEY)
    sensor = defs.resolve_sensor_def("anomaly_alert_sensor")
    with build_sensor_context(instance=instance, resources=defs.resources, definitions=defs,
                              cursor=cursor) as context:
        result = sensor.evaluate_tick(context)
    if result.cursor is not None:
        storage.set_cursor_values({ALERT_CURSOR_KEY: result.cursor})
    return result.skip_message or "nothing new"


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {table: conn.execute(sa.text(f"select count(*) from {table}")).scalar_one()
                for _, table in SUMMARY_TABLES}



