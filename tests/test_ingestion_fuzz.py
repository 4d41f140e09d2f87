"""Property-based tests over the CSV, JSON and XLSX readers, through the real loader and
PostgreSQL: whatever the bytes, never an unhandled exception, a ledger row for every file, and
rows read = rows loaded + rows quarantined."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import itertools
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from ingestion.loader import load_file
from ingestion.spec import parse_spec, shipped_specs
from tests.ingestion_helpers import POS_HEADER, register, scalar

FIELDS = POS_HEADER.split(",")
SPECS = shipped_specs()
# Nothing of hypothesis's (its example database, its caches) is written into the checkout.
set_hypothesis_home_dir(str(Path(tempfile.gettempdir()) / "storepulse-hypothesis"))
FUZZ = settings(deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
_names = itertools.count()

# Values a real export might hold, and ones it should not: good ones, awkward text (quotes,
# delimiters, line breaks, NUL, non-ASCII), numbers out of every range, empties.
GOOD = {"store_id": "S1", "order_id": "O1", "line_number": "1",
        "ordered_at": "2025-03-01 10:00:00", "sku": "SKU1", "product_name": "Thing",
        "quantity": "2", "unit_price": "3.50", "currency": "GBP", "customer_id": "C1",
        "channel": "store", "transaction_type": "sale"}
AWKWARD = st.one_of(
    st.text(max_size=12),
    st.sampled_from(['"', '""', '","', "\n", "\r", "\x00", ";", "\t", "é", "🙂", " ", "NaN",
                     "1e400", "-0", "99999999999999999999", "2147483648", "1,5", "0x10",
                     "2025-02-30 10:00:00", "return", "SALE"]),
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@st.composite
def rows(draw) -> dict[str, str]:
    """A good line with a few fields (often none) replaced by awkward values."""
    row = dict(GOOD, order_id=f"O{draw(st.integers(0, 10**6))}")
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        row[name] = draw(AWKWARD)
    return row


ROW = rows()


def _csv_line(values: list[str], delimiter: str = ",") -> str:
    out = []
    for value in values:
        if any(c in value for c in (delimiter, '"', "\n", "\r")):
            value = '"' + value.replace('"', '""') + '"'
        out.append(value)
    return delimiter.join(out)


@st.composite
def csv_files(draw) -> bytes:
    header = draw(st.one_of(st.just(FIELDS), st.just(FIELDS), st.just(FIELDS),
                            st.permutations(FIELDS),
                            st.lists(st.sampled_from(FIELDS), min_size=1, max_size=14)))
    rows = draw(st.lists(ROW, max_size=25))
    lines = [_csv_line(header)] + [_csv_line([r.get(h, "") for h in header]) for r in rows]
    if draw(st.integers(0, 3)) == 0:  # hand-made damage: a broken line somewhere
        lines.insert(draw(st.integers(0, len(lines))), draw(st.text(max_size=40)))
    if len(lines) > 1 and draw(st.integers(0, 3)) == 0:  # a quote opened and never closed
        at = draw(st.integers(1, len(lines) - 1))
        cut = draw(st.integers(0, len(lines[at])))
        lines[at] = lines[at][:cut] + '"' + lines[at][cut:]
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = end.join(lines) + draw(st.sampled_from(["", end, end * 3]))
    data = text.encode("utf-8", errors="surrogatepass")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 5)) == 0:
        data = data[:draw(st.integers(0, len(data)))]  # truncated
    return gzip.compress(data) if draw(st.integers(0, 5)) == 0 else data


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8)


def _mostly(good: object) -> st.SearchStrategy:
    return st.one_of(st.just(good), st.just(good), st.just(good), JSON_VALUE)


@st.composite
def orders(draw) -> object:
    line = st.fixed_dictionaries({
        "line": st.one_of(st.integers(1, 5), st.integers(-5, 2**40), JSON_VALUE),
        "sku": _mostly("X"), "title": _mostly("T"),
        "qty": st.one_of(st.integers(1, 9), st.integers(-10**9, 10**9), JSON_VALUE),
        "price": st.one_of(st.floats(0, 100), st.floats(allow_nan=True, allow_infinity=True),
                           JSON_VALUE)})
    order = st.fixed_dictionaries({
        "id": st.one_of(st.text(min_size=1, max_size=6), JSON_VALUE),
        "location_id": _mostly("WEB"), "created_at": _mostly("2025-05-01 12:00:00"),
        "currency": _mostly("GBP"), "kind": st.sampled_from(["sale", "return", "x"]),
        "customer": st.one_of(st.none(), st.fixed_dictionaries({"id": _mostly("K1")})),
        "lines": st.one_of(st.lists(line, min_size=1, max_size=3), JSON_VALUE)})
    return draw(st.one_of(order, order, order, JSON_VALUE))


@st.composite
def json_files(draw) -> bytes:
    items = draw(st.lists(orders(), max_size=12))
    if draw(st.booleans()):
        text = json.dumps(items, indent=draw(st.sampled_from([None, 2])))
    else:
        text = "\n".join(json.dumps(item) for item in items)
    if draw(st.booleans()):
        text += "\n" + draw(st.text(max_size=30))
    data = text.encode()
    if draw(st.integers(0, 4)) == 0:
        data = data[:draw(st.integers(0, len(data)))]
    return data


@st.composite
def xlsx_files(draw, tmp_dir) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    header = draw(st.one_of(st.just(FIELDS), st.permutations(FIELDS)))
    sheet.append(header)
    # typed cells as Excel stores them, instead of the row's text, now and then
    cell = st.one_of(st.none(), st.integers(-10**12, 10**12),
                     st.floats(allow_nan=False, allow_infinity=False), st.datetimes())
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def storable(value):  # what a workbook can hold at all (Excel refuses control characters)
        return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value

    for row in draw(st.lists(ROW, max_size=10)):
        typed = draw(st.lists(st.sampled_from(header), max_size=2))
        sheet.append([storable(draw(cell) if h in typed else row[h]) for h in header])
    path = tmp_dir / f"book{next(_names)}.xlsx"
    book.save(path)
    return path.read_bytes()


def _load_and_check(engine, tmp_path, data: bytes, suffix: str, spec) -> None:
    name = f"f{next(_names)}_{hashlib.sha256(data).hexdigest()[:8]}{suffix}"
    path = tmp_path / name
    path.write_bytes(data)
    result = load_file(engine, path, "shop", spec)  # must not raise
    assert result.status in ("loaded", "rejected", "duplicate"), result
    event(f"{result.status}, {'some' if result.rows_loaded else 'no'} rows loaded")
    if result.status == "duplicate":
        return
    ledger = scalar(engine, "select count(*) from raw.ingest_files where file_id = :f",
                    f=result.file_id)
    assert ledger == 1, f"{name}: no ledger row"
    if result.status == "rejected":
        assert result.error and name in result.error, result.error
        return
    assert result.rows_read == result.rows_loaded + result.rows_quarantined
    assert scalar(engine, "select count(*) from raw.quarantine where file_id = :f",
                  f=result.file_id) == result.rows_quarantined
    assert scalar(engine, f"select count(*) from raw.{result.target} "
                          "where source_file_id = :f", f=result.file_id) == result.rows_loaded


@pytest.fixture
def shop(engine):
    register(engine, "shop")
    return engine


@settings(FUZZ, max_examples=60)
@given(data=csv_files())
def test_any_csv_is_loaded_quarantined_or_rejected(shop, tmp_path, data):
    _load_and_check(shop, tmp_path, data, ".csv", SPECS["generic_pos_csv"])


@settings(FUZZ, max_examples=40)
@given(data=json_files())
def test_any_json_is_loaded_quarantined_or_rejected(shop, tmp_path, data):
    _load_and_check(shop, tmp_path, data, ".json", SPECS["json_orders"])


@settings(FUZZ, max_examples=12)
@given(data=st.data())
def test_any_xlsx_is_loaded_quarantined_or_rejected(shop, tmp_path, data):
    content = data.draw(xlsx_files(tmp_path))
    # the POS columns, read from a workbook: the same spec with format xlsx
    spec = dataclasses.replace(SPECS["generic_pos_csv"], name="generic_pos_xlsx", format="xlsx")
    _load_and_check(shop, tmp_path, content, ".xlsx", spec)


# Other shapes a spec can read: whitespace-separated and fixed-width text, and a European
# export (';', decimal comma, thousands '.', a title line, a joined key, a derived price).
PLAIN_COLUMNS = {"store_id": "store", "order_id": "order", "line_number": "line",
                 "ordered_at": "when", "product_id": "sku", "quantity": "qty",
                 "unit_price": "price", "currency": {"tenant": "currency"},
                 "is_return": {"constant": False}}
TEXT_SPECS = {
    "text": parse_spec({"name": "report", "format": "text", "columns": PLAIN_COLUMNS,
                        "timestamp_format": "%Y-%m-%dT%H:%M", "rules": {"known_stores": "any"}}),
    "fixed_width": parse_spec({
        "name": "tape", "format": "fixed_width", "columns": PLAIN_COLUMNS,
        "timestamp_format": "%Y-%m-%dT%H:%M", "rules": {"known_stores": "any"},
        "fixed_width": {"header_line": 1, "columns": {
            "store": [1, 3], "order": [4, 9], "line": [10, 11], "when": [12, 27],
            "sku": [28, 31], "qty": [32, 36], "price": [37, 45]}}}),
    "european": parse_spec({
        "name": "kasse", "format": "csv", "csv": {"delimiter": ";", "header_line": 2},
        "numbers": {"decimal": ",", "thousands": "."}, "timestamp_format": "%Y-%m-%dT%H:%M",
        "rules": {"known_stores": "any"},
        "columns": {**PLAIN_COLUMNS, "order_id": {"join": ["order", "when"]},
                    "unit_price": {"column": "price", "divided_by": "qty"}}}),
}
TEXT_VALUE = st.one_of(st.sampled_from(["S1", "O1", "1", "2025-03-01T10:00", "P1", "2",
                                        "1.234,5", "3.50", "1.2.3", "0", "-1", '"', ";"]),
                       st.text(max_size=8))


@st.composite
def text_files(draw, kind: str) -> bytes:
    names = ["store", "order", "line", "when", "sku", "qty", "price"]
    if kind == "fixed_width":
        header = "store order line when sku qty price"
        body = ["".join(draw(TEXT_VALUE).ljust(width)[:width]
                        for width in (3, 6, 2, 16, 4, 5, 9))
                for _ in range(draw(st.integers(0, 15)))]
    else:
        sep = ";" if kind == "european" else draw(st.sampled_from([" ", "\t", "   "]))
        header = sep.join(names)
        body = [sep.join(draw(TEXT_VALUE) for _ in names)
                for _ in range(draw(st.integers(0, 15)))]
    lines = ([draw(st.text(max_size=20))] if kind == "european" else []) + [header, *body]
    if draw(st.integers(0, 3)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), draw(st.text(max_size=40)))
    return draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines).encode(
        "utf-8", errors="surrogatepass")


@pytest.mark.parametrize("kind", sorted(TEXT_SPECS))
@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_any_text_report_is_loaded_quarantined_or_rejected(shop, tmp_path, kind, data):
    _load_and_check(shop, tmp_path, data.draw(text_files(kind)), ".txt", TEXT_SPECS[kind])
