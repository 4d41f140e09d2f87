"""Run dbt and the dbt assets against a test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from dagster import DagsterInstance, materialize
from sqlalchemy.engine import URL

from storepulse.dbt_runtime import dbt_executable, dbt_paths, ensure_manifest
from storepulse.warehouse import dbt_environment

DBT_PATHS = dbt_paths()
# dbt invocations of the tests write here (under STOREPULSE_HOME, never into the checkout).
TEST_TARGET = DBT_PATHS.runs_dir / f"tests-{os.getpid()}"


def parsed_manifest() -> dict:
    """The project's manifest, parsed first when this checkout's version is not (a test run
    alone must not depend on an earlier test having parsed it)."""
    ensure_manifest(DBT_PATHS)
    return json.loads(DBT_PATHS.manifest_path.read_text())


def run_dbt(url: URL, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **DBT_PATHS.environment(), "DBT_TARGET_PATH": str(TEST_TARGET),
           **dbt_environment(url)}
    done = subprocess.run([dbt_executable(), *args], env=env, cwd=DBT_PATHS.project_dir,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:]
    return done


def materialize_dbt(url: URL):
    from orchestration.dbt import storepulse_dbt_models
    from orchestration.definitions import RESOURCES
    from orchestration.resources import WarehouseResource

    resources = {**RESOURCES,
                 "warehouse": WarehouseResource(database_url=url.render_as_string(False))}
    with DagsterInstance.ephemeral() as instance:
        return materialize([storepulse_dbt_models], instance=instance, resources=resources,
                           raise_on_error=True)


def frame(engine: sa.Engine, sql: str, **params) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(sql), conn, params=params)


def lint_sql(url: URL, project_dir: Path, *paths: str) -> dict[str, list[dict]]:
    """sqlfluff's findings per file it rendered and linted (relative to the project), with
    the dbt templater compiling against ``url``: models render their incremental branch where
    their table exists, their full-refresh branch where it does not. A file dbt could not
    compile (and a macro, such as a generic test) is left out: sqlfluff reports it with no
    findings and nothing parsed."""
    env = {**os.environ, **DBT_PATHS.environment(), "DBT_TARGET_PATH": str(TEST_TARGET),
           **dbt_environment(url)}
    done = subprocess.run([sys.executable, "-m", "sqlfluff", "lint", *paths, "--format", "json"],
                          env=env, cwd=project_dir, capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr[-4000:]
    return {Path(found["filepath"]).as_posix(): found["violations"]
            for found in json.loads(done.stdout) if found["statistics"]["segments"]}
