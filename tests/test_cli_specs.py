"""`storepulse specs check`: a dry run of a spec on a file that shows the mapping, the rows as
they would load and what would be quarantined, and writes nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.ingestion_helpers import good_row, pos_csv, register, scalar, write

EU_SPEC = """\
name: kasse_eu
format: csv
csv: {delimiter: ";", header_line: 2}
numbers: {decimal: ",", thousands: "."}
timestamp_format: "%d.%m.%Y %H:%M"
rules: {known_stores: any}
columns:
  store_id: Filiale
  order_id: {join: [Kunde, Datum], separator: /}
  line_number: {derive: position_in_order}
  ordered_at: Datum
  product_id: Artikel
  quantity: Menge
  unit_price: {column: Summe, divided_by: Menge}
  currency: {tenant: currency}
  customer_id: Kunde
  is_return: {constant: false}
"""


def storepulse(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "storepulse"
    return subprocess.run([str(exe), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_check_shows_mapping_rows_and_quarantine_without_a_database(tmp_path):
    spec = write(tmp_path / "kasse" / "spec.yaml", EU_SPEC)
    export = write(tmp_path / "kasse" / "umsatz.csv", (
        "Umsatzbericht\n"
        "Filiale;Kunde;Datum;Artikel;Menge;Summe\n"
        "B1;K1;01.01.2025 10:00;A1;2;1.234,50\n"
        "B1;K2;01.01.2025 11:00;A1;0;5\n"))
    # no warehouse anywhere: a dry run needs none
    done = storepulse("specs", "check", str(export), "--source", str(spec),
                      env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "spec: kasse_eu (csv -> raw.sales_lines)" in out
    assert "Kunde + '/' + Datum" in out and "Summe / Menge" in out
    assert "K1/01.01.2025 10:00" in out and "617.25" in out
    assert "Menge is zero" in out
    assert "2 rows read: 1 would load, 1 would be quarantined" in out
    assert "nothing was written" in out


def test_check_as_a_tenant_uses_its_catalogue_and_writes_nothing(database_env, engine,
                                                                  tmp_path):
    register(engine)
    with engine.begin() as conn:  # a store catalogue without S9
        file_id = conn.execute(sa.text(
            "insert into raw.ingest_files (tenant_id, source, target, file_name, path, sha256, "
            "bytes, version, status) values ('shop', 'stores_csv', 'stores', 's.csv', 's', "
            "'h', 1, 1, 'loaded') returning file_id")).scalar_one()
        conn.execute(sa.text("insert into raw.stores (tenant_id, store_id, source_file_id, "
                             "source_line) values ('shop', 'S1', :f, 2)"), {"f": file_id})
    export = pos_csv(tmp_path / "pos" / "day.csv",
                     [good_row("O1"), good_row("O2", store="S9")])
    before = scalar(engine, "select count(*) from raw.ingest_files")
    done = storepulse("specs", "check", str(export), "--tenant", "shop",
                      env={"DATABASE_URL": database_env.render_as_string(False)})
    assert done.returncode == 0, done.stderr
    assert "spec: generic_pos_csv" in done.stdout
    assert "is not in the tenant's store catalogue" in done.stdout
    assert "GBP" in done.stdout  # the tenant's, not a placeholder
    assert scalar(engine, "select count(*) from raw.ingest_files") == before
    assert scalar(engine, "select count(*) from raw.sales_lines") == 0
    assert scalar(engine, "select count(*) from raw.quarantine") == 0


def test_check_of_a_file_that_would_be_rejected_exits_2(tmp_path):
    export = write(tmp_path / "pos" / "day.csv", "store_id;order_id\nS1;O1\n")
    done = storepulse("specs", "check", str(export), "--source", "generic_pos_csv")
    assert done.returncode == 2
    assert "the file would be rejected: day.csv: line 1: wrong delimiter" in done.stdout
    assert "Traceback" not in done.stderr


def test_a_broken_spec_is_one_line_naming_the_key(tmp_path):
    spec = write(tmp_path / "spec.yaml", EU_SPEC.replace("header_line", "headerline"))
    export = write(tmp_path / "a.csv", "x\n1\n")
    done = storepulse("specs", "check", str(export), "--source", str(spec))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "csv: Additional properties are not allowed ('headerline' was unexpected)" in \
        done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_schema_is_printed_as_json():
    done = storepulse("specs", "schema")
    assert done.returncode == 0
    assert json.loads(done.stdout)["title"] == "StorePulse source spec"
