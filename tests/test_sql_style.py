"""The dbt project's SQL follows the house style of dbt_project/.sqlfluff, linted with the dbt
templater as dbt compiles it. On an empty warehouse the models render their full-refresh
branch; tests/test_dbt_marts.py lints the incremental branches against a built one."""

import shutil
from pathlib import Path

from tests.dbt_helpers import DBT_PATHS, lint_sql

PROBE = """select
    tenant_id,
    count(*) as stores
from {{ ref('stg_stores') }}
group by tenant_id
"""
# The same query against the house style: upper-case keywords and functions, targets on the
# select line.
OFF_STYLE_PROBE = """SELECT tenant_id, COUNT(*) AS stores
FROM {{ ref('stg_stores') }}
GROUP BY tenant_id
"""


def model_files(project: Path) -> set[str]:
    return {path.relative_to(project).as_posix() for path in project.glob("models/**/*.sql")}


def test_models_follow_the_house_style_and_an_off_style_model_is_caught(engine, database_url,
                                                                        tmp_path):
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PATHS.project_dir, project,
                    ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (project / "models" / "marts" / "style_probe.sql").write_text(PROBE)
    (project / "models" / "marts" / "off_style_probe.sql").write_text(OFF_STYLE_PROBE)
    findings = lint_sql(database_url, project, "models")
    assert set(findings) == model_files(project)  # every model compiled and linted
    failing = {path: sorted({v["code"] for v in found}) for path, found in findings.items()
               if found}
    assert failing == {"models/marts/off_style_probe.sql": ["CP01", "CP03", "LT09"]}
