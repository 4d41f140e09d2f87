"""Versioned, idempotent database migrations.

Each ``migrations/NNNN_name.sql`` file runs once, all pending ones in one transaction, and is
recorded in ``ops.schema_migrations`` with a checksum; an edited, already-applied file is an
error rather than a silent drift. A lock on ``ops.schema_migrations`` (an advisory lock on a
new database, before it exists) makes concurrent ``migrate`` calls (Dagster workers, tests)
safe.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storepulse.errors import StorePulseError

_LOCK_KEY = 0x53544F5245  # "STORE": any constant shared by every migrator


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("storepulse.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append(Migration(int(version), name, entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def migrate(engine: Engine) -> list[Migration]:
    """Apply pending migrations; return the ones applied now (empty when up to date)."""
    applied_now = []
    with engine.begin() as conn:
        # Once the ledger of migrations exists, lock it: no tenant role can (any role can take
        # an advisory lock). Before that, on a new database, no tenant exists to interfere.
        if conn.execute(sa.text("select to_regclass('ops.schema_migrations')")).scalar():
            conn.execute(sa.text("lock table ops.schema_migrations in exclusive mode"))
        else:
            conn.execute(sa.text("select pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        conn.execute(sa.text("create schema if not exists ops"))
        conn.execute(
            sa.text(
                "create table if not exists ops.schema_migrations ("
                " version integer primary key, name text not null, checksum text not null,"
                " applied_at timestamptz not null default now())"
            )
        )
        done = {
            row.version: row.checksum
            for row in conn.execute(sa.text("select version, checksum from ops.schema_migrations"))
        }
        for migration in available_migrations():
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise StorePulseError(
                        f"migration {migration.version:04d}_{migration.name} was edited after it "
                        "was applied; add a new migration instead"
                    )
                continue
            # The driver cursor with no parameters: migrations may contain '%' (format()).
            conn.connection.driver_connection.cursor().execute(migration.sql)
            conn.execute(
                sa.text(
                    "insert into ops.schema_migrations (version, name, checksum) "
                    "values (:v, :n, :c)"
                ),
                {"v": migration.version, "n": migration.name, "c": migration.checksum},
            )
            applied_now.append(migration)
    return applied_now
