"""JSON orders: one per line (JSON lines) or one array of them, each order's lines flattened
into rows."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from ingestion.readers.base import (
    FileRejected,
    RawChunk,
    Reject,
    open_bytes,
    sniff_binary,
    text_encoding,
    undecodable,
)
from ingestion.spec import SourceSpec

JSONL_CHUNK_ORDERS = 20_000


def _lookup(obj: object, path: tuple[str, ...]) -> object:
    """The value at ``path`` (a dotted name split once per file, not once per value)."""
    for part in path:
        if type(obj) is not dict:
            return None
        obj = obj.get(part)
    return obj


def _as_text(value: object) -> str | None:
    # Most values are text or whole numbers: those first, by exact type (bool is an int)
    kind = type(value)
    if kind is str:
        return value or None
    if kind is int:
        return str(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


_ID_COLUMNS = ("store_id", "order_id", "product_id", "customer_id")
_JSON_KINDS = {dict: "object", list: "array", bool: "boolean"}


def _id_paths(spec: SourceSpec, prefix: str) -> list[tuple[str, str, bool, tuple[str, ...]]]:
    """(field, source path, read from each line?, path) of the id columns the spec maps."""
    paths = []
    for field_name in _ID_COLUMNS:
        mapping = spec.columns.get(field_name)
        if mapping is None or not mapping.column:
            continue
        in_lines = mapping.column.startswith(prefix)
        inner = mapping.column[len(prefix):] if in_lines else mapping.column
        paths.append((field_name, mapping.column, in_lines, tuple(inner.split("."))))
    return paths


def _wrong_id_type(order: dict, items: list,
                   id_paths: list[tuple[str, str, bool, tuple[str, ...]]]
                   ) -> tuple[str, str, str] | None:
    """An id given as an object, array or boolean (text or a number is an id): as text it
    would load as something no export meant (a customer id of `{"id": 5}` once became a
    guest). Returns (field, source path, JSON kind) for the first one found."""
    for field_name, column, in_lines, path in id_paths:
        values = [_lookup(item, path) for item in items] if in_lines else [_lookup(order, path)]
        for value in values:
            kind = _JSON_KINDS.get(type(value))
            if kind:
                return field_name, column, kind
    return None


class _KeyTracker:
    """A JSON decoder that notes every key an object names twice. Python's json keeps the
    last of them and says nothing (RFC 8259 leaves duplicates to the parser), so a line
    with ``"qty": 1, "qty": 5`` would load whichever copy came last; such an order is
    rejected instead, as a tabular header that names a column twice is."""

    def __init__(self) -> None:
        self.repeated: list[str] = []
        self.decoder = json.JSONDecoder(object_pairs_hook=self._object)

    def _object(self, pairs: list[tuple[str, object]]) -> dict:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            self.repeated.extend(k for k, _ in pairs if k in seen or seen.add(k))
        return obj

    def take_repeated(self) -> list[str]:
        repeated, self.repeated = self.repeated, []
        return repeated


def _keys_read(spec: SourceSpec) -> dict[str, str | None]:
    """Every key on a path the spec reads (``customer`` and ``id`` of ``customer.id``, the
    lines field) -> the field it feeds. A key named twice elsewhere is never read, so it
    cannot make a value ambiguous."""
    keys: dict[str, str | None] = {spec.lines_field: None}
    for field_name, mapping in spec.columns.items():
        for column in mapping.source_columns:
            for key in column.split("."):
                keys.setdefault(key, field_name)
    return keys


def _orders_from_lines(stream: io.TextIOBase, keys: _KeyTracker
                       ) -> Iterator[tuple[int, str, object]]:
    """(line number, text, order or a JSONDecodeError) for each non-blank line."""
    decode = keys.decoder.decode
    for line_no, raw in enumerate(stream, start=1):
        stripped = raw.strip()
        if not stripped:
            continue
        try:
            yield line_no, stripped, decode(stripped)
        except json.JSONDecodeError as exc:
            yield line_no, stripped, exc


def _orders_from_array(path: Path, text: str, start: int, keys: _KeyTracker
                       ) -> Iterator[tuple[int, str, object]]:
    """The elements of one JSON array of orders (pretty-printed or not), each with the line
    it starts on. The array is parsed element by element, so the file is in memory once."""
    decoder = keys.decoder
    at = start + 1  # after "["
    while True:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        if at >= len(text):
            raise FileRejected(f"{path.name}: the JSON array is not closed (no final ']')")
        if text[at] == "]":
            return
        line = text.count("\n", 0, at) + 1
        try:
            order, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            raise FileRejected(f"{path.name}: line {exc.lineno}: the JSON array breaks "
                               f"({exc.msg}); nothing after it can be read") from None
        yield line, text[at:end], order
        at = end


def read_jsonl(path: Path, spec: SourceSpec) -> Iterator[RawChunk]:
    """JSON lines (one order per line), or one JSON array of orders."""
    prefix = spec.lines_field + "."
    header_cols = [c for c in spec.source_columns if not c.startswith(prefix)]
    line_cols = [c for c in spec.source_columns if c.startswith(prefix)]
    header_paths = [(c, tuple(c.split("."))) for c in header_cols]
    line_paths = [(c, tuple(c[len(prefix):].split("."))) for c in line_cols]
    id_paths = _id_paths(spec, prefix)
    with open_bytes(path) as fh:
        head = fh.read(4096)
    sniff_binary(path, head, "json", spec.encoding)
    columns: dict[str, list] = {c: [] for c in spec.source_columns}
    line_numbers: list[int] = []
    raw_lines: list[str] = []
    row_raw: list[int] = []
    rejects: list[Reject] = []
    orders = 0
    seen_any = False
    first_error: str | None = None

    def flush() -> RawChunk:
        nonlocal columns, line_numbers, raw_lines, row_raw, rejects, orders
        texts = raw_lines
        index = row_raw
        chunk = RawChunk(
            table=pa.table({c: pa.array(v, type=pa.string()) for c, v in columns.items()}),
            line_numbers=np.array(line_numbers, dtype=np.int64),
            raw_text=lambda i: texts[index[i]],
            rejects=rejects,
        )
        columns = {c: [] for c in spec.source_columns}
        line_numbers, raw_lines, row_raw, rejects, orders = [], [], [], [], 0
        return chunk

    with open_bytes(path) as fh:
        text_stream = io.TextIOWrapper(fh, encoding=text_encoding(spec))
        line_no = 0
        try:
            # One JSON array of orders (what many APIs export) or one order per line.
            keys, read_keys = _KeyTracker(), _keys_read(spec)
            if head.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"[":
                text = text_stream.read()
                source = _orders_from_array(path, text, text.index("["), keys)
            else:
                source = _orders_from_lines(text_stream, keys)
            for line_no, stripped, order in source:
                repeated = [k for k in keys.take_repeated() if k in read_keys]
                if isinstance(order, json.JSONDecodeError):
                    first_error = first_error or f"line {line_no}: {order.msg}"
                    rejects.append(Reject(line_no, stripped, f"not valid JSON ({order.msg})"))
                    continue
                seen_any = True
                if repeated:
                    names = ", ".join(dict.fromkeys(repeated))
                    rejects.append(Reject(line_no, stripped,
                                          f"key(s) {names} appear more than once in one JSON "
                                          "object; which value is meant is unclear",
                                          read_keys[repeated[0]]))
                    continue
                if not isinstance(order, dict):
                    rejects.append(Reject(line_no, stripped, "is not a JSON object (an order)"))
                    continue
                items = order.get(spec.lines_field)
                if not isinstance(items, list) or not items:
                    rejects.append(Reject(line_no, stripped,
                                          f"order has no '{spec.lines_field}' items",
                                          spec.lines_field))
                    continue
                wrong = _wrong_id_type(order, items, id_paths)
                if wrong:
                    field_name, source_path, kind = wrong
                    rejects.append(Reject(line_no, stripped,
                                          f"{source_path} is a JSON {kind}, not an id",
                                          field_name))
                    continue
                raw_lines.append(stripped)
                count = len(items)
                for c, path in header_paths:
                    columns[c].extend([_as_text(_lookup(order, path))] * count)
                for c, path in line_paths:
                    columns[c].extend([_as_text(_lookup(item, path)) for item in items])
                line_numbers.extend([line_no] * count)
                row_raw.extend([len(raw_lines) - 1] * count)
                orders += 1
                if orders >= JSONL_CHUNK_ORDERS:
                    yield flush()
        except UnicodeDecodeError as exc:
            raise undecodable(path, line_no + 1, spec, exc) from None
    if not seen_any:
        if first_error:  # not one line parses: this is not JSON at all
            raise FileRejected(f"{path.name}: not JSON lines or a JSON array "
                               f"({first_error})")
        if not rejects:
            raise FileRejected(f"{path.name}: empty file (no JSON lines)")
    if line_numbers or rejects:
        yield flush()
