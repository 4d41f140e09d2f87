"""Shared benchmark plumbing: a scratch database, machine facts, table and JSON output."""

from __future__ import annotations

import json
import os
import platform
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psutil
import sqlalchemy as sa
from dagster import DagsterEventType
from sqlalchemy.engine import URL

from storepulse.migrate import migrate
from storepulse.settings import load_settings
from storepulse.warehouse import dispose_engines, get_engine, resolve_database_url

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Run config for the benches' in-process runs: Dagster's console logger on errors only, so the
# bench's own table is what the terminal shows.
QUIET_RUNS = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
UCI_CSV = SHARED_DATA / "online_retail.csv.gz"


def machine() -> dict[str, object]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "date": datetime.now(UTC).date().isoformat()}


def announce_machine() -> dict[str, object]:
    """The machine's facts, printed as a benchmark's first line and returned for its JSON."""
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, "
          f"Python {info['python']}, {info['date']}")
    return info


@contextmanager
def scratch_database(prefix: str = "sp_bench"):
    """A fresh, migrated database on the platform's server; dropped afterwards."""
    server = resolve_database_url(load_settings())
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    url: URL = server.set(database=name)
    # Tenant login roles are cluster-wide: the benchmark's get a prefix of their own, dropped
    # with the database.
    role_prefix = f"b{uuid.uuid4().hex[:6]}_"
    saved_prefix = os.environ.get("STOREPULSE_ROLE_PREFIX")
    os.environ["STOREPULSE_ROLE_PREFIX"] = role_prefix
    try:
        engine = get_engine(url)
        migrate(engine)
        yield url, engine
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
            roles = conn.execute(sa.text("select rolname from pg_roles where rolname like :p"),
                                 {"p": role_prefix.replace("_", r"\_") + "%"}).scalars()
            for role in roles.all():
                conn.execute(sa.text(f'drop role if exists "{role}"'))
        if saved_prefix is None:
            os.environ.pop("STOREPULSE_ROLE_PREFIX", None)
        else:
            os.environ["STOREPULSE_ROLE_PREFIX"] = saved_prefix


def print_table(title: str, headers: list[str], rows: list[list[object]]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.rjust(w) if c[:1].isdigit() else c.ljust(w)
                        for c, w in zip(row, widths, strict=True)))


def emit_json(figures: dict[str, object]) -> None:
    print(json.dumps(figures, sort_keys=True))


def step_spans(instance, run_id: str) -> dict[str, tuple[float, float]]:
    """Each step of the run: the timestamps of its start and of its end (success or failure)."""
    starts, spans = {}, {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not event.step_key:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            spans[event.step_key] = (starts[event.step_key], record.timestamp)
    return spans
