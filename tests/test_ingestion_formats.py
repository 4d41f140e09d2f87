"""Each shipped format loads onto the canonical contract; a spec written here adds a new one."""

import gzip
import json
from datetime import UTC, datetime

import openpyxl
import pytest

from ingestion.loader import load_file
from ingestion.spec import load_spec, shipped_specs, spec_for_source
from tests.conftest import UCI_CSV
from tests.ingestion_helpers import good_row, pos_csv, register, rows, scalar, write


def test_generic_pos_csv(engine, tmp_path):
    register(engine)
    path = pos_csv(tmp_path / "generic_pos_csv" / "day1.csv", [
        good_row("O1", 1), good_row("O1", 2, qty="1", price="10"),
        good_row("R9", 1, qty="-1", kind="return", customer=""),
    ])
    result = load_file(engine, path, "shop", shipped_specs()["generic_pos_csv"])
    assert (result.status, result.rows_read, result.rows_loaded) == ("loaded", 3, 3)
    loaded = rows(engine, "select order_id, line_number, quantity, unit_price, is_return, "
                          "customer_id, country, source_line, ordered_at from raw.sales_lines "
                          "order by source_line")
    assert [(r.order_id, r.line_number, r.is_return) for r in loaded] == [
        ("O1", 1, False), ("O1", 2, False), ("R9", 1, True)]
    assert loaded[2].customer_id is None  # guest
    assert loaded[0].country == "GB"  # from the tenant registration
    assert [r.source_line for r in loaded] == [2, 3, 4]
    # Naive local times are read in the tenant's zone (London is UTC+0 in March).
    assert loaded[0].ordered_at == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def test_timezone_of_tenant_is_applied(engine, tmp_path):
    register(engine, "nyc", timezone="America/New_York", currency="USD", country="US")
    path = pos_csv(tmp_path / "p" / "a.csv", [good_row().replace("GBP", "USD")])
    load_file(engine, path, "nyc", shipped_specs()["generic_pos_csv"])
    at = scalar(engine, "select ordered_at from raw.sales_lines")
    assert at == datetime(2025, 3, 1, 15, 0, tzinfo=UTC)  # 10:00 EST


def _uci_head(n: int) -> list[str]:
    with gzip.open(UCI_CSV, "rt", encoding="utf-8") as fh:
        return [next(fh).rstrip("\n") for _ in range(n + 1)]


@pytest.mark.skipif(not UCI_CSV.exists(), reason="shared UCI data not present")
def test_uci_csv_returns_guests_and_derived_line_numbers(engine, tmp_path):
    register(engine, "uci")
    lines = _uci_head(3000)
    path = write(tmp_path / "uci.csv", "\n".join(lines) + "\n")
    result = load_file(engine, path, "uci", shipped_specs()["uci_online_retail_csv"])
    assert result.rows_read == 3000
    assert result.rows_loaded + result.rows_quarantined == 3000
    header = lines[0].split(",")
    invoice_col = header.index("InvoiceNo")
    cancelled = sum(1 for line in lines[1:] if line.split(",")[invoice_col].startswith("C"))
    assert scalar(engine, "select count(*) from raw.sales_lines where is_return") == cancelled
    assert cancelled > 0
    assert scalar(engine, "select count(*) from raw.sales_lines where customer_id is null") > 0
    # Line numbers are positions within the invoice: 1..n without gaps.
    gaps = scalar(engine, "select count(*) from (select order_id, max(line_number) m, count(*) c "
                          "from raw.sales_lines group by order_id) t where m <> c")
    assert gaps == 0
    assert scalar(engine, "select count(distinct store_id) from raw.sales_lines") == 1
    assert scalar(engine, "select count(distinct country) from raw.sales_lines") >= 1


@pytest.mark.skipif(not UCI_CSV.exists(), reason="shared UCI data not present")
def test_uci_xlsx_matches_csv(engine, tmp_path):
    register(engine, "uci")
    lines = _uci_head(500)
    header = lines[0].split(",")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header)
    import csv as csv_module
    for values in csv_module.reader(lines[1:]):
        record = dict(zip(header, values, strict=True))
        sheet.append([
            record["InvoiceNo"], record["StockCode"], record["Description"] or None,
            int(record["Quantity"]),
            datetime.strptime(record["InvoiceDate"], "%Y-%m-%d %H:%M:%S"),  # a real date cell
            float(record["UnitPrice"]),
            float(record["CustomerID"]) if record["CustomerID"] else None,  # as Excel stores it
            record["Country"],
        ])
    xlsx = tmp_path / "uci.xlsx"
    book.save(xlsx)
    csv_path = write(tmp_path / "uci.csv", "\n".join(lines) + "\n")
    load_file(engine, xlsx, "uci", shipped_specs()["uci_online_retail_xlsx"])
    load_file(engine, csv_path, "uci", shipped_specs()["uci_online_retail_csv"])
    diff = rows(engine, """
        select order_id, line_number, product_id, quantity, unit_price, customer_id, ordered_at,
               is_return, count(distinct source_file_id)
        from raw.sales_lines group by 1, 2, 3, 4, 5, 6, 7, 8 having count(*) <> 2""")
    assert diff == []
    assert scalar(engine, "select count(*) from raw.sales_lines") == 1000


def test_json_orders_expand_nested_lines(engine, tmp_path):
    register(engine, "web", timezone="Europe/Berlin", currency="EUR", country="DE")
    orders = [
        {"id": "A1", "location_id": "WEB", "created_at": "2025-05-01 12:00:00", "currency": "EUR",
         "kind": "sale", "customer": {"id": "K1"},
         "lines": [{"line": 1, "sku": "X", "title": "Ex", "qty": 2, "price": 9.5},
                   {"line": 2, "sku": "Y", "title": "Why", "qty": 1, "price": 20}]},
        {"id": "A2", "location_id": "WEB", "created_at": "2025-05-02 09:30:00", "currency": "EUR",
         "kind": "return", "customer": None,
         "lines": [{"line": 1, "sku": "X", "title": "Ex", "qty": -1, "price": 9.5}]},
    ]
    path = write(tmp_path / "json_orders" / "o.jsonl",
                 "\n".join(json.dumps(o) for o in orders) + "\n")
    result = load_file(engine, path, "web", shipped_specs()["json_orders"])
    assert (result.rows_read, result.rows_loaded) == (3, 3)
    got = rows(engine, "select order_id, line_number, product_id, quantity, customer_id, "
                       "is_return, source_line from raw.sales_lines order by 1, 2")
    assert [(r.order_id, r.line_number, r.product_id, float(r.quantity), r.customer_id,
             r.is_return, r.source_line) for r in got] == [
        ("A1", 1, "X", 2.0, "K1", False, 1), ("A1", 2, "Y", 1.0, "K1", False, 1),
        ("A2", 1, "X", -1.0, None, True, 2)]


def test_a_new_pos_format_needs_only_a_spec(engine, tmp_path):
    """A semicolon-separated export with day-first dates and its own column names."""
    register(engine, "bistro", currency="EUR", country="FR", timezone="Europe/Paris")
    folder = tmp_path / "landing" / "bistro" / "caisse_fr"
    write(folder / "spec.yaml", """
name: caisse_fr
format: csv
target: sales_lines
csv: {delimiter: ";"}
timestamp_format: "%d/%m/%Y %H:%M"
columns:
  store_id: {constant: paris-1}
  order_id: ticket
  line_number: {derive: position_in_order}
  ordered_at: horodatage
  product_id: article
  product_name: libelle
  quantity: qte
  unit_price: prix
  currency: {tenant: currency}
  customer_id: client
  channel: {constant: store}
  is_return: {column: type, equals: AVOIR}
rules:
  known_stores: any
""")
    write(folder / "ventes.csv", "ticket;horodatage;article;libelle;qte;prix;client;type\n"
                                 "T1;03/04/2025 12:15;CAF;Café;2;1.80;;VENTE\n"
                                 "T1;03/04/2025 12:15;CRO;Croissant;1;1.20;;VENTE\n"
                                 "T2;04/04/2025 08:00;CAF;Café;-1;1.80;M7;AVOIR\n")
    spec = spec_for_source("caisse_fr", folder)
    assert spec.path == folder / "spec.yaml"
    result = load_file(engine, folder / "ventes.csv", "bistro", spec, source="caisse_fr")
    assert (result.rows_loaded, result.rows_quarantined) == (3, 0)
    got = rows(engine, "select order_id, line_number, product_name, currency, is_return, "
                       "to_char(ordered_at at time zone 'Europe/Paris', 'YYYY-MM-DD HH24:MI') "
                       "as local from raw.sales_lines order by 1, 2")
    assert [tuple(r) for r in got] == [
        ("T1", 1, "Café", "EUR", False, "2025-04-03 12:15"),
        ("T1", 2, "Croissant", "EUR", False, "2025-04-03 12:15"),
        ("T2", 1, "Café", "EUR", True, "2025-04-04 08:00")]


def test_store_catalogue_loads(engine, tmp_path):
    register(engine)
    path = write(tmp_path / "stores_csv" / "stores.csv",
                 "store_id,store_name,city,country\nS1,High Street,Leeds,GB\n")
    result = load_file(engine, path, "shop", shipped_specs()["stores_csv"])
    assert result.rows_loaded == 1
    assert scalar(engine, "select city from raw.stores") == "Leeds"


def test_invalid_spec_names_file_and_field(tmp_path):
    from ingestion.spec import SpecError

    bad = write(tmp_path / "spec.yaml", "name: x\nformat: csv\ncolumns:\n  store: s\n")
    with pytest.raises(SpecError, match=r"spec.yaml: columns.store: not a column"):
        load_spec(bad)
