"""Exactly once: same bytes load once; a changed file is a new version; a crash leaves nothing."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import sqlalchemy as sa

from ingestion.loader import ConnectionLost, load_file
from ingestion.spec import shipped_specs
from tests.ingestion_helpers import good_row, pos_csv, register, rows, scalar

SPEC = shipped_specs()["generic_pos_csv"]


def test_same_file_twice_loads_once(engine, tmp_path):
    register(engine)
    path = pos_csv(tmp_path / "p" / "f.csv", [good_row("O1"), good_row("O2")])
    first = load_file(engine, path, "shop", SPEC)
    again = load_file(engine, path, "shop", SPEC)
    assert first.status == "loaded" and again.status == "duplicate"
    assert again.file_id == first.file_id
    assert "already loaded" in again.message
    assert scalar(engine, "select count(*) from raw.sales_lines") == 2
    # The same bytes under another name are the same data: also not loaded twice.
    copy = tmp_path / "p" / "copy.csv"
    copy.write_bytes(path.read_bytes())
    assert load_file(engine, copy, "shop", SPEC).status == "duplicate"


def test_changed_file_is_a_new_version_that_replaces_the_old(engine, tmp_path):
    register(engine)
    path = pos_csv(tmp_path / "p" / "f.csv", [good_row("O1"), good_row("O2")])
    first = load_file(engine, path, "shop", SPEC)
    pos_csv(path, [good_row("O1", qty="7"), good_row("O3")])
    second = load_file(engine, path, "shop", SPEC)
    assert (second.status, second.version, second.replaced_file_id) == ("loaded", 2, first.file_id)
    ledger = rows(engine, "select file_id, version, status, superseded_by from raw.ingest_files "
                          "order by file_id")
    assert [tuple(r) for r in ledger] == [(first.file_id, 1, "superseded", second.file_id),
                                          (second.file_id, 2, "loaded", None)]
    # Both versions stay in raw for audit; only the loaded version is current.
    assert scalar(engine, "select count(*) from raw.sales_lines") == 4
    current = rows(engine, "select l.order_id, l.quantity from raw.sales_lines l join "
                           "raw.ingest_files f on f.file_id = l.source_file_id "
                           "where f.status = 'loaded' order by 1")
    assert [(r.order_id, float(r.quantity)) for r in current] == [("O1", 7.0), ("O3", 2.0)]


def test_connection_killed_mid_copy_leaves_nothing_and_rerun_loads_once(engine, tmp_path,
                                                                        monkeypatch):
    from ingestion.readers import delimited

    monkeypatch.setattr(delimited, "CSV_BLOCK_BYTES", 4096)
    register(engine)
    path = pos_csv(tmp_path / "p" / "big.csv", [good_row(f"O{i}") for i in range(3000)])
    pids = []

    def progress(read, _q):
        if read > 500 and not pids:
            with engine.connect() as admin:
                pids.extend(admin.execute(sa.text(
                    "select pid from pg_stat_activity where datname = current_database() and "
                    "query ilike 'copy raw.sales_lines%'")).scalars())
                admin.execute(sa.text("select pg_terminate_backend(:p)"), {"p": pids[0]})

    # the one failure that ends a run: it says so, and what to do
    with pytest.raises(ConnectionLost, match=r"big\.csv: lost the database connection"):
        load_file(engine, path, "shop", SPEC, progress=progress)
    assert pids, "the COPY backend was found and terminated"
    assert scalar(engine, "select count(*) from raw.sales_lines") == 0
    assert scalar(engine, "select count(*) from raw.ingest_files") == 0
    result = load_file(engine, path, "shop", SPEC)
    assert result.rows_loaded == 3000
    assert load_file(engine, path, "shop", SPEC).status == "duplicate"
    assert scalar(engine, "select count(*) from raw.sales_lines") == 3000


def test_worker_process_killed_mid_file(engine, database_url, tmp_path):
    register(engine)
    path = pos_csv(tmp_path / "p" / "big.csv", [good_row(f"O{i}") for i in range(200_000)])
    script = textwrap.dedent(f"""
        import sys, time
        from ingestion.readers import delimited
        delimited.CSV_BLOCK_BYTES = 65536
        from ingestion.loader import load_file
        from ingestion.spec import shipped_specs
        from storepulse.warehouse import get_engine, parse_database_url
        engine = get_engine(parse_database_url({database_url.render_as_string(False)!r}))
        def progress(read, q):
            print("progress", read, flush=True)
            time.sleep(0.05)
        load_file(engine, {str(path)!r}, "shop", shipped_specs()["generic_pos_csv"],
                  progress=progress)
        print("finished", flush=True)
    """)
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    seen = []
    timer = threading.Timer(120, worker.kill)
    timer.start()
    try:
        for line in worker.stdout:
            seen.append(line)
            if len(seen) >= 3:
                os.kill(worker.pid, signal.SIGKILL)
                break
        worker.wait(30)
    finally:
        timer.cancel()
    assert worker.returncode == -signal.SIGKILL
    assert not any("finished" in s for s in seen)
    # The server notices the dead client and rolls back; give it a moment.
    deadline = time.time() + 30
    while time.time() < deadline and scalar(
            engine, "select count(*) from pg_stat_activity where datname = current_database() "
                    "and query ilike 'copy raw.sales_lines%' and state <> 'idle'"):
        time.sleep(0.2)
    assert scalar(engine, "select count(*) from raw.sales_lines") == 0
    assert scalar(engine, "select count(*) from raw.ingest_files") == 0
    assert load_file(engine, path, "shop", SPEC).rows_loaded == 200_000


def test_landing_rescan_skips_unchanged_files_and_reads_changed_ones(engine, tmp_path,
                                                                      monkeypatch):
    from ingestion import loader
    from ingestion.landing import ingest_tenant

    register(engine, "shop")
    landing = tmp_path / "landing"
    path = pos_csv(landing / "shop" / "generic_pos_csv" / "day.csv",
                   [good_row(order="O1"), good_row(order="O2")])
    (first,) = ingest_tenant(engine, landing, "shop")
    assert first.status == "loaded"

    def no_hashing(_path):
        raise AssertionError("an unchanged file was read again")

    monkeypatch.setattr(loader, "sha256_of", no_hashing)
    (again,) = ingest_tenant(engine, landing, "shop")
    assert again.status == "duplicate" and again.file_id == first.file_id
    assert "not re-read" in again.message
    monkeypatch.undo()

    # same size, new content and a later modification time: read, and a new version
    path.write_text(path.read_text().replace("O2", "O3"))
    os.utime(path, (time.time() + 5, time.time() + 5))
    (changed,) = ingest_tenant(engine, landing, "shop")
    assert changed.status == "loaded" and changed.version == 2
    assert rows(engine, "select distinct order_id from raw.sales_lines s join raw.ingest_files "
                        "f on f.file_id = s.source_file_id where f.status = 'loaded' "
                        "order by 1") == [("O1",), ("O3",)]
