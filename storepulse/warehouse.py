"""The warehouse connection: ``DATABASE_URL`` when set, else an embedded PostgreSQL (pgserver).

The embedded server lives in ``$STOREPULSE_HOME/pgdata``. It is started on first use and left
running so that dbt, Dagster subprocesses and later commands reuse it instead of paying the
start-up again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from storepulse.errors import StorePulseError
from storepulse.settings import Settings, load_settings

log = logging.getLogger(__name__)


def parse_database_url(raw: str) -> URL:
    """Parse a ``postgresql://`` URL and pin the psycopg 3 driver; reject anything else clearly."""
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise StorePulseError(
            f"DATABASE_URL is malformed: {_redact(raw)!r} "
            "(expected postgresql://user[:password]@host[:port]/database)"
        ) from None
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise StorePulseError(
            f"DATABASE_URL must point at PostgreSQL, got {url.get_backend_name()!r}"
        )
    if not url.database:
        raise StorePulseError("DATABASE_URL names no database (add /<database> at the end)")
    return url.set(drivername="postgresql+psycopg")


def _redact(raw: str) -> str:
    # Never echo a password back into logs or terminals.
    if "@" in raw and ":" in raw.split("@", 1)[0].split("//", 1)[-1]:
        scheme, rest = raw.split("//", 1) if "//" in raw else ("", raw)
        creds, host = rest.split("@", 1)
        return f"{scheme}//{creds.split(':', 1)[0]}:***@{host}"
    return raw


def embedded_database_url(settings: Settings) -> URL:
    """Start (or attach to) the embedded server and return its URL."""
    # platformdirs (inside pgserver) warns on machines without XDG_RUNTIME_DIR; it falls back
    # to /tmp correctly, so the warning is only noise in the CLI.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        import pgserver
    except ImportError:  # pragma: no cover - pgserver is a hard dependency
        raise StorePulseError("DATABASE_URL is unset and pgserver is not installed") from None
    settings.pgdata_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = _pgserver(pgserver, settings.pgdata_dir)
    except Exception as exc:  # pgserver raises plain exceptions with long output
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorePulseError(
            f"could not start embedded PostgreSQL in {settings.pgdata_dir}: {first_line}"
        ) from None
    url = parse_database_url(server.get_uri())
    return url.set(database="postgres")


_SHELL_SAFE = re.compile(r"[A-Za-z0-9_./+-]+")


def _pgserver(pgserver: ModuleType, pgdata: Path) -> Any:
    safe = _shell_safe_path(pgdata)
    if safe == pgdata:
        return pgserver.get_server(pgdata, cleanup_mode=None)
    if os.name == "posix" and os.geteuid() == 0:
        # As root, pgserver runs postgres as its own user and opens the folders above the data
        # folder to it; given a link, it would open the link's folders only.
        from pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(pgdata)
    # get_server() resolves links, so the link goes to the constructor itself (one server
    # object per process, as get_server keeps).
    known = pgserver.PostgresServer._instances.get(safe)
    return known or pgserver.PostgresServer(safe, cleanup_mode=None)


def _shell_safe_path(pgdata: Path) -> Path:
    """``pgdata``, or a link to it whose path a shell keeps whole.

    pgserver hands its socket folder (the data folder itself, unless that path is too long
    for a socket) to postgres as ``pg_ctl -o "-k <folder>"``, which postgres splits on
    spaces: a data folder under "My Documents" would never start. The link has a plain name
    derived from the real path, so every process reaches the same server through it.
    """
    if _SHELL_SAFE.fullmatch(str(pgdata)):
        return pgdata
    links = Path(tempfile.gettempdir()) / f"storepulse-pgdata-{os.getuid()}"
    # pgserver runs postgres as its own user when started by root: it must traverse this.
    links.mkdir(mode=0o755, exist_ok=True)
    link = links / hashlib.sha256(str(pgdata).encode()).hexdigest()[:16]
    if not (link.is_symlink() and link.resolve() == pgdata.resolve()):
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        with contextlib.suppress(FileExistsError):  # another process made the same link
            link.symlink_to(pgdata, target_is_directory=True)
    return link


def resolve_database_url(settings: Settings | None = None) -> URL:
    settings = settings or load_settings()
    if settings.database_url:
        return parse_database_url(settings.database_url)
    return embedded_database_url(settings)


def libpq_params(url: URL) -> dict[str, str]:
    """Connection parameters in the form dbt's profile and libpq tools expect."""
    params = {
        "host": str(url.host or url.query.get("host") or "127.0.0.1"),
        "port": str(url.port or 5432),
        "user": str(url.username or "postgres"),
        "password": url.password or "",
        "dbname": str(url.database),
    }
    return params


_ENGINES: dict[str, Engine] = {}


def get_engine(url: URL | None = None) -> Engine:
    """A pooled engine for the warehouse (one per URL per process), verified with a round trip."""
    url = url or resolve_database_url()
    key = url.render_as_string(hide_password=False)
    if key not in _ENGINES:
        _ENGINES[key] = sa.create_engine(url, pool_pre_ping=True)
    engine = _ENGINES[key]
    check_connection(engine)
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (before dropping a database, or at exit)."""
    while _ENGINES:
        _ENGINES.popitem()[1].dispose()


def check_connection(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StorePulseError(
            f"cannot reach PostgreSQL at {engine.url.render_as_string(hide_password=True)}: "
            f"{reason}"
        ) from None


def dbt_environment(url: URL) -> dict[str, str]:
    """Variables ``dbt_project/profiles.yml`` reads, for the given warehouse URL."""
    params = libpq_params(url)
    return {
        "STOREPULSE_DB_HOST": params["host"],
        "STOREPULSE_DB_PORT": params["port"],
        "STOREPULSE_DB_USER": params["user"],
        "STOREPULSE_DB_PASSWORD": params["password"],
        "STOREPULSE_DB_NAME": params["dbname"],
    }
