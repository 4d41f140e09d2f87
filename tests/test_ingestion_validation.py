"""Every row-level and file-level problem: quarantined or rejected with an actionable reason."""

import gzip

import pytest

from ingestion.loader import load_file
from ingestion.spec import shipped_specs
from tests.ingestion_helpers import POS_HEADER, good_row, pos_csv, register, rows, scalar, write

SPEC = shipped_specs()["generic_pos_csv"]

ROW_CASES = [
    ("unparseable date", good_row(at="2025-02-30 10:00:00"), "ordered_at",
     "is not a date-time in format"),
    ("date and time joined by T", good_row(at="2025-03-01T10:00:00"), "ordered_at",
     "is not a date-time in format"),
    ("unparseable number", good_row(qty="two"), "quantity", "is not a number"),
    ("unparseable price", good_row(price='"3,50"'), "unit_price", "is not a number"),
    ("missing required field", good_row().replace("SKU1", ""), "product_id",
     "required field is empty"),
    ("quantity zero", good_row(qty="0"), "quantity", "is zero"),
    ("negative price", good_row(price="-1.00"), "unit_price", "is negative"),
    ("unknown store", good_row(store="S9"), "store_id", "is not in the tenant's store catalogue"),
    ("date too old", good_row(at="1999-12-31 23:00:00"), "ordered_at",
     "is outside the plausible window"),
    ("date in the future", good_row(at="2999-01-01 00:00:00"), "ordered_at",
     "is outside the plausible window"),
    ("bad currency", good_row().replace("GBP", "pounds"), "currency", "ISO 4217"),
    ("too many fields", good_row() + ",extra", None, "has 13 fields where the header has 12"),
]


@pytest.mark.parametrize(("case", "bad", "field", "reason"), ROW_CASES,
                         ids=[c[0] for c in ROW_CASES])
def test_row_problem_is_quarantined_with_reason(engine, tmp_path, case, bad, field, reason):
    register(engine)
    write(tmp_path / "stores_csv" / "stores.csv", "store_id,store_name,city,country\nS1,A,B,GB\n")
    load_file(engine, tmp_path / "stores_csv" / "stores.csv", "shop", shipped_specs()["stores_csv"])
    path = pos_csv(tmp_path / "p" / "f.csv", [good_row("O1"), bad.replace("O1", "O2", 1),
                                              good_row("O3")])
    result = load_file(engine, path, "shop", SPEC)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (4 - 1, 2, 1)
    got = rows(engine, "select q.line_number, q.field, q.reason, q.raw_text, q.file_id "
                       "from raw.quarantine q")
    assert len(got) == 1
    line, got_field, got_reason, raw_text, file_id = got[0]
    assert line == 3  # header is line 1
    assert got_field == field
    assert reason in got_reason
    assert "O2" in raw_text
    assert file_id == result.file_id
    ledger = rows(engine, "select rows_read, rows_loaded, rows_quarantined from raw.ingest_files "
                          "where file_id = :f", f=result.file_id)[0]
    assert tuple(ledger) == (3, 2, 1)
    # whoever loaded the file reads the row's line, field and reason at once
    [shown] = result.quarantine_lines
    assert shown.startswith("line 3") and reason in shown and (field or "") in shown


def test_the_first_quarantined_rows_come_back_in_file_order_across_chunks(engine, tmp_path,
                                                                         monkeypatch):
    from ingestion.readers import delimited

    monkeypatch.setattr(delimited, "CSV_BLOCK_BYTES", 256)  # many small chunks
    register(engine)
    body = [good_row(f"O{i}", qty="two" if i % 5 == 0 else "1") for i in range(40)]
    result = load_file(engine, pos_csv(tmp_path / "p" / "f.csv", body), "shop", SPEC)
    assert result.rows_quarantined == 8
    first = rows(engine, "select line_number, field, reason from raw.quarantine "
                         "order by line_number limit 5")
    assert [(r.line_number, r.field, r.reason) for r in result.first_quarantined] == \
        [tuple(r) for r in first]
    assert result.quarantine_lines[0] == "line 2: quantity 'two' is not a number"
    assert result.quarantine_lines[-1] == \
        f"... 3 more in raw.quarantine (file_id {result.file_id})"


def test_duplicate_line_key_across_chunks(engine, tmp_path, monkeypatch):
    from ingestion.readers import delimited

    monkeypatch.setattr(delimited, "CSV_BLOCK_BYTES", 256)  # many small chunks
    register(engine)
    body = [good_row(f"O{i}", 1, store="S1") for i in range(40)]
    body.append(good_row("O3", 1, store="S1", qty="5"))  # same key as line 5, chunks later
    body.append(good_row("O3", 2, store="S1"))  # a different line: fine
    path = pos_csv(tmp_path / "p" / "f.csv", body)
    result = load_file(engine, path, "shop", SPEC)
    assert (result.rows_loaded, result.rows_quarantined) == (41, 1)
    reason = scalar(engine, "select reason from raw.quarantine")
    assert "duplicates the line key" in reason
    assert scalar(engine, "select line_number from raw.quarantine") == 42


def test_quarantine_raw_text_quotes_like_the_file(engine, tmp_path):
    register(engine)
    path = pos_csv(tmp_path / "p" / "f.csv", [
        'S1,O1,1,2025-03-01 10:00:00,SKU1,"Mug, large",0,3.50,GBP,C1,store,sale'])
    load_file(engine, path, "shop", SPEC)
    assert scalar(engine, "select raw_text from raw.quarantine") == \
        'S1,O1,1,2025-03-01 10:00:00,SKU1,"Mug, large",0,3.50,GBP,C1,store,sale'


FILE_CASES = [
    ("empty file", b"", "empty file"),
    ("header only", (POS_HEADER + "\n").encode(), "empty file"),
    ("wrong delimiter", (POS_HEADER.replace(",", ";") + "\n" + good_row().replace(",", ";")
                         + "\n").encode(), "wrong delimiter"),
    ("missing columns", b"store_id,order_id\nS1,O1\n", "missing required column(s)"),
    ("a name off by case and spaces", (POS_HEADER.replace("quantity", " Quantity") + "\n"
                                       + good_row()).encode(),
     "missing required column(s) quantity in the header (found: store_id, order_id, "
     "line_number, ordered_at, sku, product_name,  Quantity, unit_price, currency, customer_id, "
     "channel, transaction_type); the header has ' Quantity' for 'quantity': names must match "
     "the spec exactly, case and spaces included"),
    ("undecodable bytes", (POS_HEADER + "\n" + good_row()).encode() + b"\nS1,O2,1,2025-03-01 "
     b"10:00:00,SKU1,Caf\xe9,1,1,GBP,,store,sale\n", "undecodable bytes"),
    ("xlsx named csv", b"PK\x03\x04" + b"\x00" * 200, "not CSV as its name says"),
]


@pytest.mark.parametrize(("case", "content", "message"), FILE_CASES,
                         ids=[c[0] for c in FILE_CASES])
def test_file_problem_rejects_the_file(engine, tmp_path, case, content, message):
    register(engine)
    path = write(tmp_path / "p" / "bad.csv", content)
    result = load_file(engine, path, "shop", SPEC)
    assert result.status == "rejected"
    assert message in result.error
    assert "bad.csv" in result.error
    assert scalar(engine, "select count(*) from raw.sales_lines") == 0
    assert scalar(engine, "select count(*) from raw.quarantine") == 0
    status, error = rows(engine, "select status, error from raw.ingest_files")[0]
    assert status == "rejected" and message in error


def test_xlsx_that_is_not_a_workbook(engine, tmp_path):
    register(engine)
    path = write(tmp_path / "x.xlsx", "InvoiceNo,StockCode\n1,2\n")
    result = load_file(engine, path, "shop", shipped_specs()["uci_online_retail_xlsx"])
    assert result.status == "rejected" and "not an XLSX workbook" in result.error


def test_a_column_named_twice_rejects_the_file_in_every_tabular_format(engine, tmp_path):
    """Which "Quantity" is the quantity? Not the first by luck: the file is rejected."""
    import openpyxl

    from ingestion.spec import parse_spec

    register(engine)
    book = openpyxl.Workbook()
    book.active.append(["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
                        "UnitPrice", "CustomerID", "Country", "Quantity"])
    book.active.append(["536365", "85123A", "HEART", 6, "2010-12-01 08:26:00", 2.55, 17850,
                        "United Kingdom", 600])
    book.save(tmp_path / "twice.xlsx")
    text_spec = parse_spec({"name": "report", "format": "text", "rules": {"known_stores": "any"},
                            "timestamp_format": "%Y-%m-%dT%H:%M",
                            "columns": {"store_id": "store", "order_id": "order",
                                        "line_number": "line", "ordered_at": "when",
                                        "product_id": "sku", "quantity": "qty",
                                        "unit_price": "price", "currency": {"constant": "GBP"},
                                        "is_return": {"constant": False}}})
    write(tmp_path / "twice.txt", "store order line when sku qty price qty\n"
                                  "S1 O1 1 2025-03-01T10:00 P1 2 3.50 200\n")
    cases = [(tmp_path / "twice.xlsx", shipped_specs()["uci_online_retail_xlsx"],
              "twice.xlsx: sheet 'Sheet' row 1: column name(s) Quantity appear more than once"),
             (tmp_path / "twice.txt", text_spec,
              "twice.txt: line 1: column name(s) qty appear more than once")]
    for path, spec, message in cases:
        result = load_file(engine, path, "shop", spec)
        assert result.status == "rejected" and message in result.error, result
    assert scalar(engine, "select count(*) from raw.sales_lines") == 0
    assert rows(engine, "select file_name, status from raw.ingest_files order by 1") == [
        ("twice.txt", "rejected"), ("twice.xlsx", "rejected")]


def test_json_problems(engine, tmp_path):
    register(engine)
    spec = shipped_specs()["json_orders"]
    not_json = write(tmp_path / "a.jsonl", "this is not json\n")
    assert "not JSON lines" in load_file(engine, not_json, "shop", spec).error
    order = ('{"id": "A1", "location_id": "S1", "created_at": "2025-05-01 12:00:00", '
             '"currency": "GBP", "kind": "sale", "customer": null, "lines": '
             '[{"line": 1, "sku": "X", "title": "Ex", "qty": 1, "price": 2}]}')
    mixed = write(tmp_path / "b.jsonl", order + "\n{broken\n" +
                  order.replace('"A1"', '"A2"').replace('"lines": [', '"lines": [], "x": [') + "\n")
    result = load_file(engine, mixed, "shop", spec)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (3, 1, 2)
    reasons = [r.reason for r in rows(engine, "select reason from raw.quarantine order by "
                                              "line_number")]
    assert reasons[0].startswith("not valid JSON") and "has no 'lines' items" in reasons[1]


def test_wrong_extension_for_spec(engine, tmp_path):
    register(engine)
    path = write(tmp_path / "data.parquet", b"PAR1")
    result = load_file(engine, path, "shop", SPEC)
    assert result.status == "rejected" and "reads CSV files" in result.error


def test_gzip_csv_loads(engine, tmp_path):
    register(engine)
    path = tmp_path / "p" / "f.csv.gz"
    path.parent.mkdir()
    with gzip.open(path, "wt") as fh:
        fh.write(POS_HEADER + "\n" + good_row() + "\n")
    assert load_file(engine, path, "shop", SPEC).rows_loaded == 1
