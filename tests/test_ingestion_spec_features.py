"""A new POS format is a spec, not code: each export shape below loads from a spec written
here, through the real loader into PostgreSQL, with counts that reconcile."""

import json
from decimal import Decimal

import jsonschema
import openpyxl
import pytest
import yaml

from ingestion.loader import load_file
from ingestion.spec import SHIPPED_SPECS_DIR, SpecError, load_spec, parse_spec, spec_schema
from tests.ingestion_helpers import register, rows, write

SALES = {"store_id": "store", "order_id": "order", "line_number": "line", "ordered_at": "when",
         "product_id": "sku", "quantity": "qty", "unit_price": "price",
         "currency": {"tenant": "currency"}, "is_return": {"constant": False}}


def spec(tmp_path, **fields) -> object:
    data = {"name": "custom", "format": "csv", "columns": dict(SALES),
            "timestamp_format": "%Y-%m-%d %H:%M", **fields}
    path = write(tmp_path / "custom" / "spec.yaml", yaml.safe_dump(data))
    return load_spec(path)


def loaded(engine) -> list[tuple]:
    return [tuple(r) for r in rows(engine, "select order_id, line_number, quantity, unit_price, "
                                           "source_line from raw.sales_lines order by 5")]


def quarantined(engine) -> list[tuple]:
    return [tuple(r) for r in rows(engine, "select line_number, field, reason from "
                                           "raw.quarantine order by 1")]


def reconciles(result) -> bool:
    return result.rows_read == result.rows_loaded + result.rows_quarantined


def test_european_export_decimal_comma_thousands_header_below_a_title_and_joined_key(
        engine, tmp_path):
    register(engine, "berlin", timezone="Europe/Berlin", currency="EUR", country="DE")
    columns = {**SALES, "order_id": {"join": ["Kunde", "Datum"], "separator": "/"},
               "line_number": {"derive": "position_in_order"}, "store_id": "Filiale",
               "ordered_at": "Datum", "product_id": "Artikel", "quantity": "Menge",
               "unit_price": {"column": "Summe", "divided_by": "Menge"}}
    source = spec(tmp_path, columns=columns, timestamp_format="%d.%m.%Y %H:%M",
                  csv={"delimiter": ";", "header_line": 3},
                  numbers={"decimal": ",", "thousands": "."}, rules={"known_stores": "any"})
    path = write(tmp_path / "custom" / "umsatz.csv", (
        "Umsatzbericht Filiale Berlin\n"
        "erstellt am 02.01.2025\n"
        "Filiale;Kunde;Datum;Artikel;Menge;Summe\n"
        "B1;K1;01.01.2025 10:00;A1;2;1.234,50\n"
        "B1;K1;01.01.2025 10:00;A2;3;10,5\n"
        "B1;K2;01.01.2025 11:00;A1;0;5\n"
        "B1;K3;01.01.2025 12:00;A1;1;1.2.3\n"))
    result = load_file(engine, path, "berlin", source)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (4, 2, 2)
    assert loaded(engine) == [("K1/01.01.2025 10:00", 1, Decimal("2"), Decimal("617.25"), 4),
                              ("K1/01.01.2025 10:00", 2, Decimal("3"), Decimal("3.5"), 5)]
    assert quarantined(engine) == [
        (6, "unit_price", "unit_price cannot be derived as Summe / Menge ('5' / '0'): "
                          "Menge is zero"),
        (7, "unit_price", "unit_price cannot be derived as Summe / Menge ('1.2.3' / '1'): "
                          "Summe is not a number")]


def test_a_misplaced_thousands_separator_is_not_a_number(engine, tmp_path):
    register(engine, "wien", timezone="Europe/Vienna", currency="EUR", country="AT")
    source = spec(tmp_path, csv={"delimiter": ";"}, numbers={"decimal": ",", "thousands": "."},
                  rules={"known_stores": "any"})
    path = write(tmp_path / "custom" / "a.csv", (
        "store;order;line;when;sku;qty;price\n"
        "W1;O1;1;2025-01-01 10:00;A;1;12.345,6\n"
        "W1;O2;1;2025-01-01 10:00;A;1;1.5\n"))
    result = load_file(engine, path, "wien", source)
    assert reconciles(result) and result.rows_loaded == 1
    assert loaded(engine)[0][3] == Decimal("12345.6")
    (line, field, reason), = quarantined(engine)
    assert (line, field) == (3, "unit_price")
    assert "is not a number (decimal mark ',', thousands '.')" in reason


def test_whitespace_separated_report(engine, tmp_path):
    register(engine)
    source = spec(tmp_path, format="text", rules={"known_stores": "any"})
    path = write(tmp_path / "custom" / "report.txt", (
        "store  order  line  when              sku  qty  price\n"
        "S1     O1     1     2025-03-01T10:00  P1   2    1.50\n"
        "\n"
        "S1\tO1\t2\t2025-03-01T10:00\tP2\t1\t2\n"
        "S1 O2 1 2025-03-01T11:00 P2 1\n"))
    source = parse_spec({**yaml.safe_load(source.path.read_text()),
                         "timestamp_format": "%Y-%m-%dT%H:%M"}, "inline")
    result = load_file(engine, path, "shop", source)
    assert (result.rows_read, result.rows_loaded) == (3, 2) and reconciles(result)
    assert [r[4] for r in loaded(engine)] == [2, 4]  # the blank line keeps numbering physical
    assert quarantined(engine) == [(5, None, "has 6 fields where the header has 7")]


def test_fixed_width_without_a_header(engine, tmp_path):
    register(engine)
    positions = {"store": [1, 3], "order": [4, 8], "line": [9, 10], "when": [11, 26],
                 "sku": [27, 30], "qty": [31, 34], "price": [35, 42]}
    source = spec(tmp_path, format="fixed_width",
                  fixed_width={"header_line": 0, "columns": positions},
                  rules={"known_stores": "any"})
    path = write(tmp_path / "custom" / "tape.dat", (
        "S1 O0001 12025-03-01 10:00P1     2    1.50\n"
        "S1 O0002 12025-03-01 11:00P2    10   12.00\n"
        "S1 O0003 12025-03-01 12:00P3     x    1.00\n"))
    result = load_file(engine, path, "shop", source)
    assert (result.rows_read, result.rows_loaded) == (3, 2)
    assert loaded(engine) == [("O0001", 1, Decimal("2"), Decimal("1.50"), 1),
                              ("O0002", 1, Decimal("10"), Decimal("12.00"), 2)]
    assert quarantined(engine) == [(3, "quantity", "quantity 'x' is not a number")]


def test_xlsx_sheet_and_header_row_and_a_formula_without_its_value(engine, tmp_path):
    register(engine)
    book = openpyxl.Workbook()
    book.active.title = "Cover"
    book.active.append(["Monthly export"])
    sales = book.create_sheet("Sales")
    sales.append(["Sales, March"])
    sales.append([])
    sales.append(["store", "order", "line", "when", "sku", "qty", "price"])
    sales.append(["S1", "O1", 1, "2025-03-01 10:00", "P1", 2, "=8/2"])  # never computed
    sales.append(["S1", "O2", 1, "2025-03-01 11:00", "P1", 1, 3.25])
    path = tmp_path / "custom" / "march.xlsx"
    path.parent.mkdir(parents=True)
    book.save(path)
    source = spec(tmp_path, format="xlsx", xlsx={"sheet": "Sales", "header_row": 3},
                  rules={"known_stores": "any"})
    result = load_file(engine, path, "shop", source)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (2, 1, 1)
    assert loaded(engine) == [("O2", 1, Decimal("1"), Decimal("3.25"), 5)]
    (line, field, reason), = quarantined(engine)
    assert (line, field) == (4, "price")
    assert "formula (=8/2) saved without its value" in reason

    missing = spec(tmp_path, format="xlsx", xlsx={"sheet": "Umsatz"})
    rejected = load_file(engine, path, "shop", missing, source="other_export")
    assert rejected.status == "rejected"
    assert "has no sheet 'Umsatz' (sheets: Cover, Sales)" in rejected.error


def test_xlsx_with_more_sheets_of_the_same_columns_names_them_instead_of_reading_one(
        engine, tmp_path):
    register(engine)
    header = ["store", "order", "line", "when", "sku", "qty", "price"]
    book = openpyxl.Workbook()
    book.active.title = "January"
    for month, title in ((1, "January"), (2, "February"), (3, "March")):
        sheet = book[title] if month == 1 else book.create_sheet(title)
        sheet.append(header)
        sheet.append(["S1", f"O{month}", 1, f"2025-0{month}-01 10:00", "P1", 1, 2.5])
    book.create_sheet("Notes").append(["store", "exported by the back office"])
    path = tmp_path / "custom" / "quarter.xlsx"
    path.parent.mkdir(parents=True)
    book.save(path)
    rejected = load_file(engine, path, "shop", spec(tmp_path, format="xlsx",
                                                    rules={"known_stores": "any"}))
    assert rejected.status == "rejected"
    assert rejected.error == (
        "quarter.xlsx: sheet(s) 'February', 'March' have the columns of 'January' too, but "
        "one sheet is read per file: set xlsx.sheet in the spec to the one to load, or export "
        "one sheet per file")
    assert loaded(engine) == []

    # a notes sheet beside the data is no second sheet of sales: the file loads as before
    for title in ("February", "March"):
        del book[title]
    book.save(path)
    result = load_file(engine, path, "shop", spec(tmp_path, format="xlsx",
                                                  rules={"known_stores": "any"}))
    assert (result.status, result.rows_loaded) == ("loaded", 1)


def test_an_unclosed_quote_is_quarantined_alone_and_a_multi_line_value_loads(engine, tmp_path):
    register(engine)
    source = spec(tmp_path, rules={"known_stores": "any"},
                  columns={**SALES, "product_name": "name"})
    header = "store,order,line,when,sku,name,qty,price\n"

    def line(order: str, name: str = "Tea") -> str:
        return f"S1,{order},1,2025-03-01 10:00,P1,{name},1,2.50\n"

    # Past the first block too: a quote open at a block's end breaks pyarrow's chunking.
    body = "".join(line(f"A{i}") for i in range(20_000))
    path = write(tmp_path / "custom" / "quotes.csv", header + body + line("BAD", '"Earl Grey')
                 + line("M1", '"two\nlines"') + body.replace("A", "B"))
    result = load_file(engine, path, "shop", source)
    assert (result.rows_read, result.rows_quarantined) == (40_002, 1) and reconciles(result)
    bad_line = 20_002
    assert quarantined(engine) == [(bad_line, None, "has a quote that is not closed on its line")]
    got = rows(engine, "select source_line, product_name from raw.sales_lines where order_id "
                       "in ('A19999', 'M1', 'B0', 'B19999') order by 1")
    assert [tuple(r) for r in got] == [(20_001, "Tea"), (bad_line + 1, "two\nlines"),
                                       (bad_line + 3, "Tea"), (bad_line + 20_002, "Tea")]


@pytest.mark.parametrize(("fields", "message"), [
    ({"columns": {**SALES, "unit_price": {"column": "total", "divide_by": "qty"}}},
     "columns.unit_price: expected a source column name or a mapping"),
    ({"csv": {"delimeter": ";"}}, "csv: Additional properties are not allowed ('delimeter' "
                                  "was unexpected) (allowed: delimiter, encoding, header_line)"),
    ({"numbers": {"decimal": ";"}}, "numbers.decimal: ';' is not one of"),
    ({"xlsx": {"header_row": 0}}, "xlsx.header_row: 0 is less than the minimum of 1"),
    ({"format": "fixed_width", "fixed_width": {"columns": {"store": [5, 2]}}},
     "fixed_width.columns.store: ends at 2, before it starts (5)"),
    ({"rules": {"known_stores": "some"}}, "rules.known_stores: 'some' is not one of"),
    ({"columns": {**SALES, "order_id": {"join": ["a"]}}},
     "columns.order_id.join: ['a'] is too short"),
])
def test_an_invalid_spec_names_the_key(tmp_path, fields, message):
    with pytest.raises(SpecError) as error:
        spec(tmp_path, **fields)
    assert "spec.yaml: " in str(error.value)
    assert message in str(error.value)


def test_the_published_schema_accepts_every_shipped_spec():
    schema = spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in SHIPPED_SPECS_DIR.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        data.setdefault("rules", {})
        if "earliest" in data["rules"]:
            data["rules"]["earliest"] = str(data["rules"]["earliest"])
        jsonschema.validate(json.loads(json.dumps(data)), schema)
