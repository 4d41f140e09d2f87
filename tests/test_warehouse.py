import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from storepulse.errors import StorePulseError
from storepulse.settings import load_settings
from storepulse.warehouse import (
    dbt_environment,
    dispose_engines,
    get_engine,
    parse_database_url,
    resolve_database_url,
)
from tests.conftest import stop_embedded_server


def test_database_url_wins_when_set(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://alice:secret@db.example:6543/retail")
    monkeypatch.setenv("STOREPULSE_HOME", str(tmp_path))
    url = resolve_database_url()
    assert (url.host, url.port, url.database, url.username) == ("db.example", 6543, "retail",
                                                                 "alice")
    assert url.drivername == "postgresql+psycopg"
    # No embedded server was started for it.
    assert not (tmp_path / "pgdata").exists()


def test_embedded_server_when_database_url_unset(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("STOREPULSE_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    settings = load_settings()
    url = resolve_database_url(settings)
    try:
        # The socket lives in the data folder under STOREPULSE_HOME.
        assert str(settings.pgdata_dir) in str(url.query.get("host"))
        engine = get_engine(url)
        with engine.connect() as conn:
            pid = conn.execute(sa.text("select pg_backend_pid()")).scalar_one()
            assert conn.execute(sa.text(
                "select current_setting('data_directory')")).scalar_one() \
                == str(settings.pgdata_dir)
        postmaster = (settings.pgdata_dir / "postmaster.pid").read_text().split()[0]
        # A second resolution reuses the running server rather than starting another.
        again = resolve_database_url(settings)
        assert again == url
        assert (settings.pgdata_dir / "postmaster.pid").read_text().split()[0] == postmaster
        assert pid > 0
        env = dbt_environment(url)
        assert env["STOREPULSE_DB_HOST"] == str(url.query["host"])
    finally:
        dispose_engines()
        stop_embedded_server(settings.pgdata_dir)


@pytest.mark.parametrize("raw", ["not a url", "postgresql://host:notaport/db",
                                 "mysql://u@h/db", "postgresql://u@h"])
def test_malformed_url_is_one_clear_error(raw):
    with pytest.raises(StorePulseError) as info:
        parse_database_url(raw)
    message = str(info.value)
    assert "\n" not in message and "DATABASE_URL" in message


def test_unreachable_server_is_one_clear_error():
    # Port 1 on loopback: nothing listens there.
    with pytest.raises(StorePulseError) as info:
        get_engine(parse_database_url("postgresql://postgres@127.0.0.1:1/postgres"))
    assert "cannot reach PostgreSQL at" in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_prints_one_line_without_traceback(tmp_path):
    env = {**os.environ, "DATABASE_URL": "postgresql://u:pw@127.0.0.1:1/x",
           "STOREPULSE_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "storepulse_cli", "db", "migrate"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: cannot reach PostgreSQL")
    assert "pw" not in lines[0] and "Traceback" not in done.stderr


def test_password_is_never_echoed():
    with pytest.raises(StorePulseError) as info:
        parse_database_url("mysql://user:hunter2@h/db")
    assert "hunter2" not in str(info.value)


def test_settings_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for var in ("STOREPULSE_HOME", "STOREPULSE_LANDING", "DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings()
    assert settings.home == Path(tmp_path / ".storepulse").resolve()
    assert settings.landing_dir == settings.home / "landing"
