"""One bad file never stops a tenant: every failure while reading, validating or loading a
file becomes a rejected ledger row with a reason, and the next file is processed. (Only a lost
database connection ends a run early, and it says so: test_ingestion_exactly_once.py.)"""

from __future__ import annotations

import gzip
import os

from ingestion.landing import ingest_tenant, pending_files
from tests.ingestion_helpers import POS_HEADER, good_row, pos_csv, register, rows, scalar, write


def _lines(n: int, prefix: str = "O") -> list[str]:
    return [good_row(order=f"{prefix}{i}") for i in range(n)]


def _landing_with_bad_files(root, other_tenant_export):
    """Files that each once crashed the loader, sorted before a good one."""
    folder = root / "shop" / "generic_pos_csv"
    pos_csv(folder / "a_duplicate_header.csv", _lines(2),
            header=POS_HEADER.replace("product_name", "sku"))
    pos_csv(folder / "b_huge_numbers.csv",
            [good_row(order="H1", qty="99999999999999999999"),
             good_row(order="H2", line=99_999_999_999),
             good_row(order="H3", price="1e300"), good_row(order="H4")])
    big = "\n".join([POS_HEADER, *_lines(1200, "N")]).encode()  # > 64 KiB before the NUL
    write(folder / "c_nul_late.csv", big + b"\nS1,NUL1,1,2025-03-01 10:00:00,SKU1,Th\x00ing,1,"
                                           b"1.00,GBP,C1,store,sale\n")
    whole = gzip.compress("\n".join([POS_HEADER, *_lines(50, "G")]).encode())
    write(folder / "d_truncated.csv.gz", whole[: len(whole) // 2])
    write(folder / "e_cr_only.csv", "\r".join([POS_HEADER, *_lines(3, "R")]) + "\r")
    os.symlink(other_tenant_export, folder / "f_link_to_other_tenant.csv")
    os.symlink("/etc/hostname", folder / "g_link_to_system_file.csv")
    pos_csv(folder / "z_good.csv", _lines(4, "Z"))
    broken = root / "shop" / "custom_pos"
    write(broken / "spec.yaml", "name: custom_pos\nformat: csv\ncolumns: [not, a, mapping]\n")
    pos_csv(broken / "orders.csv", _lines(1))
    from ingestion.spec import SHIPPED_SPECS_DIR

    unknown = root / "shop" / "till_klingon"
    write(unknown / "spec.yaml", (SHIPPED_SPECS_DIR / "generic_pos_csv.yaml").read_text()
          .replace("name: generic_pos_csv", "name: till_klingon")
          .replace("encoding: utf-8", "encoding: klingon"))
    pos_csv(unknown / "till.csv", _lines(1))


def test_bad_files_are_rejected_with_a_reason_and_the_rest_still_loads(engine, tmp_path):
    register(engine, "shop")
    register(engine, "rival")
    rival_export = pos_csv(tmp_path / "landing" / "rival" / "generic_pos_csv" / "secret.csv",
                           _lines(7, "SECRET"))
    landing = tmp_path / "landing"
    _landing_with_bad_files(landing, rival_export)

    results = {r.path.name: r for r in ingest_tenant(engine, landing, "shop")}

    assert results["z_good.csv"].status == "loaded" and results["z_good.csv"].rows_loaded == 4
    assert results["e_cr_only.csv"].status == "loaded"  # lone \r line ends are lines
    assert results["e_cr_only.csv"].rows_loaded == 3
    rejected = {
        "a_duplicate_header.csv": "line 1: column name(s) sku appear more than once",
        "d_truncated.csv.gz": "d_truncated.csv.gz: cannot be read as .gz",
        "f_link_to_other_tenant.csv": "is a symbolic link",
        "g_link_to_system_file.csv": "is a symbolic link",
        "orders.csv": "no usable spec for source 'custom_pos'",
        "till.csv": "csv.encoding: unknown encoding 'klingon'",
    }
    for name, says in rejected.items():
        assert results[name].status == "rejected", (name, results[name])
        assert results[name].error.startswith(name) and says in results[name].error, name
    # a NUL byte after the first 64 KiB: that line is quarantined, the 1,200 others load
    nul = results["c_nul_late.csv"]
    assert (nul.status, nul.rows_loaded, nul.rows_quarantined) == ("loaded", 1200, 1)
    assert rows(engine, "select line_number, field, raw_text like '%\\x00%' from "
                        "raw.quarantine where file_id = :f", f=nul.file_id) == [
        (1202, "product_name", True)]
    # numbers PostgreSQL would refuse inside COPY, or no shop ever sold: quarantined with
    # their line and field, the rest of the file loads
    huge = results["b_huge_numbers.csv"]
    assert (huge.status, huge.rows_loaded, huge.rows_quarantined) == ("loaded", 1, 3)
    assert sorted(rows(engine, "select line_number, field from raw.quarantine q join "
                               "raw.ingest_files f using (file_id) where f.file_name = "
                               "'b_huge_numbers.csv'")) == [
        (2, "quantity"), (3, "line_number"), (4, "unit_price")]
    # every file has a ledger row; nothing of the other tenant's export became shop's
    ledger = dict(rows(engine, "select file_name, status from raw.ingest_files "
                               "where tenant_id = 'shop'"))
    assert set(ledger) == set(results)
    assert scalar(engine, "select count(*) from raw.sales_lines where tenant_id = 'shop' "
                          "and order_id like 'SECRET%'") == 0
    assert "hostname" not in " ".join(
        str(e) for (e,) in rows(engine, "select coalesce(error, '') from raw.ingest_files"))
    # counts reconcile for every loaded file
    assert scalar(engine, "select count(*) from raw.ingest_files where tenant_id = 'shop' and "
                          "status = 'loaded' and rows_read <> rows_loaded + rows_quarantined"
                  ) == 0

    # a second scan reads none of them again and records nothing new
    before = scalar(engine, "select count(*) from raw.ingest_files")
    again = ingest_tenant(engine, landing, "shop")
    assert scalar(engine, "select count(*) from raw.ingest_files") == before
    assert {r.status for r in again} <= {"duplicate", "rejected"}


def test_a_file_outside_a_source_folder_is_rejected_with_where_it_belongs(engine, tmp_path):
    # Both once waited unseen: no run, no ledger row, nothing in `storepulse status`.
    register(engine, "shop")
    landing = tmp_path / "landing"
    source = landing / "shop" / "generic_pos_csv"
    pos_csv(landing / "shop" / "export.csv", _lines(2, "E"))  # beside the source folders
    pos_csv(source / "2025" / "jan.csv", _lines(3, "J"))  # in a folder inside one
    pos_csv(source / "ok.csv", _lines(4, "K"))
    assert set(pending_files(engine, landing, "shop")) == {
        "./export.csv", "generic_pos_csv/2025/jan.csv", "generic_pos_csv/ok.csv"}

    results = {r.path.name: r for r in ingest_tenant(engine, landing, "shop")}
    assert (results["ok.csv"].status, results["ok.csv"].rows_loaded) == ("loaded", 4)
    assert results["export.csv"].status == "rejected"
    assert ("export.csv is not in a source folder: move it to landing/shop/<source>/"
            in results["export.csv"].error)
    assert results["jan.csv"].status == "rejected"
    assert ("jan.csv is in a folder inside generic_pos_csv/: move it up to "
            "landing/shop/generic_pos_csv/" in results["jan.csv"].error)
    assert dict(rows(engine, "select file_name, source from raw.ingest_files "
                             "where status = 'rejected'")) == {
        "export.csv": ".", "jan.csv": "generic_pos_csv/2025"}
    assert pending_files(engine, landing, "shop") == {}  # the sensor asks for no more runs

    (source / "2025" / "jan.csv").rename(source / "jan.csv")
    assert set(pending_files(engine, landing, "shop")) == {"generic_pos_csv/jan.csv"}
    moved = {r.path.name: r for r in ingest_tenant(engine, landing, "shop")}
    assert (moved["jan.csv"].status, moved["jan.csv"].rows_loaded) == ("loaded", 3)


def test_a_corrected_file_with_an_old_mtime_is_read_again(engine, tmp_path):
    """`cp -p`, rsync and unzip keep the original's modification time."""
    register(engine, "shop")
    landing = tmp_path / "landing"
    path = pos_csv(landing / "shop" / "generic_pos_csv" / "day.csv",
                   [good_row(order="O1", qty="2")])
    first = ingest_tenant(engine, landing, "shop")
    assert first[0].status == "loaded"
    stat = path.stat()
    pos_csv(path, [good_row(order="O1", qty="3")])  # same size, different bytes
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - 3_600_000_000_000))
    (second,) = ingest_tenant(engine, landing, "shop")
    assert second.status == "loaded" and second.version == 2
    assert second.replaced_file_id == first[0].file_id


def test_the_same_bytes_under_two_names_at_once_is_one_load_and_one_duplicate(engine,
                                                                              tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from ingestion.loader import load_file
    from ingestion.spec import shipped_specs

    register(engine, "shop")
    first = pos_csv(tmp_path / "monday.csv", _lines(100_000, "M"))
    second = write(tmp_path / "monday_copy.csv", first.read_bytes())
    spec = shipped_specs()["generic_pos_csv"]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda p: load_file(engine, p, "shop", spec),
                                [first, second]))
    assert sorted(r.status for r in results) == ["duplicate", "loaded"]
    assert len({r.file_id for r in results}) == 1
    # whichever came second has its ledger row, naming the one it repeats
    assert scalar(engine, "select duplicate_of from raw.ingest_files "
                          "where status = 'duplicate'") == results[0].file_id
    assert scalar(engine, "select count(*) from raw.sales_lines") == 100_000


def _order(order_id: str, lines: int = 2) -> dict:
    return {"id": order_id, "location_id": "WEB", "created_at": "2025-05-01 12:00:00",
            "currency": "EUR", "kind": "sale", "customer": {"id": "K1"},
            "lines": [{"line": n, "sku": f"S{n}", "title": "T", "qty": 1, "price": 2.5}
                      for n in range(1, lines + 1)]}


def test_json_exports_as_users_have_them(engine, tmp_path):
    import json

    from ingestion.loader import load_file
    from ingestion.spec import shipped_specs

    register(engine, "web", timezone="Europe/Berlin", currency="EUR", country="DE")
    spec = shipped_specs()["json_orders"]
    folder = tmp_path / "json_orders"

    # one pretty-printed array of orders: every order's lines, each with the line it starts on
    array = write(folder / "array.json", json.dumps([_order("A1"), _order("A2", 3)], indent=2))
    loaded = load_file(engine, array, "web", spec)
    assert (loaded.status, loaded.rows_read, loaded.rows_loaded) == ("loaded", 5, 5)
    starts = sorted({line for (line,) in rows(
        engine, "select source_line from raw.sales_lines where source_file_id = :f",
        f=loaded.file_id)})
    assert starts[0] == 2 and len(starts) == 2  # "[" is line 1

    # JSON lines with a byte-order mark load, as CSV with one does
    bom = write(folder / "bom.jsonl",
                b"\xef\xbb\xbf" + "\n".join(json.dumps(_order(f"B{i}")) for i in range(2))
                .encode())
    assert load_file(engine, bom, "web", spec).rows_loaded == 4

    # a malformed first line is quarantined like any other line, not the whole file
    broken_first = write(folder / "first.jsonl", "{not json\n" + json.dumps(_order("C1")))
    result = load_file(engine, broken_first, "web", spec)
    assert (result.status, result.rows_loaded, result.rows_quarantined) == ("loaded", 2, 1)
    assert rows(engine, "select line_number from raw.quarantine where file_id = :f",
                f=result.file_id) == [(1,)]

    # and a file of which no line parses is not JSON at all
    prose = write(folder / "notes.json", "Dear data team,\nhere are the orders.\n")
    rejected = load_file(engine, prose, "web", spec)
    assert rejected.status == "rejected"
    assert "not JSON lines or a JSON array (line 1:" in rejected.error


def test_utf16_with_its_spec_and_gzip_under_a_csv_name_load(engine, tmp_path):
    from ingestion.loader import load_file
    from ingestion.spec import load_spec

    register(engine, "shop")
    text = "\n".join([POS_HEADER, *_lines(3, "U")]) + "\n"
    folder = tmp_path / "landing" / "shop" / "till_utf16"
    write(folder / "spec.yaml", (
        "name: till_utf16\nformat: csv\ncsv: {encoding: utf-16}\ncolumns:\n" + "".join(
            f"  {c}: {c}\n" for c in ("store_id", "order_id", "line_number", "ordered_at",
                                      "product_name", "quantity", "unit_price",
                                      "currency", "customer_id", "channel"))
        + "  product_id: sku\n  is_return: {column: transaction_type, equals: return}\n"))
    wide = write(folder / "export.csv", text.encode("utf-16"))
    result = load_file(engine, wide, "shop", load_spec(folder / "spec.yaml"))
    assert (result.status, result.rows_loaded) == ("loaded", 3), result.error

    from ingestion.spec import shipped_specs

    zipped = write(tmp_path / "daily.csv", gzip.compress(
        "\n".join([POS_HEADER, *_lines(4, "Z")]).encode()))
    result = load_file(engine, zipped, "shop", shipped_specs()["generic_pos_csv"])
    assert (result.status, result.rows_loaded) == ("loaded", 4), result.error


def test_sending_a_superseded_version_again_reverts_to_it(engine, tmp_path):
    from ingestion.loader import load_file
    from ingestion.spec import shipped_specs

    register(engine, "shop")
    spec = shipped_specs()["generic_pos_csv"]
    path = tmp_path / "day.csv"
    original = [good_row(order="O1", qty="2")]
    pos_csv(path, original)
    first = load_file(engine, path, "shop", spec)
    pos_csv(path, [good_row(order="O1", qty="9")])  # a mistaken "correction"
    assert load_file(engine, path, "shop", spec).version == 2
    pos_csv(path, original)  # the merchant sends the original again
    reverted = load_file(engine, path, "shop", spec)
    assert (reverted.status, reverted.version) == ("loaded", 3)
    assert rows(engine, "select version, status from raw.ingest_files order by version") == [
        (1, "superseded"), (2, "superseded"), (3, "loaded")]
    assert scalar(engine, "select sum(s.quantity) from raw.sales_lines s join raw.ingest_files"
                          " f on f.file_id = s.source_file_id where f.status = 'loaded'") == 2
    # the same bytes under another name stay a duplicate of what is loaded
    copy = write(tmp_path / "copy_of_day.csv", path.read_bytes())
    assert load_file(engine, copy, "shop", spec).status == "duplicate"
    assert first.file_id != reverted.file_id


def test_line_numbers_stay_physical_and_trailing_delimiters_lose_nothing(engine, tmp_path):
    from ingestion.loader import load_file
    from ingestion.spec import shipped_specs

    register(engine, "shop")
    spec = shipped_specs()["generic_pos_csv"]
    blanks = write(tmp_path / "blanks.csv", "\n".join([
        POS_HEADER, good_row(order="B1"), "", "", good_row(order="B2", qty="0"), "",
        good_row(order="B3"), "", good_row(order="B4", qty="zero")]) + "\n\n")
    result = load_file(engine, blanks, "shop", spec)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (4, 2, 2)
    assert rows(engine, "select line_number, field from raw.quarantine where file_id = :f "
                        "order by 1", f=result.file_id) == [(5, "quantity"), (9, "quantity")]
    assert sorted(line for (line,) in rows(
        engine, "select source_line from raw.sales_lines where source_file_id = :f",
        f=result.file_id)) == [2, 7]

    trailing = write(tmp_path / "trailing.csv", "\n".join(
        [POS_HEADER, *(good_row(order=f"T{i}") + "," for i in range(15))]) + "\n")
    result = load_file(engine, trailing, "shop", spec)
    assert (result.status, result.rows_read, result.rows_quarantined) == ("loaded", 15, 15)
    assert "a delimiter at the end of the line?" in scalar(
        engine, "select min(reason) from raw.quarantine where file_id = :f", f=result.file_id)


def test_an_id_of_the_wrong_json_type_is_quarantined_not_a_guest(engine, tmp_path):
    import json

    from ingestion.loader import load_file
    from ingestion.spec import shipped_specs

    register(engine, "web", timezone="Europe/Berlin", currency="EUR", country="DE")
    odd = dict(_order("W2"), customer={"id": {"number": 5}})
    path = write(tmp_path / "orders.jsonl", "\n".join(
        json.dumps(o) for o in (_order("W1"), odd, dict(_order("W3"), id=True))))
    result = load_file(engine, path, "web", shipped_specs()["json_orders"])
    assert (result.rows_loaded, result.rows_quarantined) == (2, 2)
    assert rows(engine, "select line_number, field, reason from raw.quarantine "
                        "where file_id = :f order by 1", f=result.file_id) == [
        (2, "customer_id", "customer.id is a JSON object, not an id"),
        (3, "order_id", "id is a JSON boolean, not an id")]
    assert scalar(engine, "select count(*) from raw.sales_lines where customer_id is null") == 0


def test_a_key_named_twice_in_a_json_order_quarantines_it(engine, tmp_path):
    import json

    from ingestion.loader import load_file
    from ingestion.spec import shipped_specs

    register(engine, "web", timezone="Europe/Berlin", currency="EUR", country="DE")
    spec = shipped_specs()["json_orders"]
    qty_twice = json.dumps(_order("D2")).replace('"qty": 1', '"qty": 1, "qty": 100', 1)
    lines_twice = json.dumps(_order("D3"))[:-1] + ', "lines": [{"line": 9, "sku": "S9"}]}'
    # a key the spec never reads, named twice, makes no value ambiguous: the order loads
    note_twice = json.dumps(dict(_order("D4"), note="a"))[:-1] + ', "note": "b"}'
    orders = [json.dumps(_order("D1")), qty_twice, lines_twice, note_twice]
    expected = [(2, "quantity", "key(s) qty appear more than once in one JSON object; which "
                                "value is meant is unclear"),
                (3, None, "key(s) lines appear more than once in one JSON object; which "
                          "value is meant is unclear")]
    as_lines = write(tmp_path / "orders.jsonl", "\n".join(orders) + "\n")
    # the same orders as one pretty-printed array: each order starts on its own line
    as_array = write(tmp_path / "orders.json", "[\n" + ",\n".join(orders) + "\n]\n")
    for path, first_line in ((as_lines, 1), (as_array, 2)):
        result = load_file(engine, path, "web", spec)
        assert (result.status, result.rows_read, result.rows_loaded,
                result.rows_quarantined) == ("loaded", 6, 4, 2), path.name
        assert rows(engine, "select line_number, field, reason from raw.quarantine "
                            "where file_id = :f order by 1", f=result.file_id) == [
            (line + first_line - 1, field, reason) for line, field, reason in expected]
        assert rows(engine, "select distinct order_id from raw.sales_lines "
                            "where source_file_id = :f order by 1",
                    f=result.file_id) == [("D1",), ("D4",)]


def test_a_loop_that_looks_once_waits_for_the_newest_file_to_be_still(tmp_path):
    import time

    from ingestion.landing import still_changing, wait_until_still

    landing = tmp_path / "landing"
    pos_csv(landing / "shop" / "generic_pos_csv" / "old.csv", [good_row("O1")])
    time.sleep(0.6)
    new = landing / "shop" / "generic_pos_csv" / "new.csv"
    pos_csv(new, [good_row("O2")])
    time.sleep(0.6)
    # an upload under a hidden name, renamed when whole, is never read: not waited for
    pos_csv(landing / "shop" / "generic_pos_csv" / ".new.csv.part", [good_row("O3")])
    started = time.monotonic()
    slept = wait_until_still(landing, 1.5)
    assert 0.5 < slept < 1.3  # about 0.9 s: for the newest visible file only
    assert time.monotonic() - started >= slept
    assert not still_changing(new, 1.5)
    assert wait_until_still(landing, 1.5) == 0.0
