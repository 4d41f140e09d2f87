"""Source specs: YAML files that say how one POS export maps onto a canonical contract.

A new POS format is a new spec file, never new code. Specs shipped with StorePulse live in
``ingestion/specs/``; a tenant can drop its own ``spec.yaml`` into ``landing/<tenant>/<source>/``,
which wins over a shipped spec of the same source name. ``spec.schema.json`` beside this module
is the published JSON Schema of a spec file; every spec is checked against it on load.

Each canonical column is produced by one *mapping*:

``Name`` or ``{column: Name}``          the source column (dotted paths for JSON: ``customer.id``)
``{constant: value}``                   the same value for every row
``{tenant: currency}``                  a field of the tenant's registration (or country_code)
``{column: X, equals: v}``              boolean: the source value equals ``v``
``{column: X, starts_with: p}``         boolean: the source value starts with ``p``
``{column: T, divided_by: Q}``          number: ``T / Q`` (a unit price from a line total)
``{join: [A, B], separator: "-"}``      text: several columns joined (an order id from two)
``{derive: position_in_order}``         line number = position of the row within its order
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ingestion.contracts import CONTRACTS, Contract

SHIPPED_SPECS_DIR = Path(__file__).parent / "specs"
SCHEMA_PATH = Path(__file__).parent / "spec.schema.json"
FORMATS = ("csv", "text", "fixed_width", "xlsx", "jsonl")
_TEXT_EXTENSIONS = (".csv", ".csv.gz", ".txt", ".txt.gz", ".dat", ".prn")
EXTENSIONS = {"csv": _TEXT_EXTENSIONS, "text": _TEXT_EXTENSIONS,
              "fixed_width": _TEXT_EXTENSIONS, "xlsx": (".xlsx",),
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
    divided_by: str | None = None
    join: tuple[str, ...] = ()
    separator: str = "-"
    derive: str | None = None

    @property
    def source_columns(self) -> list[str]:
        return ([self.column] if self.column else []) + \
            ([self.divided_by] if self.divided_by else []) + list(self.join)


@dataclass(frozen=True)
class SourceSpec:
    name: str
    format: str
    target: str
    columns: dict[str, Mapping]
    description: str = ""
    delimiter: str = ","
    encoding: str = "utf-8"
    header_line: int = 1  # the line (XLSX: row) of column names; lines above are skipped
    fixed_width: dict[str, tuple[int, int]] = field(default_factory=dict)
    decimal_mark: str = "."
    thousands_mark: str = ""
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


@cache
def spec_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def _schema_problem(data: Any) -> str | None:
    """The most relevant way ``data`` breaks the JSON Schema, as 'key.path: problem'."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(spec_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    message = error.message
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        message += f" (allowed: {', '.join(allowed)})" if allowed else ""
    elif error.validator == "oneOf" and where.startswith("columns."):
        message = ("expected a source column name or a mapping with column (and optionally "
                   "equals, starts_with or divided_by), constant, tenant, join or derive; "
                   f"got {error.instance!r}")
    return f"{where}: {message}"


def parse_spec(data: dict[str, Any], origin: str = "<spec>") -> SourceSpec:
    def fail(msg: str) -> SpecError:
        return SpecError(f"{origin}: {msg}")

    if not isinstance(data, dict):
        raise fail("a spec must be a YAML mapping")
    target = data.get("target", "sales_lines")
    contract = CONTRACTS.get(target)
    # Columns first: a misspelled canonical name is the commonest mistake, and the schema
    # cannot know the contract's names.
    if contract is not None and isinstance(data.get("columns"), dict):
        for canonical in data["columns"]:
            if canonical not in contract.names:
                raise fail(f"columns.{canonical}: not a column of {contract.table} "
                           f"(expected one of {', '.join(contract.names)})")
    rules = data.get("rules")
    if isinstance(rules, dict) and isinstance(rules.get("earliest"), date):
        data = {**data, "rules": {**rules, "earliest": rules["earliest"].isoformat()}}
    problem = _schema_problem(data)
    if problem:
        raise fail(problem)
    fmt = data["format"]
    options = data.get({"jsonl": "json"}.get(fmt, fmt)) or {}
    mappings: dict[str, Mapping] = {}
    for canonical, raw in data["columns"].items():
        if isinstance(raw, str):
            raw = {"column": raw}
        raw = {k: (tuple(str(c) for c in v) if k == "join" else
                   v if k == "constant" and v is None else str(v)) for k, v in raw.items()}
        mappings[canonical] = Mapping(**raw)
    missing = [c.name for c in contract.columns if c.required and c.name not in mappings]
    if missing:
        raise fail(f"columns: required canonical columns not mapped: {', '.join(missing)}")
    fixed = {name: (int(a), int(b)) for name, (a, b) in
             (options.get("columns") or {}).items()} if fmt == "fixed_width" else {}
    for name, (first, last) in fixed.items():
        if last < first:
            raise fail(f"fixed_width.columns.{name}: ends at {last}, before it starts ({first})")
    if fmt == "fixed_width":
        unknown = [c for m in mappings.values() for c in m.source_columns if c not in fixed]
        if unknown:
            raise fail(f"columns: {', '.join(unknown)} not defined in fixed_width.columns")
    encoding = str(options.get("encoding") or (data.get("csv") or {}).get("encoding")
                   or "utf-8")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise fail(f"{({'jsonl': 'json'}.get(fmt, fmt))}.encoding: unknown encoding "
                   f"{encoding!r} (e.g. utf-8, utf-16, cp1252)") from None
    numbers = data.get("numbers") or {}
    decimal_mark = str(numbers.get("decimal", "."))
    thousands_mark = str(numbers.get("thousands", ""))
    if decimal_mark == thousands_mark:
        raise fail("numbers: the decimal mark and the thousands separator must differ")
    rules = data.get("rules") or {}
    header_line = options.get("header_row" if fmt == "xlsx" else "header_line", 1)
    return SourceSpec(
        name=str(data["name"]),
        description=str(data.get("description", "")),
        format=fmt,
        target=target,
        columns=mappings,
        delimiter=str((data.get("csv") or {}).get("delimiter", ",")),
        encoding=encoding,
        header_line=int(header_line),
        fixed_width=fixed,
        decimal_mark=decimal_mark,
        thousands_mark=thousands_mark,
        timestamp_format=str(data.get("timestamp_format", "%Y-%m-%d %H:%M:%S")),
        date_format=str(data.get("date_format", "%Y-%m-%d")),
        timezone=str(data.get("timezone", "tenant")),
        lines_field=str((data.get("json") or {}).get("lines_field", "lines")),
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
