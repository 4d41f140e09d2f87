"""The dbt project object, kept apart so it can be prepared before the assets load."""

from pathlib import Path

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` the manifest is rebuilt on every load. CI and images run
# `dagster-dbt project prepare-and-package --file orchestration/project.py` so nothing parses
# at load time; a fresh clone that skipped that step parses once here instead of failing.
dbt_project.prepare_if_dev()
if not dbt_project.manifest_path.exists():
    dbt_project.preparer.prepare(dbt_project)
