"""Map a raw chunk onto its canonical contract and split it into loadable and quarantined rows.

All checks are vectorised (pyarrow compute, numpy); Python only touches the rows that fail, to
write a reason a person can act on. Each bad row gets the *first* problem found, in the order
the checks are listed below, so the reason is stable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.readers import RawChunk, Reject
from ingestion.spec import Mapping, SourceSpec

_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
INTEGER_LIMIT = 2_147_483_647  # PostgreSQL's integer
NUMERIC_LIMIT = 1e12  # no price, quantity or total of a shop comes near it
MAX_LINE_QUANTITY = 1_000_000
_INTEGER = r"^\s*[-+]?\d+\s*$"
_CURRENCY = r"^[A-Z]{3}$"
_ISO_SECONDS = "%Y-%m-%d %H:%M:%S"


@dataclass
class TenantInfo:
    tenant_id: str
    timezone: str
    currency: str
    country_code: str

    def field(self, name: str) -> str:
        return str(getattr(self, name))


@dataclass
class FileState:
    """What validation remembers across the chunks of one file."""

    tenant: TenantInfo
    file_id: int
    earliest: date
    latest: date
    known_stores: set[str] | None
    seen_keys: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    order_positions: dict[str, int] = field(default_factory=dict)


@dataclass
class ValidatedChunk:
    good: pa.Table
    quarantined: list[Reject]


def new_file_state(spec: SourceSpec, tenant: TenantInfo, file_id: int,
                   known_stores: set[str] | None, today: date | None = None) -> FileState:
    today = today or datetime.now().date()
    return FileState(tenant=tenant, file_id=file_id, earliest=spec.earliest,
                     latest=today + timedelta(days=spec.max_days_ahead),
                     known_stores=known_stores if spec.known_stores == "catalog" else None)


def _resolve(mapping: Mapping, chunk: RawChunk, state: FileState) -> pa.ChunkedArray:
    n = chunk.table.num_rows
    if mapping.join:  # null when any part is missing: a key is never half made
        return pc.binary_join_element_wise(*(chunk.table[c] for c in mapping.join),
                                           mapping.separator)
    if mapping.column is None:
        value = state.tenant.field(mapping.tenant) if mapping.tenant else mapping.constant
        return pa.chunked_array([_repeated(value, n)])
    source = chunk.table[mapping.column]  # readers deliver empty fields as null
    if mapping.equals is not None:
        return pc.fill_null(pc.equal(source, mapping.equals), False)
    if mapping.starts_with is not None:
        return pc.fill_null(pc.starts_with(source, pattern=mapping.starts_with), False)
    return source


def _repeated(value: object, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(None if value is None else str(value), pa.string()), n)


def _has_nul(arr: pa.ChunkedArray) -> bool:
    """Whether any value holds a NUL: one memchr over the data buffers, so the per-row check
    runs only on the rare column that has one."""
    return any(chunk.buffers()[2] is not None and bytes(chunk.buffers()[2]).find(b"\x00") >= 0
               for chunk in arr.chunks)


def _order_positions(order_ids: pa.ChunkedArray, state: FileState) -> np.ndarray:
    encoded = pc.dictionary_encode(order_ids.combine_chunks())
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    uniques = encoded.dictionary.to_pylist()
    base = np.array([state.order_positions.get(u, 0) for u in uniques], dtype=np.int64)
    n = len(codes)
    sorter = np.argsort(codes, kind="stable")
    sorted_codes = codes[sorter]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, n])
    rank = np.empty(n, dtype=np.int64)
    rank[sorter] = np.arange(n) - np.repeat(starts, sizes)
    counts = np.bincount(codes, minlength=len(uniques))
    for u, b, c in zip(uniques, base, counts, strict=True):
        state.order_positions[u] = int(b + c)
    return base[codes] + rank + 1


def _numbers_as_text(arr: pa.ChunkedArray, column_type: str, spec: SourceSpec | None
                     ) -> tuple[pa.ChunkedArray, np.ndarray, pa.ChunkedArray | None]:
    """Numbers as plain text PostgreSQL reads (``1234.5``), null where the value is not a
    number, the mask of those values, and the numbers as floats where already parsed. A
    decimal comma and a thousands separator, when the spec names them, are accepted only
    where they belong (``1.234,5``, never ``1.2.3``); without a spec the text is already
    plain."""
    if spec is not None and (spec.decimal_mark != "." or spec.thousands_mark):
        grouped = rf"\d{{1,3}}(?:{re.escape(spec.thousands_mark)}\d{{3}})+|" \
            if spec.thousands_mark else ""
        fraction = "" if column_type == "integer" else \
            rf"(?:{re.escape(spec.decimal_mark)}\d*)?([eE][-+]?\d+)?"
        ok = pc.match_substring_regex(arr, rf"^\s*[-+]?(?:{grouped}\d+){fraction}\s*$")
        text = pc.utf8_trim_whitespace(arr)
        if spec.thousands_mark:
            text = pc.replace_substring(text, spec.thousands_mark, "")
        text = pc.replace_substring(text, spec.decimal_mark, ".")
    else:
        # Almost every file is clean: one cast checks a whole column, and the regex runs
        # only on a column the cast refuses.
        try:
            number = pc.cast(arr, pa.float64())
            if column_type == "integer":
                pc.cast(arr, pa.int64())
            if pc.all(pc.is_finite(number)).as_py() is not False:
                return arr, np.zeros(len(arr), dtype=bool), number
        except pa.ArrowInvalid:
            pass
        ok = pc.match_substring_regex(arr, _INTEGER if column_type == "integer" else _NUMBER)
        text = pc.utf8_trim_whitespace(arr)
    bad = _mask(pc.invert(ok)) & _mask(pc.is_valid(arr))
    return pc.if_else(ok, text, pa.scalar(None, pa.string())), bad, None


def _quotient(mapping: Mapping, chunk: RawChunk, spec: SourceSpec, problems: _Problems,
              name: str) -> pa.ChunkedArray:
    """``column / divided_by`` as plain text (a unit price from a line total and its
    quantity); the rows where either is not a number, or the divisor is zero, are problems
    of ``name`` that quote both source values."""
    assert mapping.column and mapping.divided_by
    dividend, divisor = chunk.table[mapping.column], chunk.table[mapping.divided_by]
    top_text, top_bad, _ = _numbers_as_text(dividend, "numeric", spec)
    bottom_text, bottom_bad, _ = _numbers_as_text(divisor, "numeric", spec)
    bottom = pc.cast(bottom_text, pa.float64())
    zero = _mask(pc.equal(bottom, 0.0))
    for mask, why in ((top_bad, f"{mapping.column} is not a number"),
                      (bottom_bad, f"{mapping.divided_by} is not a number"),
                      (zero, f"{mapping.divided_by} is zero")):
        def quoting_both(i: int, why: str = why) -> str:
            return (f"cannot be derived as {mapping.column} / {mapping.divided_by} "
                    f"({dividend[i].as_py()!r} / {divisor[i].as_py()!r}): {why}")

        problems.add(mask, name, quoting_both)
    quotient = pc.divide(pc.cast(top_text, pa.float64()),
                         pc.if_else(pa.array(zero), pa.scalar(None, pa.float64()), bottom))
    return pc.cast(pc.round(quotient, 6), pa.string())


def _strict_strptime(arr: pa.ChunkedArray, fmt: str) -> pa.ChunkedArray:
    """Parse timestamps; null where invalid, including impossible dates like 30 February.

    Arrow's parser rolls an impossible day over into the next month (30 Feb -> 2 Mar), so a
    rolled value lands on day 1-3. Only those rows are re-checked, by a round trip through the
    format and, where that differs, Python's strict parser.
    """
    if fmt == _ISO_SECONDS:
        iso = _iso_seconds(arr)
        if iso is not None:
            return iso
    ts = pc.strptime(arr, format=fmt, unit="s", error_is_null=True)
    early_days = _mask(pc.less_equal(pc.day(ts), 3))
    if not early_days.any():
        return ts
    candidates = np.flatnonzero(early_days)
    picked = pa.array(candidates)
    texts = pc.utf8_trim_whitespace(pc.take(arr, picked))
    redone = pc.strftime(pc.take(ts, picked), format=fmt)
    mismatched = candidates[~_mask(pc.equal(texts, redone))]
    if not len(mismatched):
        return ts
    values = ts.to_numpy(zero_copy_only=False).copy()
    for i in mismatched:
        try:
            values[i] = np.datetime64(datetime.strptime(str(arr[int(i)]).strip(), fmt), "s")
        except ValueError:
            values[i] = np.datetime64("NaT")
    return pa.chunked_array([pa.array(values, type=pa.timestamp("s"))])


def _iso_seconds(arr: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """``%Y-%m-%d %H:%M:%S`` through Arrow's ISO 8601 cast, several times faster than
    strptime and as strict (30 February is refused, not rolled over); None when any value is
    not exactly that shape, so the caller parses value by value. The cast also takes a
    ``T`` between date and time, which the format does not."""
    present = pc.drop_null(arr)
    if not len(present):
        return None
    shortest, longest = pc.min_max(pc.binary_length(present)).values()
    if shortest.as_py() != 19 or longest.as_py() != 19 or pc.any(
            pc.match_substring(present, "T")).as_py():
        return None
    try:
        return pc.cast(arr, pa.timestamp("s"))
    except pa.ArrowInvalid:
        return None


Reason = str | Callable[[int], str]  # the same for every row, or built from the row's values


class _Problems:
    """Accumulates (mask, field, reason) in priority order; the first hit per row wins."""

    def __init__(self, n: int) -> None:
        self.bad = np.zeros(n, dtype=bool)
        self.reasons: list[tuple[np.ndarray, str, Reason]] = []

    def add(self, mask: np.ndarray, field_name: str, reason: Reason) -> None:
        fresh = mask & ~self.bad
        if fresh.any():
            self.reasons.append((fresh, field_name, reason))
            self.bad |= fresh


def _mask(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def validate_chunk(chunk: RawChunk, spec: SourceSpec, state: FileState) -> ValidatedChunk:
    contract = spec.contract
    n = chunk.table.num_rows
    values: dict[str, pa.ChunkedArray] = {}
    for column in contract.columns:
        mapping = spec.columns.get(column.name)
        if mapping is None:
            values[column.name] = pa.chunked_array([pa.nulls(n, pa.string())])
        elif mapping.derive == "position_in_order":
            order_ids = _resolve(spec.columns["order_id"], chunk, state)
            positions = _order_positions(pc.fill_null(order_ids, ""), state)
            values[column.name] = pa.chunked_array([pa.array(positions).cast(pa.string())])
        else:
            values[column.name] = _resolve(mapping, chunk, state)
    original = dict(values)  # as read, so reasons quote what the file said
    problems = _Problems(n)
    for name, mapping in spec.columns.items():
        if mapping.divided_by:
            values[name] = _quotient(mapping, chunk, spec, problems, name)
            original[name] = values[name]

    for column in contract.columns:
        if pa.types.is_string(values[column.name].type) and _has_nul(values[column.name]):
            problems.add(_mask(pc.match_substring(values[column.name], "\x00")), column.name,
                         "contains a NUL character, which PostgreSQL cannot store")
        if column.required and column.type != "boolean":
            problems.add(_mask(pc.is_null(values[column.name])), column.name,
                         "required field is empty")

    parsed: dict[str, pa.ChunkedArray] = {}
    for column in contract.columns:
        arr = values[column.name]
        if column.type in ("numeric", "integer"):
            derived = column.name in spec.columns and spec.columns[column.name].divided_by
            clean, bad, number = _numbers_as_text(arr, column.type, None if derived else spec)
            kind = "an integer" if column.type == "integer" else "a number"
            if not derived and (spec.decimal_mark != "." or spec.thousands_mark):
                kind += (f" (decimal mark {spec.decimal_mark!r}"
                         + (f", thousands {spec.thousands_mark!r})" if spec.thousands_mark
                            else ")"))
            problems.add(bad, column.name, f"is not {kind}")
            if number is None:
                number = pc.cast(clean, pa.float64())
            # PostgreSQL would refuse an integer past int4 inside COPY, failing the whole
            # file; an absurd magnitude is a broken export, not a sale.
            limit = INTEGER_LIMIT if column.type == "integer" else NUMERIC_LIMIT
            too_big = _mask(pc.greater(pc.abs(number), limit))
            problems.add(too_big, column.name,
                         f"is out of range (at most {limit:,.0f} in magnitude)")
            values[column.name] = (pc.if_else(pa.array(too_big), pa.scalar(None, pa.string()),
                                              clean) if too_big.any() else clean)
            parsed[column.name] = number
        elif column.type in ("timestamp", "date"):
            fmt = spec.timestamp_format if column.type == "timestamp" else spec.date_format
            ts = _strict_strptime(arr, fmt)
            problems.add(_mask(pc.is_null(ts)) & _mask(pc.is_valid(arr)), column.name,
                         f"is not a {'date-time' if column.type == 'timestamp' else 'date'} "
                         f"in format {fmt}")
            parsed[column.name] = ts
            # typed: the binary COPY sends them as they are, the CSV writer as ISO text
            values[column.name] = ts if column.type == "timestamp" else pc.cast(ts, pa.date32())

    if contract.target == "sales_lines":
        _sales_rules(values, parsed, spec, state, problems)

    quarantined = _quarantine_rows(chunk, original, problems)
    keep = pa.array(~problems.bad)
    kept = int((~problems.bad).sum())
    out = {"tenant_id": _repeated(state.tenant.tenant_id, kept)}
    for column in contract.columns:  # a clean chunk (most of them) is not copied
        out[column.name] = pc.filter(values[column.name], keep) if kept < n \
            else values[column.name]
    out["source_file_id"] = pa.repeat(pa.scalar(state.file_id, pa.int64()), kept)
    out["source_line"] = pa.array(chunk.line_numbers[~problems.bad])
    return ValidatedChunk(good=pa.table(out), quarantined=chunk.rejects + quarantined)


def _sales_rules(values: dict[str, pa.ChunkedArray], parsed: dict[str, pa.ChunkedArray],
                 spec: SourceSpec, state: FileState, problems: _Problems) -> None:
    problems.add(_mask(pc.equal(parsed["quantity"], 0.0)), "quantity",
                 "is zero: a line must sell or return at least one unit")
    problems.add(_mask(pc.greater(pc.abs(parsed["quantity"]), MAX_LINE_QUANTITY)), "quantity",
                 f"is more than {MAX_LINE_QUANTITY:,} units on one line")
    problems.add(_mask(pc.less(parsed["unit_price"], 0.0)), "unit_price",
                 "is negative: prices are never below zero (returns use a negative quantity)")
    ts = parsed["ordered_at"]
    early = pc.less(ts, pa.scalar(datetime.combine(state.earliest, datetime.min.time()),
                                  pa.timestamp("s")))
    late = pc.greater_equal(ts, pa.scalar(datetime.combine(state.latest + timedelta(days=1),
                                                           datetime.min.time()),
                                          pa.timestamp("s")))
    problems.add(_mask(pc.or_(early, late)), "ordered_at",
                 f"is outside the plausible window {state.earliest} .. {state.latest}")
    currency = values["currency"]
    allowed = spec.allowed_currencies
    bad_currency = (pc.invert(pc.is_in(currency, value_set=pa.array(list(allowed))))
                    if allowed else pc.invert(pc.match_substring_regex(currency, _CURRENCY)))
    problems.add(_mask(bad_currency), "currency",
                 f"is not {'one of ' + ', '.join(allowed) if allowed else 'an ISO 4217 code'}")
    if state.known_stores is not None:
        unknown = pc.invert(pc.is_in(values["store_id"],
                                     value_set=pa.array(sorted(state.known_stores),
                                                        type=pa.string())))
        problems.add(_mask(unknown), "store_id",
                     "is not in the tenant's store catalogue (raw.stores): add the store to "
                     "the catalogue or fix the export")
    if spec.columns["line_number"].derive is None:
        problems.add(_duplicate_keys(values, state, problems.bad), "line_number",
                     "duplicates the line key (store_id, order_id, line_number) of an earlier "
                     "line in this file")


def _duplicate_keys(values: dict[str, pa.ChunkedArray], state: FileState,
                    already_bad: np.ndarray) -> np.ndarray:
    keys = pc.binary_join_element_wise(values["store_id"], values["order_id"],
                                       values["line_number"], "\x1f")
    key_array = keys.to_numpy(zero_copy_only=False)
    candidates = np.flatnonzero(~already_bad)
    hashes = pd.util.hash_array(key_array[candidates].astype(object), categorize=False)
    dup = np.zeros(len(key_array), dtype=bool)
    _, first = np.unique(hashes, return_index=True)
    within = np.ones(len(hashes), dtype=bool)
    within[first] = False
    seen_before = np.isin(hashes, state.seen_keys, assume_unique=False)
    dup[candidates] = within | seen_before
    state.seen_keys = np.union1d(state.seen_keys, hashes)
    return dup


def _quarantine_rows(chunk: RawChunk, values: dict[str, pa.ChunkedArray], problems: _Problems
                     ) -> list[Reject]:
    rows: dict[int, Reject] = {}
    for mask, field_name, reason in problems.reasons:
        column = values.get(field_name)
        for i in np.flatnonzero(mask):
            shown = column[int(i)].as_py() if column is not None else None
            why = reason(int(i)) if callable(reason) else reason
            detail = f"{field_name} {shown!r} {why}" if shown not in (None, "") \
                else f"{field_name} {why}"
            rows[int(i)] = Reject(int(chunk.line_numbers[i]), chunk.raw_text(int(i)), detail,
                                  field_name)
    return [rows[i] for i in sorted(rows)]
