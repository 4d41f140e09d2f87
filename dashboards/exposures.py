"""dbt exposures for the Metabase dashboards, generated from ``dashboards/specs`` so the two
cannot drift: each dashboard is an exposure that depends on the marts and sources its cards
read. Tables outside dbt (``ml.*``, written by Dagster's ML assets; ``ops.*``) are named in the
exposure's description.

    python -m dashboards.exposures DBT_PROJECT_DIR          # rewrite the exposures file
    python -m dashboards.exposures DBT_PROJECT_DIR --check  # exit 1 when it is out of date

The test suite runs the check, so a changed dashboard spec without regenerated exposures
fails CI.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from dashboards.specs import DashboardSpec, load_specs

EXPOSURES_FILE = Path("models") / "marts" / "_exposures.yml"
_TABLE = re.compile(r"\b(marts|raw|ops|ml|staging)\.([a-z_][a-z0-9_]*)\b")
_HEADER = ("# Generated from dashboards/specs by `python -m dashboards.exposures "
           "dbt_project`; do not edit.\n")


def tables_read(spec: DashboardSpec) -> list[tuple[str, str]]:
    """(schema, table) of every relation the dashboard's cards name, sorted."""
    return sorted({match.groups() for card in spec.cards for match in _TABLE.finditer(card.sql)})


def dbt_sources(project_dir: Path) -> set[tuple[str, str]]:
    """(source, table) pairs the dbt project declares."""
    declared = set()
    for path in (project_dir / "models").rglob("*.yml"):
        for source in (yaml.safe_load(path.read_text()) or {}).get("sources") or []:
            declared |= {(source["name"], table["name"]) for table in source.get("tables", [])}
    return declared


def exposures(specs: list[DashboardSpec], sources: set[tuple[str, str]]) -> dict[str, Any]:
    out = []
    for spec in specs:
        depends_on, outside = [], []
        for schema, table in tables_read(spec):
            if schema == "marts":
                depends_on.append(f"ref('{table}')")
            elif (schema, table) in sources:
                depends_on.append(f"source('{schema}', '{table}')")
            else:
                outside.append(f"{schema}.{table}")
        audience = ("each tenant's store managers, in the tenant's own Metabase collection"
                    if spec.audience == "tenant" else "the data team")
        description = f"{spec.description.strip()} Shown to {audience}."
        if outside:
            description += f" Also reads, outside dbt: {', '.join(outside)}."
        out.append({
            "name": f"{spec.key}_dashboard",
            "label": spec.name,
            "type": "dashboard",
            "maturity": "high",
            "description": description,
            "depends_on": depends_on,
            "owner": {"name": "StorePulse data team"},
            "meta": {"spec": f"dashboards/specs/{spec.key}.yaml",
                     "cards": [card.name for card in spec.cards]},
        })
    return {"version": 2, "exposures": out}


def render(project_dir: Path) -> str:
    document = exposures(load_specs(), dbt_sources(project_dir))
    return _HEADER + yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project_dir", type=Path, help="the dbt project (dbt_project/)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the exposures file differs from the specs")
    args = parser.parse_args(argv)
    target = args.project_dir / EXPOSURES_FILE
    wanted = render(args.project_dir)
    if args.check:
        if not target.exists() or target.read_text() != wanted:
            print(f"{target} is out of date with dashboards/specs; run "
                  f"`python -m dashboards.exposures {args.project_dir}`", file=sys.stderr)
            return 1
        return 0
    target.write_text(wanted)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
