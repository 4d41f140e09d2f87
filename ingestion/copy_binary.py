"""Rows for ``COPY ... (format binary)``, built from Arrow columns with numpy.

In CSV the server parses every number and date-time from text; in PostgreSQL's binary format
it only copies them, so a load spends less of the server's time (BENCHMARKS.md, ingest). The
values stored are the same as from CSV, ``numeric`` display scale and time-zone rules included:
``tests/test_copy_binary.py`` loads the same rows both ways and compares.

Format (PostgreSQL docs, "COPY", binary format): a signature, then per row an int16 field count
and per field an int32 length (-1 for NULL) and the value in the type's send format, all
big-endian, then an int16 -1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from psycopg.types.numeric import dump_decimal_to_numeric_binary

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # no flags, no header extension
TRAILER = b"\xff\xff"

_PG_EPOCH_SECONDS = 946_684_800  # 2000-01-01, PostgreSQL's epoch, in Unix seconds
_PG_EPOCH_DAYS = 10_957
_NUMERIC_NEGATIVE = 0x4000
# Plain decimals (no exponent) below the validator's limit (1e12), with at most six
# decimals, share one fixed layout; anything else is encoded value by value. Eighteen digits
# keep the scaled value below 2**63, so one 64-bit word holds it.
_PLAIN_DECIMAL = pa.decimal128(18, 6)
_FIXED_TYPES = frozenset({"integer", "bigint", "timestamptz", "date", "boolean", "numeric"})
_TRUE = ("t", "true", "y", "yes", "on", "1")
_FALSE = ("f", "false", "n", "no", "off", "0")


class NotEncodable(ValueError):
    """A value the binary format cannot carry for its column's type."""


@dataclass
class _Field:
    """One column's fields: ``lengths`` per row (-1 for NULL) and the values, as one
    fixed-width element per row where every row has one (``block``), else as a binary
    array, null where the field is NULL (``values``)."""

    lengths: np.ndarray
    block: np.ndarray | None = None
    values: pa.Array | None = None
    same_length: int | None = None  # when every row's length is this one

    def length_words(self) -> np.ndarray:
        """The rows' int32 length words, big-endian."""
        if self.same_length is not None:
            return np.broadcast_to(np.array(self.same_length, dtype=">i4"), len(self.lengths))
        return self.lengths.astype(">i4")


def knows_timezone(timezone: str) -> bool:
    """Whether naive date-times can be placed in ``timezone`` here: an IANA zone that Arrow
    finds in the system's time-zone database. Where not, the loader sends CSV and lets the
    server place them; that includes offsets such as ``+02:00``, which PostgreSQL reads
    as POSIX (west of Greenwich) and Arrow as ISO 8601."""
    try:
        ZoneInfo(timezone)
        pc.assume_timezone(pa.array([0], pa.timestamp("s")), timezone=timezone)
    except (ZoneInfoNotFoundError, ValueError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def field_order(types: Sequence[str]) -> list[int]:
    """The order to send columns in (the COPY's column list follows it): fixed-width types
    first, so most of each row is one block of bytes and only text is spliced in."""
    return sorted(range(len(types)), key=lambda i: types[i] not in _FIXED_TYPES)


def encode_rows(table: pa.Table, types: Sequence[str], timezone: str) -> memoryview:
    """The rows of ``table`` in binary COPY format (no signature or trailer), with the
    columns in ``field_order(types)``.

    ``types`` names each column's PostgreSQL type: text, integer, bigint, numeric,
    timestamptz, date or boolean. Naive date-times are local times in ``timezone``, read as
    PostgreSQL reads them with that ``TimeZone``.
    """
    n = table.num_rows
    blocks = [np.broadcast_to(np.array(len(types), dtype=">i2"), n)]  # the field count
    pieces: list[pa.Array] = []
    for i in field_order(types):
        field = _encode(table.column(i).combine_chunks(), types[i], timezone,
                        table.column_names[i])
        blocks.append(field.length_words())
        if field.block is not None:
            blocks.append(field.block)
        elif field.values is not None:
            pieces += [_binary_rows(_side_by_side(blocks)), field.values]
            blocks = []
    if not pieces:
        return memoryview(_side_by_side(blocks).reshape(-1))
    if blocks:
        pieces.append(_binary_rows(_side_by_side(blocks)))
    # Arrow splices each row's pieces in C++; a NULL field's value piece is empty.
    rows = pc.binary_join_element_wise(*pieces, b"", null_handling="replace",
                                       null_replacement=b"")
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)
    return memoryview(rows.buffers()[2])[offsets[rows.offset]:offsets[rows.offset + n]]


def _side_by_side(blocks: list[np.ndarray]) -> np.ndarray:
    """Each row's elements of ``blocks`` one after the other, as rows of bytes (through one
    packed record type: a typed copy per block, not a byte-wise one)."""
    record = np.dtype([(f"f{i}", block.dtype) for i, block in enumerate(blocks)])
    # The same bytes on every row (field counts, lengths, a tenant id) go in with one
    # copy of a template row; only what varies is copied field by field.
    template = np.zeros(1, dtype=record)
    for i, block in enumerate(blocks):
        if block.strides == (0,) and len(block):
            template[f"f{i}"] = block[0]
    rows = np.empty(len(blocks[0]), dtype=record)
    as_bytes = rows.view(np.uint8).reshape(len(rows), record.itemsize)
    as_bytes[:] = template.view(np.uint8)  # a byte-wise broadcast: far faster than a record's
    for i, block in enumerate(blocks):
        if block.strides != (0,):
            rows[f"f{i}"] = block
    return as_bytes


def _binary_rows(block: np.ndarray, present: np.ndarray | None = None) -> pa.Array:
    """A binary array of the rows of a byte block (no copy), null where not present."""
    if block.ndim == 1:
        block = block.view(np.uint8).reshape(len(block), block.dtype.itemsize)
    n, width = block.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    validity = None if present is None or present.all() else pa.array(present).buffers()[1]
    return pa.Array.from_buffers(pa.binary(), n, [validity, pa.py_buffer(offsets),
                                                  pa.py_buffer(np.ascontiguousarray(block))])


def _encode(arr: pa.Array, kind: str, timezone: str, name: str) -> _Field:
    # Most columns have no NULL: no validity bitmap to unpack.
    present = np.ones(len(arr), dtype=bool) if arr.null_count == 0 \
        else ~np.asarray(arr.is_null(), dtype=bool)
    if kind == "text":
        return _text(arr, present)
    if kind == "numeric":
        return _numeric(arr, present)
    if kind in ("integer", "bigint"):
        target = pa.int32() if kind == "integer" else pa.int64()
        try:
            ints = pc.cast(arr, target)
        except pa.ArrowInvalid:  # '+5', ' 5': what PostgreSQL's int4in accepts too
            ints = pa.array([None if v is None else int(v) for v in arr.to_pylist()], target)
        values = ints.fill_null(0).to_numpy().astype(">i4" if kind == "integer" else ">i8")
        return _fixed(values, present)
    if kind == "timestamptz":
        local = arr if pa.types.is_timestamp(arr.type) else pc.cast(arr, pa.timestamp("s"))
        seconds = _utc_seconds(local.cast(pa.timestamp("s")), timezone)
        return _fixed(((seconds - _PG_EPOCH_SECONDS) * 1_000_000).astype(">i8"), present)
    if kind == "date":
        days = pc.cast(arr, pa.date32()).cast(pa.int32()).fill_null(_PG_EPOCH_DAYS)
        return _fixed((days.to_numpy() - _PG_EPOCH_DAYS).astype(">i4"), present)
    if kind == "boolean":
        return _fixed(_booleans(arr, name).astype(np.uint8), present)
    raise ValueError(f"no binary COPY encoding for type {kind!r}")


def _fixed(values: np.ndarray, present: np.ndarray) -> _Field:
    """Fixed-width values (one per row; what a NULL row holds is ignored)."""
    width = values.dtype.itemsize
    lengths = np.where(present, width, -1).astype(np.int32)
    if present.all():
        return _Field(lengths=lengths, block=values, same_length=width)
    return _Field(lengths=lengths, values=_binary_rows(values, present))


def _text(arr: pa.Array, present: np.ndarray) -> _Field:
    n = len(arr)
    if not present.any():
        return _Field(lengths=np.full(n, -1, dtype=np.int32), same_length=-1)
    arr = arr.cast(pa.binary())
    if present.all() and arr[0] == arr[n // 2] == arr[n - 1]:
        smallest, largest = pc.min_max(arr).values()
        if smallest == largest:  # the same text on every row (a tenant id, a currency)
            value = smallest.as_py()
            block = (np.broadcast_to(np.frombuffer(value, dtype=f"V{len(value)}"), n)
                     if value else None)  # an empty text is a length word alone
            return _Field(lengths=np.full(n, len(value), dtype=np.int32), block=block,
                          same_length=len(value))
    lengths = _byte_lengths(arr)
    return _Field(lengths=np.where(present, lengths, -1).astype(np.int32), values=arr)


def _byte_lengths(arr: pa.Array) -> np.ndarray:
    """Each value's length in bytes, from the array's offsets (what a NULL holds included)."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + len(arr)
                                                              + 1]
    return np.diff(offsets)


def _numeric(arr: pa.Array, present: np.ndarray) -> _Field:
    text = arr.cast(pa.string())
    if not _may_hold_exponent(text):
        try:
            return _fixed(_plain_numerics(text), present)
        except pa.ArrowInvalid:  # more decimals or digits than the layout holds, spaces
            pass
    # psycopg's own encoder: the display scale follows the exponent as numeric_in's does
    # (``1.50`` keeps two decimals, ``1.5e3`` has none)
    payloads = [None if v is None else bytes(dump_decimal_to_numeric_binary(Decimal(v.strip())))
                for v in text.to_pylist()]
    return _text(pa.array(payloads, pa.binary()), present)


def _may_hold_exponent(text: pa.Array) -> bool:
    """Whether any value may be written with an exponent (``1.5e3``): an ``e`` or ``E``
    anywhere in the array's character data, one memchr each (bytes outside the array's slice
    may answer yes; the exact path is then taken, which is never wrong)."""
    data = text.buffers()[2]
    if data is None:
        return False
    chars = bytes(data)
    return chars.find(b"e") >= 0 or chars.find(b"E") >= 0


def _plain_numerics(text: pa.Array) -> np.ndarray:
    """Plain decimals in one 20-byte layout each: four base-10000 digits before the point and
    two after. PostgreSQL strips leading and trailing zero digits on receipt, so the value
    stored is the one ``numeric_in`` makes of the text; the display scale is the number of
    decimals written."""
    n = len(text)
    filled = pc.fill_null(text, "0")
    scaled = pc.cast(filled, _PLAIN_DECIMAL)
    # |value| < 1e12 with six decimals fits 63 bits: the low word of each decimal128 is it.
    units = np.frombuffer(scaled.buffers()[1], dtype=np.int64)[
        2 * scaled.offset:2 * (scaled.offset + n):2]
    magnitude = np.abs(units)
    whole, fraction = magnitude // 1_000_000, magnitude % 1_000_000 * 100
    point = np.asarray(pc.find_substring(filled, "."), dtype=np.int64)
    length = _byte_lengths(filled)
    layout = np.empty((n, 10), dtype=">u2")
    layout[:, 0], layout[:, 1] = 6, 3  # six digits; the first is 10000^3
    layout[:, 2] = np.where(units < 0, _NUMERIC_NEGATIVE, 0)
    layout[:, 3] = np.where(point < 0, 0, length - point - 1)
    for column, divisor in enumerate((10**12, 10**8, 10**4, 1)):
        layout[:, 4 + column] = whole // divisor % 10_000
    layout[:, 8], layout[:, 9] = fraction // 10_000, fraction % 10_000
    return layout.view("V20").reshape(n)


def _utc_seconds(local: pa.Array, timezone: str) -> np.ndarray:
    """Unix seconds of naive local date-times, as PostgreSQL places them: a time skipped by a
    spring-forward change takes the offset in force before it, an hour repeated in autumn
    the offset in force after it (docs: "Handling of Invalid or Ambiguous Timestamps").
    A NULL gives 0 (its field is sent as NULL)."""
    def seconds(values: pa.Array) -> np.ndarray:
        return values.cast(pa.int64()).fill_null(0).to_numpy()

    try:  # almost every chunk: no time falls in a gap
        return seconds(pc.assume_timezone(local, timezone=timezone, ambiguous="latest",
                                          nonexistent="raise"))
    except pa.ArrowInvalid:
        pass
    placed = pc.assume_timezone(local, timezone=timezone, ambiguous="latest",
                                nonexistent="earliest")
    return seconds(local) - (seconds(pc.local_timestamp(placed)) - seconds(placed))


def _booleans(arr: pa.Array, name: str) -> np.ndarray:
    if pa.types.is_boolean(arr.type):
        return np.asarray(arr.fill_null(False), dtype=bool)
    words = pc.utf8_lower(pc.utf8_trim_whitespace(arr.cast(pa.string())))
    true, false = pc.is_in(words, pa.array(_TRUE)), pc.is_in(words, pa.array(_FALSE))
    unknown = pc.and_(arr.is_valid(), pc.invert(pc.or_(true, false)))
    if pc.any(unknown).as_py():
        value = pc.filter(arr, unknown)[0].as_py()
        raise NotEncodable(f"{name}: {value!r} is not a boolean (true/false)")
    return np.asarray(true.fill_null(False), dtype=bool)
