"""Shared fixtures: every test that touches PostgreSQL gets a database of its own.

The server is ``DATABASE_URL`` when set (CI points it at the machine's PostgreSQL), else an
embedded pgserver started once per session in a temporary folder. Test databases are created
with a unique name and dropped afterwards, so parallel or repeated runs never collide.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from storepulse.migrate import migrate
from storepulse.warehouse import dispose_engines, get_engine, parse_database_url

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
UCI_CSV = SHARED_DATA / "online_retail.csv.gz"


@pytest.fixture(scope="session", autouse=True)
def tenant_role_prefix() -> Iterator[str]:
    """Tenant login roles are cluster-wide: give this session's a prefix of their own."""
    prefix = f"t{uuid.uuid4().hex[:6]}_"
    os.environ["STOREPULSE_ROLE_PREFIX"] = prefix
    yield prefix
    os.environ.pop("STOREPULSE_ROLE_PREFIX", None)


def drop_roles(server: URL, prefix: str) -> None:
    with _admin(server).connect() as conn:
        roles = conn.execute(sa.text("select rolname from pg_roles where rolname like :p"),
                             {"p": prefix.replace("_", r"\_") + "%"}).scalars().all()
        for role in roles:
            conn.execute(sa.text(f'drop role if exists "{role}"'))


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory, tenant_role_prefix: str
               ) -> Iterator[URL]:
    """An admin URL on the server tests run against."""
    if os.environ.get("DATABASE_URL"):
        url = parse_database_url(os.environ["DATABASE_URL"])
    else:
        url = embedded_server(tmp_path_factory)
    yield url
    dispose_engines()
    drop_roles(url, tenant_role_prefix)


def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> URL:
    import pgserver

    pgdata = tmp_path_factory.mktemp("pg") / "pgdata"
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    return parse_database_url(server.get_uri()).set(database="postgres")


def stop_embedded_server(pgdata: Path) -> None:
    """Stop the embedded server a test started under ``pgdata`` (StorePulse leaves it running
    for the next command, as users want), and wait until it is down."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return
    os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)  # PostgreSQL's fast shutdown
    deadline = time.monotonic() + 30
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def _admin(url: URL) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def create_database(server: URL, prefix: str = "sp_test") -> URL:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with _admin(server).connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    return server.set(database=name)


def drop_database(url: URL) -> None:
    dispose_engines()
    with _admin(url.set(database="postgres")).connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{url.database}" with (force)'))


@pytest.fixture
def database_url(server_url: URL) -> Iterator[URL]:
    url = create_database(server_url)
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def engine(database_url: URL) -> sa.Engine:
    """A migrated, empty warehouse."""
    engine = get_engine(database_url)
    migrate(engine)
    return engine


@pytest.fixture
def database_env(database_url: URL, monkeypatch: pytest.MonkeyPatch) -> URL:
    """Point StorePulse's settings (and so Dagster's resources and dbt) at the test database."""
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    return database_url


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory: pytest.TempPathFactory):
    """A small deterministic sample in landing layout (all three demo tenants)."""
    from ingestion.generator import generate_sample

    root = tmp_path_factory.mktemp("landing")
    return generate_sample(root, seed=7, scale=0.15)


def register_demo_tenants(engine: sa.Engine) -> list[str]:
    from ingestion.generator import DEMO_TENANTS
    from storepulse.tenants import Tenant, add_tenant

    for p in DEMO_TENANTS:
        add_tenant(engine, Tenant(p.tenant_id, p.name, p.timezone, p.currency, p.country_code))
    return [p.tenant_id for p in DEMO_TENANTS]


def tenant_warehouse(server: URL, landing: Path, tenant_ids: tuple[str, ...], seed: int,
                     password: str) -> tuple[URL, sa.Engine, dict[str, str]]:
    """A new database with demo tenants that log in with ``password``, their generated sales
    loaded (batch ``load-<tenant>``); returns the url, an engine and each tenant's role."""
    from ingestion.generator import DEMO_TENANTS, generate_sample
    from ingestion.landing import ingest_tenant
    from storepulse.tenants import Tenant, add_tenant
    from tests.ingestion_helpers import publish

    url = create_database(server)
    profiles = [p for p in DEMO_TENANTS if p.tenant_id in tenant_ids]
    generate_sample(landing, seed=seed, scale=0.05, tenants=tuple(profiles))
    engine = get_engine(url)
    migrate(engine)
    roles = {}
    for p in profiles:
        roles[p.tenant_id] = add_tenant(engine, Tenant(p.tenant_id, p.name, p.timezone,
                                                       p.currency, p.country_code),
                                        password=password).role
        ingest_tenant(engine, landing, p.tenant_id, batch_id=f"load-{p.tenant_id}")
    publish(engine)
    return url, engine, roles


@pytest.fixture(scope="session")
def uci_marts(server_url: URL) -> Iterator[sa.Engine]:
    """The UCI export loaded and built through dbt, once per session (two modules read it)."""
    from ingestion.loader import load_file
    from ingestion.spec import shipped_specs
    from storepulse.tenants import Tenant, add_tenant
    from tests.dbt_helpers import run_dbt
    from tests.ingestion_helpers import publish

    url = create_database(server_url)
    engine = get_engine(url)
    migrate(engine)
    add_tenant(engine, Tenant("uci", "UCI Online Retail", "Europe/London", "GBP", "GB"))
    load_file(engine, UCI_CSV, "uci", shipped_specs()["uci_online_retail_csv"])
    publish(engine)
    run_dbt(url, "build")
    try:
        yield engine
    finally:
        drop_database(url)


def uci_available() -> bool:
    return UCI_CSV.exists()
