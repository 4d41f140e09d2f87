"""The ingestion asset and the landing sensor, run by Dagster against real PostgreSQL."""

import json
import logging
import os
import shutil

import pytest
from dagster import AssetKey, DagsterInstance, SensorResult, build_sensor_context, materialize

from orchestration.assets.ingestion import ingest_landing_files
from orchestration.resources import LandingResource, WarehouseResource
from orchestration.sensors import landing_sensor
from tests.ingestion_helpers import good_row, pos_csv, register, rows, scalar


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def _resources(database_url, landing) -> dict:
    return {"warehouse": WarehouseResource(
                database_url=database_url.render_as_string(hide_password=False)),
            # files here are written whole before a tick: no copy to wait out
            "landing": LandingResource(landing_dir=str(landing), settle_seconds=0)}


def test_asset_loads_a_tenant_partition_once(engine, database_url, tmp_path, instance,
                                             small_sample):
    landing = tmp_path / "landing"
    shutil.copytree(small_sample.root / "northwind", landing / "northwind")
    register(engine, "northwind")
    instance.add_dynamic_partitions("tenants", ["northwind"])
    resources = _resources(database_url, landing)

    first = materialize([ingest_landing_files], partition_key="northwind", instance=instance,
                        resources=resources)
    assert first.success
    meta = first.asset_materializations_for_node("ingest_landing_files")
    sales = next(m for m in meta if m.asset_key == AssetKey(["raw", "sales_lines"])).metadata
    loaded_in_db = scalar(engine, "select count(*) from raw.sales_lines")
    assert sales["rows_loaded"].value == loaded_in_db > 0
    assert sales["rows_quarantined"].value == scalar(engine, "select count(*) from raw.quarantine")
    assert sales["rows_read"].value == sales["rows_loaded"].value + sales["rows_quarantined"].value
    assert sales["files_rejected"].value == 0
    # the quarantine's first rows of each file, with line, field and reason, at a glance
    shown = next(m for m in meta if m.asset_key == AssetKey(["raw", "quarantine"])).metadata
    quarantined = rows(engine, "select f.file_name, q.line_number, q.field, q.reason, "
                               "row_number() over (partition by q.file_id order by "
                               "q.line_number) as nth from raw.quarantine q join "
                               "raw.ingest_files f using (file_id)")
    assert quarantined
    table = shown["first_quarantined"].value
    for row in quarantined:
        line = f"| {row.file_name} | {row.line_number} | {row.field or ''} | {row.reason} |"
        assert (line in table) == (row.nth <= 5), line

    # Nothing new: the run loads nothing and reports nothing, so nothing downstream turns
    # stale (and no check re-validates an unchanged batch).
    again = materialize([ingest_landing_files], partition_key="northwind", instance=instance,
                        resources=resources)
    assert again.success
    assert again.get_asset_materialization_events() == []
    assert again.get_asset_check_evaluations() == []
    assert scalar(engine, "select count(*) from raw.sales_lines") == loaded_in_db


def test_a_load_whose_run_stopped_before_its_gate_is_gated_by_the_next_run(
        engine, database_url, tmp_path, instance):
    """The load committed, then the run died before its gate (a killed process, a lost
    node): its files are loaded but unjudged, so out of the marts. The next run, with nothing
    new to load, judges and publishes them, and says so."""
    from ingestion.landing import ingest_tenant

    landing = tmp_path / "landing"
    register(engine, "shop")
    instance.add_dynamic_partitions("tenants", ["shop"])
    pos_csv(landing / "shop" / "generic_pos_csv" / "a.csv", [good_row()])
    [first] = ingest_tenant(engine, landing, "shop", batch_id="run-that-died")
    pos_csv(landing / "shop" / "generic_pos_csv" / "b.csv", [good_row("O2")])
    [second] = [r for r in ingest_tenant(engine, landing, "shop",
                                         batch_id="its-retry-that-died-too")
                if r.status == "loaded"]
    assert scalar(engine, "select count(*) from raw.ingest_files where published_at is null") \
        == 2

    next_run = materialize([ingest_landing_files], partition_key="shop", instance=instance,
                           resources=_resources(database_url, landing))
    assert next_run.success
    sales = next(m for m in next_run.asset_materializations_for_node("ingest_landing_files")
                 if m.asset_key == AssetKey(["raw", "sales_lines"])).metadata
    assert sales["files_published"].value == f"{first.file_id}, {second.file_id}"
    assert sales["files_loaded"].value == 0  # nothing new was loaded
    assert {e.passed for e in next_run.get_asset_check_evaluations()} == {True}
    assert scalar(engine, "select count(*) from raw.ingest_files where published_at is null") \
        == 0


def test_rejected_file_is_reported_in_dagster(engine, database_url, tmp_path, instance):
    landing = tmp_path / "landing"
    register(engine, "shop")
    pos_csv(landing / "shop" / "generic_pos_csv" / "good.csv", [good_row()])
    (landing / "shop" / "generic_pos_csv" / "bad.csv").write_text("")
    instance.add_dynamic_partitions("tenants", ["shop"])
    result = materialize([ingest_landing_files], partition_key="shop", instance=instance,
                         resources=_resources(database_url, landing))
    meta = next(m for m in result.asset_materializations_for_node("ingest_landing_files")
                if m.asset_key == AssetKey(["raw", "sales_lines"])).metadata
    assert meta["files_rejected"].value == 1
    assert "bad.csv | rejected" in meta["files"].value
    assert "empty file" in meta["files"].value  # the reason, shown in the Dagster UI
    assert "empty file" in scalar(
        engine, "select error from raw.ingest_files where status = 'rejected'")
    assert scalar(engine, "select count(*) from raw.sales_lines") == 1


def test_a_file_of_quarantined_rows_fails_its_run_and_says_which(engine, database_url,
                                                                tmp_path, instance):
    """Every row of the file quarantined: nothing is lost (the rows are in raw.quarantine),
    the empty batch fails its gate, and the run's log says which rows and why."""
    landing = tmp_path / "landing"
    register(engine, "shop")
    pos_csv(landing / "shop" / "generic_pos_csv" / "day.csv",
            [good_row(qty="lots"), good_row("O2", at="yesterday")])
    instance.add_dynamic_partitions("tenants", ["shop"])
    result = materialize([ingest_landing_files], partition_key="shop", instance=instance,
                         resources=_resources(database_url, landing), raise_on_error=False)
    assert not result.success
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert failed == {"ge_batch_has_rows"}
    assert scalar(engine, "select count(*) from raw.quarantine") == 2
    warnings = [entry.user_message for entry in instance.all_logs(result.run_id)
                if entry.level == logging.WARNING and "day.csv" in entry.user_message]
    assert len(warnings) == 1, warnings
    assert "day.csv: loaded 0 of 2 rows, 2 quarantined" in warnings[0]
    assert "\n  line 2: quantity 'lots' is not a number" in warnings[0]
    assert "\n  line 3: ordered_at 'yesterday' is not a date-time" in warnings[0]


def test_landing_sensor_asks_the_ledger_what_is_pending(engine, database_url, tmp_path,
                                                         instance, capfd):
    from ingestion.landing import ingest_tenant

    landing = tmp_path / "landing"
    register(engine, "shop")
    pos_csv(landing / "shop" / "generic_pos_csv" / "a.csv", [good_row()])
    pos_csv(landing / "stranger" / "generic_pos_csv" / "a.csv", [good_row()])  # not registered
    resources = _resources(database_url, landing)

    def tick():
        return landing_sensor(build_sensor_context(instance=instance, resources=resources))

    def tick_after(previous):
        return landing_sensor(build_sensor_context(instance=instance, resources=resources,
                                                   cursor=previous.cursor))

    first = tick()
    assert isinstance(first, SensorResult)
    assert [r.partition_key for r in first.run_requests] == ["shop"]
    assert first.dynamic_partitions_requests[0].partition_keys == ["shop"]
    instance.add_dynamic_partitions("tenants", ["shop"])
    # the stranger's file is read by nothing: said once, and kept in the cursor
    said = "landing/stranger/ holds 1 file(s) but no tenant 'stranger' is registered"
    assert said in capfd.readouterr().err
    assert json.loads(first.cursor)["unregistered"] == {"stranger": 1}

    # Still pending on the next tick (no run has loaded it): the same run key, so the daemon
    # launches no second run for it.
    second = tick_after(first)
    assert [r.run_key for r in second.run_requests] == [first.run_requests[0].run_key]
    assert second.dynamic_partitions_requests == []
    assert said not in capfd.readouterr().err  # unchanged: not said again

    # Loaded outside Dagster (the CLI, the demo): never requested again, without any cursor.
    ingest_tenant(engine, landing, "shop")
    quiet = tick()
    assert quiet.run_requests == []
    assert quiet.skip_reason.skip_message == (
        "no new or changed files ready to load for the 1 registered tenant(s); no tenant is "
        "registered for landing/stranger/")

    # A new file: a run with a new key, for that file only.
    pos_csv(landing / "shop" / "generic_pos_csv" / "b.csv", [good_row("O2")])
    third = tick()
    assert len(third.run_requests) == 1
    assert third.run_requests[0].run_key != first.run_requests[0].run_key
    assert third.run_requests[0].tags["storepulse/files"] == "1"
    assert json.loads(third.cursor) == {"pending": {"shop": 1}, "unregistered": {"stranger": 1}}
    ingest_tenant(engine, landing, "shop")

    # A changed file (same name, new content, later mtime) is pending again.
    path = landing / "shop" / "generic_pos_csv" / "a.csv"
    pos_csv(path, [good_row(qty="9")])
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**10))
    fourth = tick()
    assert len(fourth.run_requests) == 1


def test_a_file_still_being_written_waits_until_it_is_still(engine, database_url, tmp_path,
                                                            instance, capfd):
    import time

    from ingestion.landing import still_changing

    landing = tmp_path / "landing"
    register(engine, "shop")
    instance.add_dynamic_partitions("tenants", ["shop"])
    resources = {**_resources(database_url, landing),
                 "landing": LandingResource(landing_dir=str(landing), settle_seconds=2)}
    path = landing / "shop" / "generic_pos_csv" / "upload.csv"
    # the first half of an upload: a whole header and line, the rest still on its way
    pos_csv(path, [good_row("O1")])
    written = time.time()

    def tick():
        return landing_sensor(build_sensor_context(instance=instance, resources=resources))

    assert tick().run_requests == []  # just changed: not pending yet
    early = materialize([ingest_landing_files], partition_key="shop", instance=instance,
                        resources=resources)
    assert early.success and early.get_asset_materialization_events() == []
    assert scalar(engine, "select count(*) from raw.ingest_files") == 0  # untouched
    assert ("generic_pos_csv/upload.csv changed in the last 2 s and may still be being "
            "written: left for the next run") in capfd.readouterr().err

    pos_csv(path, [good_row("O1"), good_row("O2")])  # the upload completes
    assert tick().run_requests == []  # a write restarts the wait
    while time.time() - path.lstat().st_ctime < 2.1:
        time.sleep(0.1)
    assert time.time() - written > 2
    (request,) = tick().run_requests
    assert request.tags["storepulse/files"] == "1"
    loaded = materialize([ingest_landing_files], partition_key="shop", instance=instance,
                         resources=resources)
    assert loaded.success
    assert scalar(engine, "select count(*) from raw.sales_lines") == 2  # the whole file

    # a change time ahead of this machine's clock (a share's server): taken as it is
    changed = path.lstat().st_ctime
    assert still_changing(path, 2, now=changed + 1)
    assert not still_changing(path, 2, now=changed + 3)
    assert not still_changing(path, 2, now=changed - 60)
    assert not still_changing(path, 0, now=changed)
