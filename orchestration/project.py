"""The dbt project object, kept apart so it can be prepared before the assets load.

The manifest lives under ``$STOREPULSE_HOME/dbt/target`` and is parsed once per version of the
project (see ``storepulse.dbt_runtime``): the code server, every run worker and the demo load
the same file, and a changed model is picked up on the next load, ``dagster dev`` or not.
"""

from dagster_dbt import DbtProject

from storepulse.dbt_runtime import dbt_paths, ensure_manifest

DBT_PATHS = dbt_paths()
ensure_manifest(DBT_PATHS)

dbt_project = DbtProject(project_dir=DBT_PATHS.project_dir,
                         profiles_dir=DBT_PATHS.project_dir,
                         target_path=DBT_PATHS.target_dir)
