"""`storepulse demo`: the whole pipeline, in-process, on generated sample data."""

import contextlib
import os
import time
from collections.abc import Callable

import sqlalchemy as sa
from dagster import DagsterInstance, build_sensor_context, materialize

from ingestion.generator import DEMO_TENANTS, generate_sample
from storepulse.migrate import migrate
from storepulse.settings import load_settings
from storepulse.tenants import Tenant, add_tenant
from storepulse.warehouse import get_engine, resolve_database_url

Echo = Callable[[str], None]

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
             echo: Echo = print) -> dict[str, int]:
    started = time.perf_counter()
    settings = load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    dagster_home = settings.home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_config = dagster_home / "dagster.yaml"
    if not instance_config.exists():  # local SQLite storage, no telemetry
        instance_config.write_text("telemetry:\n  enabled: false\n")
    # Runs land in a persistent instance, so `dagster dev` shows them afterwards.
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home))

    def step(text: str) -> None:
        echo(f"[{time.perf_counter() - started:6.1f}s] {text}")

    url = resolve_database_url(settings)
    step(f"warehouse: {url.render_as_string(hide_password=True)}")
    engine = get_engine(url)
    applied = migrate(engine)
    step(f"migrations: {len(applied)} applied" if applied else "migrations: up to date")

    landing = settings.landing_dir
    if regenerate or not (landing / "ground_truth.csv").exists():
        sample = generate_sample(landing, seed=seed, scale=scale)
        step(f"sample data: {sum(sample.line_counts.values()):,} lines for "
             f"{len(sample.tenants)} tenants written to {landing}")
    else:
        step(f"sample data: reusing {landing}")

    onboarded = [add_tenant(engine, Tenant(p.tenant_id, p.name, p.timezone, p.currency,
                                           p.country_code), landing)
                 for p in DEMO_TENANTS]
    tenant_ids = [p.tenant_id for p in DEMO_TENANTS]
    step(f"tenants: {', '.join(tenant_ids)} (database roles "
         f"{', '.join(o.role for o in onboarded)})")
    for o in onboarded:
        if o.generated_password:
            echo(f"    password for {o.role} (shown once): {o.generated_password}")

    from orchestration.definitions import ALL_ASSETS, ALL_CHECKS, RESOURCES, pipeline_stages

    instance = DagsterInstance.get()
    missing = [t for t in tenant_ids if not instance.has_dynamic_partition("tenants", t)]
    if missing:
        instance.add_dynamic_partitions("tenants", missing)
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    log_path = settings.home / "demo.log"
    step(f"pipeline logs (dbt output included): {log_path}")
    for stage_name, selection, per_tenant in pipeline_stages():
        for partition in (tenant_ids if per_tenant else [None]):
            label = f"{stage_name} [{partition}]" if partition else stage_name
            step(f"materializing {label} ...")
            # dagster-dbt echoes every dbt event to stdout; keep the terminal readable.
            with open(log_path, "a") as log, contextlib.redirect_stdout(log):
                result = materialize([*ALL_ASSETS, *ALL_CHECKS], selection=selection,
                                     partition_key=partition, instance=instance,
                                     resources=RESOURCES, run_config=quiet,
                                     raise_on_error=True)
            checks = result.get_asset_check_evaluations()
            failed = [c for c in checks if not c.passed]
            note = f", {len(checks)} checks" + (f", {len(failed)} FAILED" if failed else "")
            step(f"  done {label}{note if checks else ''}")
            for check in failed:
                echo(f"    failed check: {check.asset_key.to_user_string()} "
                     f"{check.check_name}")

    step(f"alerts: {_alert_once(engine, tenant_ids, RESOURCES, instance)}")

    counts = _counts(engine)
    echo("")
    echo("StorePulse demo summary")
    echo(f"  tenants: {len(tenant_ids)}    wall time: {time.perf_counter() - started:.1f}s")
    for layer, table in SUMMARY_TABLES:
        echo(f"  {layer:<8} {table:<36} {counts[table]:>12,}")
    echo("")
    echo("Open the Dagster UI on these runs:")
    echo(f"  DAGSTER_HOME={os.environ['DAGSTER_HOME']} dagster dev -w workspace.yaml")
    return counts


def _alert_once(engine: sa.Engine, tenant_ids: list[str], resources: dict,
                instance: DagsterInstance) -> str:
    """One tick of the anomaly alert sensor, as the daemon would run it, for the demo's
    sample recipients (delivered when SMTP_* / TWILIO_* are set, else `not_configured`)."""
    from alerting.rules import AlertRules, save_rules
    from orchestration.alerts import anomaly_alert_sensor

    for tenant_id in tenant_ids:
        save_rules(engine, AlertRules(tenant_id,
                                      email_recipients=(f"manager@{tenant_id}.example",),
                                      sms_recipients=("+15005550006",)))
    context = build_sensor_context(instance=instance, resources=resources,
                                   sensor_name="anomaly_alert_sensor")
    return anomaly_alert_sensor(context).skip_message


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {table: conn.execute(sa.text(f"select count(*) from {table}")).scalar_one()
                for _, table in SUMMARY_TABLES}



