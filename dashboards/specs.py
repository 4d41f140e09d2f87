"""Dashboard specs (YAML in ``dashboards/specs/``): cards of native SQL, layout and filters.

Card SQL uses Metabase's native variables: ``{{start_date}}``, ``{{end_date}}`` (dates) and
``{{store}}`` (text), inside optional ``[[ ... ]]`` clauses that Metabase drops when the
filter is empty. SQL several cards share is written once under the spec's ``snippets`` and
named in a card as ``{{snippet: name}}`` (Metabase's syntax for its own snippets); it is
expanded when the spec loads, so Metabase receives plain SQL. Tenant cards need no tenant
filter: they run as the tenant's own database role, and row-level security returns only its
rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SPEC_DIR = Path(__file__).parent / "specs"
DISPLAYS = {"line", "bar", "combo", "row", "area", "table", "scalar", "smartscalar", "pie"}
GRAPH_DISPLAYS = {"line", "bar", "combo", "row", "area", "pie"}
GRID_WIDTH = 24  # Metabase's dashboard grid

# The filters a dashboard can offer, as Metabase template tags and dashboard parameters.
FILTERS: dict[str, dict[str, str]] = {
    "start_date": {"display": "From", "tag_type": "date", "parameter_type": "date/single"},
    "end_date": {"display": "To", "tag_type": "date", "parameter_type": "date/single"},
    "store": {"display": "Store", "tag_type": "text", "parameter_type": "string/="},
}

_VARIABLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_OPTIONAL = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)
_SNIPPET = re.compile(r"\{\{\s*snippet:\s*([\w-]+)\s*\}\}")


class DashboardSpecError(ValueError):
    """A dashboard spec is invalid; the message names the file and what is wrong."""


@dataclass(frozen=True)
class CardSpec:
    key: str
    name: str
    display: str
    sql: str
    size: tuple[int, int]  # width, height in grid cells
    position: tuple[int, int]  # row, col
    description: str = ""
    dimensions: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    scalar_field: str | None = None
    columns: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def variables(self) -> list[str]:
        return sorted(set(_VARIABLE.findall(self.sql)))

    @property
    def visualized_columns(self) -> list[str]:
        """Every result column the visualization names (tests check the SQL returns them)."""
        scalar = [self.scalar_field] if self.scalar_field else []
        return [*self.dimensions, *self.metrics, *scalar, *self.columns]

    def visualization_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {}
        if self.display in GRAPH_DISPLAYS:
            settings["graph.dimensions"] = list(self.dimensions)
            settings["graph.metrics"] = list(self.metrics)
        if self.scalar_field:
            settings["scalar.field"] = self.scalar_field
        if self.columns:
            settings["table.columns"] = [{"name": c, "enabled": True} for c in self.columns]
        return {**settings, **self.settings}

    def template_tags(self) -> dict[str, dict[str, Any]]:
        return {name: {"id": f"storepulse-{name}", "name": name,
                       "display-name": FILTERS[name]["display"],
                       "type": FILTERS[name]["tag_type"], "required": False}
                for name in self.variables}


@dataclass(frozen=True)
class DashboardSpec:
    key: str
    name: str
    audience: str  # tenant | data_team
    description: str
    filters: tuple[str, ...]
    cards: tuple[CardSpec, ...]

    def parameters(self) -> list[dict[str, Any]]:
        return [{"id": name, "name": FILTERS[name]["display"],
                 "slug": FILTERS[name]["display"].lower(),
                 "type": FILTERS[name]["parameter_type"], "sectionId":
                 "date" if FILTERS[name]["tag_type"] == "date" else "string"}
                for name in self.filters]


def load_specs(directory: Path = SPEC_DIR) -> list[DashboardSpec]:
    paths = sorted(Path(directory).glob("*.yaml"))
    if not paths:
        raise DashboardSpecError(f"{directory}: no dashboard specs (*.yaml) there")
    specs = [_parse(path) for path in paths]
    keys = [s.key for s in specs]
    if len(set(keys)) != len(keys):
        raise DashboardSpecError(f"duplicate dashboard keys in {directory}")
    return specs


def _parse(path: Path) -> DashboardSpec:
    where = path.name
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DashboardSpecError(f"{where}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise DashboardSpecError(f"{where}: a dashboard spec must be a YAML mapping")
    try:
        filters = tuple(raw.get("filters", []))
        unknown = set(filters) - set(FILTERS)
        if unknown:
            raise DashboardSpecError(f"{where}: unknown filters {sorted(unknown)}")
        if raw["audience"] not in ("tenant", "data_team"):
            raise DashboardSpecError(f"{where}: audience must be tenant or data_team")
        snippets = raw.get("snippets") or {}
        cards = tuple(_card(where, c, snippets) for c in raw["cards"])
    except KeyError as exc:
        raise DashboardSpecError(f"{where}: missing field {exc}") from None
    except (TypeError, AttributeError) as exc:  # a value of the wrong kind
        raise DashboardSpecError(f"{where}: invalid value ({exc})") from None
    if len({c.key for c in cards}) != len(cards):
        raise DashboardSpecError(f"{where}: duplicate card keys")
    for card in cards:
        extra = set(card.variables) - set(filters)
        if extra:
            raise DashboardSpecError(f"{where}: card {card.key} uses filters {sorted(extra)} the "
                            f"dashboard does not offer")
    return DashboardSpec(raw["key"], raw["name"], raw["audience"], raw.get("description", ""),
                         filters, cards)


def _expand_snippets(where: str, key: str, sql: str, snippets: dict[str, str]) -> str:
    def snippet(match: re.Match) -> str:
        name = match.group(1)
        if name not in snippets:
            raise DashboardSpecError(f"{where}: card {key} names snippet {name!r}, which the "
                                     f"spec's snippets do not define ({sorted(snippets)})")
        return snippets[name].strip()

    return _SNIPPET.sub(snippet, sql)


def _card(where: str, raw: dict[str, Any], snippets: dict[str, str]) -> CardSpec:
    sql = _expand_snippets(where, raw["key"], raw["sql"], snippets).strip()
    card = CardSpec(
        key=raw["key"], name=raw["name"], display=raw["display"], sql=sql,
        size=tuple(raw["size"]), position=tuple(raw["position"]),
        description=raw.get("description", ""), dimensions=tuple(raw.get("dimensions", [])),
        metrics=tuple(raw.get("metrics", [])), scalar_field=raw.get("field"),
        columns=tuple(raw.get("columns", [])), settings=raw.get("settings", {}))
    if card.display not in DISPLAYS:
        raise DashboardSpecError(f"{where}: card {card.key}: display {card.display!r} is not "
                                 f"one of {sorted(DISPLAYS)}")
    if card.position[1] + card.size[0] > GRID_WIDTH:
        raise DashboardSpecError(f"{where}: card {card.key} is wider than the "
                                 f"{GRID_WIDTH}-column grid")
    if not card.visualized_columns:
        raise DashboardSpecError(f"{where}: card {card.key} names no columns to show")
    return card


def render_sql(sql: str, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Metabase's substitution, for running a card outside Metabase: optional clauses whose
    variables are all set are kept, the rest dropped; variables become bind parameters."""

    def optional(match: re.Match) -> str:
        names = _VARIABLE.findall(match.group(1))
        return match.group(1) if all(values.get(n) is not None for n in names) else ""

    text = _OPTIONAL.sub(optional, sql)
    missing = [n for n in _VARIABLE.findall(text) if values.get(n) is None]
    if missing:
        raise DashboardSpecError(f"required filters without a value: {missing}")
    params = {n: values[n] for n in set(_VARIABLE.findall(text))}
    return _VARIABLE.sub(lambda m: f":{m.group(1)}", text), params
