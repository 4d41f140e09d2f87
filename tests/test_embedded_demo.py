"""The setup promise on the embedded server: `storepulse demo` with DATABASE_URL unset.

The demo runs as a user runs it (the installed `storepulse` script, in a subprocess, from
another folder), with STOREPULSE_HOME on a path with spaces: the socket folder of the embedded
server then has spaces too, and every component that connects (SQLAlchemy, dbt's profile,
Great Expectations, Dagster's resources) must accept it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from storepulse.settings import load_settings
from storepulse.warehouse import dispose_engines, get_engine, resolve_database_url
from tests.conftest import stop_embedded_server

STOREPULSE = Path(sys.executable).parent / "storepulse"


@pytest.mark.slow
def test_demo_builds_every_layer_on_embedded_postgres_under_a_path_with_spaces(
        tmp_path, monkeypatch):
    home = tmp_path / "My Documents" / "store pulse"
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DAGSTER_HOME")}
    env["STOREPULSE_HOME"] = str(home)
    try:
        done = subprocess.run([str(STOREPULSE), "demo", "--scale", "0.02", "--as-of",
                               "2026-06-30"], cwd=workdir,
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "Traceback" not in done.stderr
        # the libraries' chatter stays out of the terminal: Stan's per-fit lines, Prophet's
        # warning on every fit of under two years, plotly's absence, Dagster's API warnings
        for noise in ("cmdstanpy", "Yearly seasonality", "plotly", "Warning:"):
            assert noise not in done.stdout + done.stderr, noise
        assert "StorePulse demo summary" in done.stdout
        # each run's warnings in the demo's own words, after the run: no Dagster log lines
        assert " - dagster - " not in done.stdout + done.stderr
        assert "\n    warning: METABASE_URL is not set" in done.stdout
        warned = sorted(re.findall(r"^    warning: (\S+): loaded [\d,]+ of [\d,]+ rows, "
                                   r"(\d+) quarantined", done.stdout, re.M))
        # long steps say how far they are: dbt nodes done of the total, series forecast
        assert re.search(r"dbt build: (\d+)/\1 nodes done", done.stdout), done.stdout[-3000:]
        assert re.search(r"\w+: \d+ series forecast \(\d+ backtested\)", done.stdout)

        # dbt by hand after the pipeline's builds: it reuses their parse of the project
        listed = subprocess.run([str(STOREPULSE), "dbt", "ls", "--select",
                                 "mart_daily_store_kpis"], cwd=workdir, env=env,
                                capture_output=True, text=True, timeout=300)
        assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-2000:]
        assert "storepulse.marts.mart_daily_store_kpis" in listed.stdout
        assert "Unable to do partial parsing" not in listed.stdout, listed.stdout[-2000:]

        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.setenv("STOREPULSE_HOME", str(home))
        url = resolve_database_url(load_settings())
        assert url.host is None and " " in str(home)  # reached over the socket
        with get_engine(url).connect() as conn:
            def count(sql: str) -> int:
                return conn.execute(sa.text(sql)).scalar_one()

            # the Great Expectations gate ran on every tenant's batch and let it through
            assert count("select count(distinct tenant_id) from ops.quality_results "
                         "where suite = 'raw_sales_lines'") == 3
            assert count("select count(*) from ops.quality_results where severity = "
                         "'error' and not success") == 0
            assert count("select count(*) from raw.ingest_files where held_at is not null") \
                == 0
            # every file with quarantined rows was named, with its count
            assert warned == sorted((name, str(n)) for name, n in conn.execute(sa.text(
                "select file_name, rows_quarantined from raw.ingest_files "
                "where rows_quarantined > 0")).all()), done.stdout[-3000:]
            assert warned
            # dbt built the marts from every loaded line; ML wrote forecasts and anomalies
            assert count("select count(*) from marts.fct_sales_lines") == count(
                "select count(*) from raw.sales_lines")
            assert count("select count(distinct tenant_id) from ml.forecasts") == 3
            # the sample ends on --as-of (default: yesterday); each tenant's last day was
            # exported whole (its sales go on to the close), so its forecasts start the day
            # after (a tenant with no sale on --as-of ends a day earlier)
            assert str(conn.execute(sa.text(
                "select max(day) from marts.mart_daily_store_kpis")).scalar_one()) == \
                "2026-06-30"
            last_days = dict(conn.execute(sa.text(
                "select tenant_id, max(day) from marts.mart_daily_store_kpis group by 1")).all())
            starts = dict(conn.execute(sa.text(
                "select tenant_id, min(ds) from ml.forecasts group by 1")).all())
            assert starts == {tenant: day + timedelta(days=1) for tenant, day in
                              last_days.items()}
            assert count("select count(*) from ml.anomalies") > 0
            # the alert sensor's tick says what it queued, as the tick history will
            queued = re.search(r"alerts: (\d+) new anomalies, (\d+) deliveries queued"
                               r"(?:, (\d+) not sent)?", done.stdout)
            assert queued, done.stdout[-3000:]
            assert (int(queued[1]), int(queued[2]), int(queued[3] or 0)) == (
                count("select count(*) from ml.anomalies"),
                count("select count(*) from ops.alert_deliveries where status <> "
                      "'suppressed'"),
                count("select count(*) from ops.alert_deliveries where status = "
                      "'suppressed'"))
        # Run again: nothing new lands, so nothing runs, and the alert sensor goes on from
        # its cursor instead of reading every anomaly again. Alert rules the user set in
        # between are theirs: the demo's sample recipients do not replace them.
        rules = subprocess.run([str(STOREPULSE), "alerts", "set", "northwind", "--email",
                                "boss@northwind.test", "--recent-days", "31"], cwd=workdir,
                               env=env, capture_output=True, text=True, timeout=120)
        assert rules.returncode == 0, rules.stderr
        again = subprocess.run([str(STOREPULSE), "demo", "--scale", "0.02", "--as-of",
                                "2026-06-30"], cwd=workdir, env=env, capture_output=True,
                               text=True, timeout=300)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert "runs: 0 (0 failed)" in again.stdout, again.stdout[-3000:]
        assert "alerts: 0 new anomalies, 0 deliveries queued;" in again.stdout
        with get_engine(url).connect() as conn:
            assert conn.execute(sa.text(
                "select email_recipients, sms_recipients, recent_days from ops.alert_rules "
                "where tenant_id = 'northwind'")).one() == (
                ["boss@northwind.test"], ["+15005550006"], 31)
        # dbt wrote its manifest, artifacts and logs under STOREPULSE_HOME
        assert (home / "dbt" / "target" / "manifest.json").is_file()
        assert any((home / "dbt" / "runs").iterdir())
        assert list(workdir.iterdir()) == []
    finally:
        dispose_engines()
        stop_embedded_server(home / "pgdata")
