"""Everything StorePulse reads from the environment, in one place.

Only this package reads environment variables; libraries receive values as arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    home: Path
    landing_dir: Path
    sample_dir: Path
    metabase_url: str | None
    role_prefix: str = "tenant_"
    # A landing file is loaded once it has not changed for this long (ingestion.landing)
    landing_settle_seconds: float = 5.0

    @property
    def pgdata_dir(self) -> Path:
        return self.home / "pgdata"

    @property
    def plots_dir(self) -> Path:
        """Forecast plots, a folder per tenant (the Dagster UI links them)."""
        return self.home / "plots"


def load_settings() -> Settings:
    home = Path(os.environ.get("STOREPULSE_HOME", ".storepulse")).resolve()
    landing = Path(os.environ.get("STOREPULSE_LANDING", home / "landing")).resolve()
    return Settings(
        database_url=os.environ.get("DATABASE_URL") or None,
        home=home,
        landing_dir=landing,
        sample_dir=home / "sample",
        metabase_url=os.environ.get("METABASE_URL") or None,
        role_prefix=os.environ.get("STOREPULSE_ROLE_PREFIX", "tenant_"),
        landing_settle_seconds=_seconds("STOREPULSE_LANDING_SETTLE_SECONDS", 5.0),
    )


def _seconds(variable: str, default: float) -> float:
    text = os.environ.get(variable)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        from storepulse.errors import StorePulseError

        raise StorePulseError(f"{variable} is {text!r}: give a number of seconds, 0 or more")
    return value


@dataclass(frozen=True)
class MetabaseSettings:
    url: str
    admin_email: str
    admin_password: str
    # Tenant connection passwords are derived from this secret (HMAC per tenant), so a sync
    # can set and use them without storing any.
    tenant_db_secret: str
    # Where Metabase reaches the warehouse, when not where StorePulse does (compose: postgres).
    db_host: str | None = None
    db_port: int | None = None


MIN_SECRET_LENGTH = 32


def check_tenant_db_secret(secret: str) -> None:
    """Every tenant's database password is derived from this secret: a short or published one
    (the .env.example placeholder) lets anyone compute them all."""
    from storepulse.errors import StorePulseError

    if secret.lower().startswith("change-me"):
        raise StorePulseError("METABASE_TENANT_DB_SECRET is still the example value; set a "
                              "random one, e.g. `openssl rand -hex 32`")
    if len(secret) < MIN_SECRET_LENGTH:
        raise StorePulseError(f"METABASE_TENANT_DB_SECRET is {len(secret)} characters; use at "
                              f"least {MIN_SECRET_LENGTH} random ones, e.g. "
                              "`openssl rand -hex 32`")


def load_metabase_settings() -> MetabaseSettings | None:
    """Metabase settings, or None when METABASE_URL is unset (dashboards are then skipped)."""
    url = os.environ.get("METABASE_URL")
    if not url:
        return None
    missing = [v for v in ("METABASE_ADMIN_EMAIL", "METABASE_ADMIN_PASSWORD",
                           "METABASE_TENANT_DB_SECRET") if not os.environ.get(v)]
    if missing:
        from storepulse.errors import StorePulseError

        raise StorePulseError(f"METABASE_URL is set but {', '.join(missing)} "
                              f"{'is' if len(missing) == 1 else 'are'} not")
    check_tenant_db_secret(os.environ["METABASE_TENANT_DB_SECRET"])
    port = os.environ.get("METABASE_DB_PORT")
    return MetabaseSettings(url=url, admin_email=os.environ["METABASE_ADMIN_EMAIL"],
                            admin_password=os.environ["METABASE_ADMIN_PASSWORD"],
                            tenant_db_secret=os.environ["METABASE_TENANT_DB_SECRET"],
                            db_host=os.environ.get("METABASE_DB_HOST") or None,
                            db_port=int(port) if port else None)


@dataclass(frozen=True)
class ExecutorSettings:
    """How Dagster runs the steps of a run: in_process (default), multiprocess, celery, k8s.

    In-process by default: a StorePulse run is one or two small steps (a tenant's load, the
    dbt build, a tenant's forecasts and anomalies), and a process per step cost more to start
    (it loads the whole code location) than most steps take; runs of different tenants are
    what runs in parallel, through the run queue."""

    kind: str = "in_process"
    max_concurrent: int | None = None  # multiprocess: processes per run (default: CPU count)
    # celery: where steps are queued and results come back (RabbitMQ by default; a redis://
    # URL works as well)
    celery_broker: str = "pyamqp://guest@127.0.0.1:5672//"
    celery_backend: str = "rpc://"
    celery_queue: str = "dagster"  # the queue steps go to, and workers listen on (-q)


def load_executor_settings() -> ExecutorSettings:
    concurrent = os.environ.get("STOREPULSE_MAX_CONCURRENT")
    defaults = ExecutorSettings()
    return ExecutorSettings(kind=os.environ.get("STOREPULSE_EXECUTOR", "in_process"),
                            max_concurrent=int(concurrent) if concurrent else None,
                            celery_broker=os.environ.get("STOREPULSE_CELERY_BROKER",
                                                         defaults.celery_broker),
                            celery_backend=os.environ.get("STOREPULSE_CELERY_BACKEND",
                                                          defaults.celery_backend),
                            celery_queue=os.environ.get("STOREPULSE_CELERY_QUEUE",
                                                        defaults.celery_queue))
