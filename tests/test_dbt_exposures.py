"""Every Metabase dashboard is a dbt exposure, generated from its spec so the two cannot
drift; dbt itself resolves what each one depends on."""

import json
import re
import subprocess
import sys

import yaml

from dashboards.exposures import EXPOSURES_FILE, main
from dashboards.specs import load_specs
from tests.dbt_helpers import DBT_PATHS, run_dbt


def test_the_exposures_file_is_generated_from_the_current_specs():
    assert main([str(DBT_PATHS.project_dir), "--check"]) == 0


def test_dbt_resolves_every_dashboard_to_the_models_its_cards_read(database_url):
    run_dbt(database_url, "parse")
    manifest = _manifest()
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    specs = load_specs()
    assert set(exposures) == {f"{spec.key}_dashboard" for spec in specs}
    for spec in specs:  # each mart a card names, and nothing else, resolved by dbt
        sql = " ".join(card.sql for card in spec.cards)
        models = {node.removeprefix("model.storepulse.") for node in
                  exposures[f"{spec.key}_dashboard"]["depends_on"]["nodes"]
                  if node.startswith("model.")}
        assert models == set(re.findall(r"\bmarts\.(\w+)", sql)), spec.key
    store = exposures["store_performance_dashboard"]
    assert "model.storepulse.mart_daily_store_kpis" in store["depends_on"]["nodes"]
    health = exposures["data_health_dashboard"]
    assert "source.storepulse.raw.ingest_files" in health["depends_on"]["nodes"]
    assert "raw.quarantine" in health["description"]  # read outside dbt, so named
    committed = yaml.safe_load((DBT_PATHS.project_dir / EXPOSURES_FILE).read_text())
    assert len(committed["exposures"]) == len(specs)


def _manifest() -> dict:
    from tests.dbt_helpers import TEST_TARGET

    return json.loads((TEST_TARGET / "manifest.json").read_text())


def test_the_check_fails_when_a_spec_changed(tmp_path):
    project = tmp_path / "dbt_project"
    (project / EXPOSURES_FILE).parent.mkdir(parents=True)
    (project / EXPOSURES_FILE).write_text("version: 2\nexposures: []\n")
    done = subprocess.run([sys.executable, "-m", "dashboards.exposures", str(project), "--check"],
                          capture_output=True, text=True, cwd=DBT_PATHS.project_dir.parent)
    assert done.returncode == 1 and "out of date" in done.stderr
