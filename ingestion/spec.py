"""Source specs: YAML files that say how one POS export maps onto a canonical contract.

A new POS format is a new spec file, never new code. Specs shipped with StorePulse live in
``ingestion/specs/``; a tenant can drop its own ``spec.yaml`` into ``landing/<tenant>/<source>/``,
which wins over a shipped spec of the same source name.

Each canonical column is produced by one *mapping*:

``{column: Name}``                      the source column (dotted paths for JSON: ``customer.id``)
``{constant: value}``                   the same value for every row
``{tenant: currency}``                  a field of the tenant's registration (or country_code)
``{column: X, equals: v}``              boolean: the source value equals ``v``
``{column: X, starts_with: p}``         boolean: the source value starts with ``p``
``{derive: position_in_order}``         line number = position of the row within its order
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from ingestion.contracts import CONTRACTS, Contract

SHIPPED_SPECS_DIR = Path(__file__).parent / "specs"
FORMATS = ("csv", "xlsx", "jsonl")
EXTENSIONS = {"csv": (".csv", ".csv.gz", ".txt"), "xlsx": (".xlsx",),
              "jsonl": (".jsonl", ".ndjson", ".jsonl.gz", ".json")}


class SpecError(ValueError):
    """A spec file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class Mapping:
    column: str | None = None
    constant: Any = None
    tenant: str | None = None
    equals: str | None = None
    starts_with: str | None = None
    derive: str | None = None

    @property
    def source_columns(self) -> list[str]:
        return [self.column] if self.column else []


@dataclass(frozen=True)
class SourceSpec:
    name: str
    format: str
    target: str
    columns: dict[str, Mapping]
    description: str = ""
    delimiter: str = ","
    encoding: str = "utf-8"
    timestamp_format: str = "%Y-%m-%d %H:%M:%S"
    date_format: str = "%Y-%m-%d"
    timezone: str = "tenant"
    lines_field: str = "lines"
    sheet: str | None = None
    # Rules
    earliest: date = date(2000, 1, 1)
    max_days_ahead: int = 2
    known_stores: str = "catalog"  # catalog: must be in raw.stores when the tenant has one; any
    allowed_currencies: tuple[str, ...] = ()
    path: Path | None = field(default=None, compare=False)

    @property
    def contract(self) -> Contract:
        return CONTRACTS[self.target]

    @property
    def source_columns(self) -> list[str]:
        """Source columns the file must have (headers, or JSON paths)."""
        needed: list[str] = []
        for mapping in self.columns.values():
            for col in mapping.source_columns:
                if col not in needed:
                    needed.append(col)
        return needed

    def resolve_timezone(self, tenant_timezone: str) -> str:
        return tenant_timezone if self.timezone == "tenant" else self.timezone


_MAPPING_KEYS = {"column", "constant", "tenant", "equals", "starts_with", "derive"}


def parse_spec(data: dict[str, Any], origin: str = "<spec>") -> SourceSpec:
    def fail(msg: str) -> SpecError:
        return SpecError(f"{origin}: {msg}")

    if not isinstance(data, dict):
        raise fail("a spec must be a YAML mapping")
    for key in ("name", "format", "columns"):
        if key not in data:
            raise fail(f"missing required field '{key}'")
    fmt = data["format"]
    if fmt not in FORMATS:
        raise fail(f"format '{fmt}' is not one of {', '.join(FORMATS)}")
    target = data.get("target", "sales_lines")
    if target not in CONTRACTS:
        raise fail(f"target '{target}' is not one of {', '.join(CONTRACTS)}")
    contract = CONTRACTS[target]
    mappings: dict[str, Mapping] = {}
    if not isinstance(data["columns"] or {}, dict):
        raise fail("columns: expected a mapping of canonical column -> source column")
    for key in ("rules", "csv", "json", "xlsx"):
        if not isinstance(data.get(key) or {}, dict):
            raise fail(f"{key}: expected a mapping")
    for canonical, raw in (data["columns"] or {}).items():
        if canonical not in contract.names:
            raise fail(f"columns.{canonical}: not a column of {contract.table} "
                       f"(expected one of {', '.join(contract.names)})")
        if isinstance(raw, str):
            raw = {"column": raw}
        if not isinstance(raw, dict) or not set(raw) <= _MAPPING_KEYS or not raw:
            raise fail(f"columns.{canonical}: expected a mapping with one of "
                       f"{', '.join(sorted(_MAPPING_KEYS))}")
        if raw.get("derive") not in (None, "position_in_order"):
            raise fail(f"columns.{canonical}.derive: only 'position_in_order' is supported")
        if raw.get("tenant") not in (None, "currency", "country_code", "timezone"):
            raise fail(f"columns.{canonical}.tenant: use currency, country_code or timezone")
        mappings[canonical] = Mapping(**{k: (str(v) if k != "constant" or v is not None else v)
                                         for k, v in raw.items()})
    missing = [c.name for c in contract.columns if c.required and c.name not in mappings]
    if missing:
        raise fail(f"columns: required canonical columns not mapped: {', '.join(missing)}")
    rules = data.get("rules") or {}
    csv_opts = data.get("csv") or {}
    try:
        codecs.lookup(str(csv_opts.get("encoding", "utf-8")))
    except LookupError:
        raise fail(f"csv.encoding: unknown encoding {csv_opts.get('encoding')!r} "
                   "(e.g. utf-8, utf-16, cp1252)") from None
    json_opts = data.get("json") or {}
    return SourceSpec(
        name=str(data["name"]),
        description=str(data.get("description", "")),
        format=fmt,
        target=target,
        columns=mappings,
        delimiter=str(csv_opts.get("delimiter", ",")),
        encoding=str(csv_opts.get("encoding", "utf-8")),
        timestamp_format=str(data.get("timestamp_format", "%Y-%m-%d %H:%M:%S")),
        date_format=str(data.get("date_format", "%Y-%m-%d")),
        timezone=str(data.get("timezone", "tenant")),
        lines_field=str(json_opts.get("lines_field", "lines")),
        sheet=(data.get("xlsx") or {}).get("sheet"),
        earliest=date.fromisoformat(str(rules.get("earliest", "2000-01-01"))),
        max_days_ahead=int(rules.get("max_days_ahead", 2)),
        known_stores=str(rules.get("known_stores", "catalog")),
        allowed_currencies=tuple(rules.get("allowed_currencies", ()) or ()),
    )


def load_spec(path: Path) -> SourceSpec:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({exc})") from None
    try:
        spec = parse_spec(data, origin=str(path))
    except SpecError:
        raise
    except (TypeError, ValueError, AttributeError) as exc:
        # a value of the wrong kind somewhere the checks above do not look
        raise SpecError(f"{path}: invalid value ({exc})") from None
    return SourceSpec(**{**spec.__dict__, "path": path})


def shipped_specs() -> dict[str, SourceSpec]:
    return {s.name: s for s in (load_spec(p) for p in sorted(SHIPPED_SPECS_DIR.glob("*.yaml")))}


def spec_for_source(source: str, source_dir: Path | None = None) -> SourceSpec:
    """The spec for a landing folder: its own ``spec.yaml`` if present, else the shipped one."""
    if source_dir is not None and (source_dir / "spec.yaml").exists():
        return load_spec(source_dir / "spec.yaml")
    specs = shipped_specs()
    if source not in specs:
        raise SpecError(f"no spec named '{source}' (shipped: {', '.join(sorted(specs))}); "
                        f"add {source_dir or source}/spec.yaml")
    return specs[source]


def detect_spec(path: Path) -> SourceSpec:
    """The spec that reads ``path``: among the shipped specs and a ``spec.yaml`` beside the
    file, the one whose format and columns fit it. None or several: a SpecError that says
    which were tried or which fit, and to pass the source."""
    from ingestion.readers import fits  # readers import this module

    path = Path(path)
    candidates = dict(shipped_specs())
    own = path.parent / "spec.yaml"
    if own.exists():
        local = load_spec(own)
        candidates[local.name] = local
    fitting = sorted(name for name, spec in candidates.items() if fits(path, spec))
    if len(fitting) == 1:
        return candidates[fitting[0]]
    if not fitting:
        raise SpecError(f"{path.name}: no spec fits its columns (tried "
                        f"{', '.join(sorted(candidates))}); add a spec.yaml beside it or pass "
                        "--source")
    raise SpecError(f"{path.name}: several specs fit its columns ({', '.join(fitting)}); "
                    "pass --source to choose")
