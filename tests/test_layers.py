"""Imports point one way: the shell (storepulse_cli) on top, then orchestration (Dagster),
then the libraries, which import neither Dagster nor each other, then the storepulse core
(settings, warehouse, migrations, tenants), which imports none of them."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("ingestion", "ml", "quality", "alerting", "dashboards")
FIRST_PARTY = ("storepulse", "storepulse_cli", "orchestration", *LIBRARIES)


def imported_packages(package: str) -> dict[str, set[str]]:
    """Per module of ``package``, the top-level names it imports (at any depth of the code)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def forbidden(package: str, allowed: set[str]) -> dict[str, set[str]]:
    return {module: bad for module, names in imported_packages(package).items()
            if (bad := {n for n in names if n in FIRST_PARTY or n.startswith("dagster")}
                - allowed)}


def test_the_core_imports_no_layer_above_it():
    assert forbidden("storepulse", {"storepulse"}) == {}


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_library_imports_no_dagster_no_other_library_and_nothing_above(library):
    assert forbidden(library, {library, "storepulse"}) == {}


def test_orchestration_never_imports_the_shell():
    allowed = {"orchestration", "storepulse", *LIBRARIES, "dagster", "dagster_dbt",
               "dagster_twilio", "dagster_celery", "dagster_k8s", "dagster_postgres"}
    assert forbidden("orchestration", allowed) == {}


def test_every_first_party_package_is_checked():
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert packages - {"tests", "bench"} == set(FIRST_PARTY)
