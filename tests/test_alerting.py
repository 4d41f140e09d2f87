"""Alert sensors over real rows, a real SMTP server and a Twilio-shaped HTTP server."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from time import sleep
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import sqlalchemy as sa
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    DagsterEventType,
    DagsterInstance,
    asset,
    asset_check,
    build_run_status_sensor_context,
    build_sensor_context,
    materialize,
)

from alerting.delivery import deliver_due
from alerting.rules import AlertRules, InvalidAlertRules, save_rules
from ml.tables import lock_anomaly_writes, write_anomalies
from orchestration.alerts import (
    AlertChannelsResource,
    anomaly_alert_sensor,
    failed_check_alert_sensor,
    run_failure_alert_sensor,
    stale_data_sensor,
)
from orchestration.resources import WarehouseResource
from tests.alerting_servers import SmtpServer, TwilioServer
from tests.ingestion_helpers import register, rows, scalar

MANAGERS = ("manager@shop.test", "owner@shop.test")
PHONE = "+447700900001"
DATA_TEAM = "data@storepulse.test"


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def twilio():
    with TwilioServer() as server:
        yield server


@pytest.fixture
def shop(engine):
    register(engine, "shop", timezone="Europe/London")
    rules = AlertRules("shop", email_recipients=MANAGERS, sms_recipients=(PHONE,),
                       email_min_severity="medium", sms_min_severity="critical",
                       dashboard_url="http://metabase.test/collection/shop")
    save_rules(engine, rules)
    return rules


@pytest.fixture
def resources(database_url, smtp, twilio):
    return {
        "warehouse": WarehouseResource(
            database_url=database_url.render_as_string(hide_password=False)),
        "alert_channels": AlertChannelsResource(
            smtp_host="127.0.0.1", smtp_port=smtp.port, alert_from="alerts@storepulse.test",
            twilio_account_sid=twilio.state.account_sid,
            twilio_auth_token=twilio.state.auth_token, twilio_from="+15005550006",
            twilio_api_base=twilio.base_url, data_team_email=DATA_TEAM,
            dagster_url="http://dagster.test"),
    }


def add_anomaly(engine, anomaly_id: str, severity: str = "critical", store: str = "S1",
                day: str = "2026-10-13", actual: float = 460.0, expected: float = 1000.0,
                explanation: str = "Revenue 54% below a typical Tuesday") -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("""
            insert into ml.anomalies (tenant_id, anomaly_id, store_id, day, kpi, detector,
                actual, expected, severity, explanation, run_id)
            values ('shop', :id, :store, :day, 'net_revenue', 'seasonal_baseline', :actual,
                    :expected, :sev, :why, 'r1')"""),
            {"id": anomaly_id, "store": store, "day": day, "actual": actual,
             "expected": expected, "sev": severity, "why": explanation})


class Ticks:
    """Evaluates a cursor-based sensor tick after tick, like the daemon does."""

    def __init__(self, sensor_def, resources) -> None:
        self.sensor_def, self.resources, self.cursor = sensor_def, resources, None

    def __call__(self):
        context = build_sensor_context(cursor=self.cursor, resources=self.resources)
        result = self.sensor_def(context)
        self.cursor = context.cursor
        return result


def deliveries(engine, **where) -> list:
    clause = " and ".join(f"{k} = :{k}" for k in where) or "true"
    return rows(engine, f"select channel, recipient, status, attempts, last_error, "
                        f"next_attempt_at, message_id from ops.alert_deliveries where {clause} "
                        f"order by channel, recipient", **where)


def test_critical_anomaly_one_email_per_recipient_one_sms_and_never_again(
        engine, shop, resources, smtp, twilio):
    add_anomaly(engine, "a1")
    tick = Ticks(anomaly_alert_sensor, resources)
    # the tick history says what the tick did, not Dagster's "returned an empty result"
    assert tick().skip_message == ("1 new anomalies, 3 deliveries queued; 3 messages sent "
                                   "(3 alert rows), 0 retrying, 0 failed, 0 deferred, "
                                   "0 not configured")
    assert sorted(m["To"] for m in smtp.messages) == sorted(MANAGERS)
    email = smtp.messages[0]
    assert "shop" in email["Subject"] and "critical" in email["Subject"]
    assert email.is_multipart()
    text = email.get_body(("plain",)).get_content()
    html = email.get_body(("html",)).get_content()
    assert "Revenue 54% below a typical Tuesday" in text
    assert "460.00" in text and "1,000.00" in text
    assert "http://metabase.test/collection/shop" in text and "<table" in html
    assert [m["To"] for m in twilio.state.messages] == [PHONE]
    assert twilio.state.messages[0]["Body"].startswith("StorePulse shop CRITICAL")
    assert {d.status for d in deliveries(engine)} == {"sent"} and len(deliveries(engine)) == 3

    tick()
    idle = tick()
    assert idle.skip_message.startswith("0 new anomalies, 0 deliveries queued; 0 messages sent")
    assert len(smtp.messages) == 2 and len(twilio.state.messages) == 1
    assert len(deliveries(engine)) == 3


def test_anomalies_committed_out_of_order_are_still_alerted(engine, shop, resources, smtp,
                                                            twilio):
    """Two runs write anomalies at once (Celery workers, concurrent runs). The first takes
    the lower alert_seq but is still writing when the second would commit: a tick in between
    must not move the cursor past the first's rows."""
    tick = Ticks(anomaly_alert_sensor, resources)
    tick()
    second = pd.DataFrame([{
        "anomaly_id": "late", "store_id": "S2", "day": date(2026, 10, 13), "kpi": "revenue",
        "detector": "seasonal_baseline", "actual": 3000.0, "expected": 1000.0,
        "lower_bound": None, "upper_bound": None, "score": 9.0, "severity": "critical",
        "explanation": "Revenue 3.0x a typical Tuesday"}])
    # The connection closes before the pool waits for its thread: a failed assertion ends the
    # first writer's transaction instead of hanging on its lock.
    with ThreadPoolExecutor(1) as pool, engine.connect() as first:
        writing = first.begin()
        lock_anomaly_writes(first)  # the first run's write_anomalies, mid-transaction
        first.execute(sa.text("""
            insert into ml.anomalies (tenant_id, anomaly_id, store_id, day, kpi, detector,
                actual, expected, severity, explanation, run_id)
            values ('shop', 'early', 'S1', '2026-10-13', 'revenue', 'seasonal_baseline', 460,
                    1000, 'critical', 'Revenue 54% below a typical Tuesday', 'r1')"""))
        later = pool.submit(write_anomalies, engine, "shop", second, "r2")
        sleep(1.5)
        assert not later.done()  # it waits for the first writer
        tick()
        writing.commit()
        assert later.result(timeout=30) == 1
    tick()
    alerted = {row.anomaly_id for row in rows(
        engine, "select distinct anomaly_id from ops.alert_deliveries")}
    assert alerted == {"early", "late"}


def found(anomaly_id: str, day: date, severity: str = "critical") -> dict:
    """An anomaly as the scan hands it to write_anomalies."""
    return {"anomaly_id": anomaly_id, "store_id": "S1", "day": day, "kpi": "revenue",
            "detector": "seasonal_baseline", "actual": 0.0, "expected": 1000.0,
            "lower_bound": None, "upper_bound": None, "score": 9.0, "severity": severity,
            "explanation": f"No sales on {day:%A %d %B %Y}, a day the store normally trades"}


def test_history_is_recorded_not_sent_and_only_recent_days_page(engine, shop, resources, smtp,
                                                                 twilio):
    """A first load of a year of exports: the scan finds anomalies all through it. Only
    those in the tenant's last seven judged days reach anyone; the rest are suppressed, each
    with why, and stay in ml.anomalies. Recency is counted from the day the scan reached, not
    from the tenant's latest anomaly."""
    through = date(2026, 11, 30)
    days = {"spring": date(2026, 4, 12), "edge_out": through - timedelta(days=7),
            "edge_in": through - timedelta(days=6), "last_found": through - timedelta(days=2)}
    write_anomalies(engine, "shop", pd.DataFrame([found(k, d) for k, d in days.items()]), "r1",
                    scanned_through=through, full_scan=True)
    tick = Ticks(anomaly_alert_sensor, resources)
    assert tick().skip_message.startswith(
        "4 new anomalies, 6 deliveries queued, 6 not sent (anomalies on days before the "
        "tenant's recent days); 3 messages sent (6 alert rows)")
    text = smtp.messages[0].get_body(("plain",)).get_content()
    assert str(days["edge_in"]) in text and str(days["last_found"]) in text
    assert str(days["spring"]) not in text and str(days["edge_out"]) not in text
    assert [m["To"] for m in twilio.state.messages] == [PHONE]
    assert "(+1 more, see email)" in twilio.state.messages[0]["Body"]
    held_back = rows(engine, "select anomaly_id, status, last_error, sent_at "
                             "from ops.alert_deliveries where status <> 'sent'")
    assert sorted({r.anomaly_id for r in held_back}) == ["edge_out", "spring"]
    assert {r.status for r in held_back} == {"suppressed"} and len(held_back) == 6
    assert all(r.sent_at is None for r in held_back)
    spring = next(r.last_error for r in held_back if r.anomaly_id == "spring")
    assert spring == ("not sent: 2026-04-12 is 232 days before the latest day judged "
                      "(2026-11-30); alerts cover the last 7 days (storepulse alerts set "
                      "--recent-days)")
    assert scalar(engine, "select count(*) from ml.anomalies") == 4

    # The weekly rescan finds one more on an old day, and the daily scan one on a new day.
    write_anomalies(engine, "shop", pd.DataFrame([found("rescan", date(2026, 6, 2))]), "r2",
                    scanned_through=through)
    write_anomalies(engine, "shop", pd.DataFrame([found("new_day", through + timedelta(1))]),
                    "r3", scanned_through=through + timedelta(1))
    tick()
    assert len(smtp.messages) == 4 and len(twilio.state.messages) == 2
    newest = smtp.messages[-1].get_body(("plain",)).get_content()
    assert str(through + timedelta(1)) in newest and "2026-06-02" not in newest
    assert scalar(engine, "select count(*) from ops.alert_deliveries where "
                          "anomaly_id = 'rescan' and status = 'suppressed'") == 3


def test_a_tenant_on_monthly_exports_widens_its_recent_days(engine, shop, resources, smtp):
    save_rules(engine, AlertRules(**{**shop.__dict__, "recent_days": 31}))
    through = date(2026, 11, 30)
    write_anomalies(engine, "shop", pd.DataFrame([found("early_in_month", date(2026, 11, 3)),
                                                  found("last_month", date(2026, 10, 30))]),
                    "r1", scanned_through=through)
    Ticks(anomaly_alert_sensor, resources)()
    text = smtp.messages[0].get_body(("plain",)).get_content()
    assert "2026-11-03" in text and "2026-10-30" not in text
    assert scalar(engine, "select last_error from ops.alert_deliveries where anomaly_id = "
                          "'last_month' limit 1").endswith(
        "alerts cover the last 31 days (storepulse alerts set --recent-days)")


def test_several_anomalies_in_one_tick_are_one_digest(engine, shop, resources, smtp, twilio):
    for n, severity in enumerate(["medium", "high", "critical"]):
        add_anomaly(engine, f"d{n}", severity=severity, store=f"S{n}",
                    explanation=f"Orders odd at store {n}")
    add_anomaly(engine, "quiet-one", severity="low")  # below every threshold
    Ticks(anomaly_alert_sensor, resources)()
    assert len(smtp.messages) == 2  # one per manager, not one per anomaly
    text = smtp.messages[0].get_body(("plain",)).get_content()
    assert all(f"Orders odd at store {n}" in text for n in range(3))
    assert "3 anomalies" in smtp.messages[0]["Subject"]
    assert len(twilio.state.messages) == 1  # only the critical one qualifies for SMS
    assert scalar(engine, "select count(*) from ops.alert_deliveries "
                          "where anomaly_id = 'quiet-one'") == 0
    assert scalar(engine, "select count(distinct message_id) from ops.alert_deliveries "
                          "where recipient = :r", r=MANAGERS[0]) == 1


def test_quiet_hours_hold_sms_while_email_goes(engine, shop, resources, smtp, twilio):
    local_now = datetime.now(ZoneInfo("Europe/London"))
    start = (local_now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (local_now + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    save_rules(engine, AlertRules(**{**shop.__dict__, "quiet_hours_start": start,
                                     "quiet_hours_end": end}))
    add_anomaly(engine, "night")
    Ticks(anomaly_alert_sensor, resources)()
    assert len(smtp.messages) == 2 and twilio.state.messages == []
    (sms,) = deliveries(engine, channel="sms")
    assert sms.status == "pending" and sms.attempts == 0
    waits = sms.next_attempt_at.astimezone(ZoneInfo("Europe/London"))
    assert waits.time() == end and waits > local_now

    sms_channel = resources["alert_channels"].sms_channel()
    deliver_due(engine, datetime.now(UTC), sms=sms_channel)  # still quiet: nothing
    assert twilio.state.messages == []
    deliver_due(engine, sms.next_attempt_at + timedelta(seconds=1), sms=sms_channel)
    assert len(twilio.state.messages) == 1
    assert deliveries(engine, channel="sms")[0].status == "sent"


def test_hourly_cap_defers_instead_of_flooding(engine, shop, resources, smtp):
    save_rules(engine, AlertRules(**{**shop.__dict__, "max_messages_per_hour": 1,
                                     "sms_recipients": ()}))
    tick = Ticks(anomaly_alert_sensor, resources)
    add_anomaly(engine, "first")
    tick()
    add_anomaly(engine, "second", day="2026-10-14")
    tick()
    assert len(smtp.messages) == 2  # the first digest only
    waiting = deliveries(engine, status="pending")
    assert len(waiting) == 2
    first_sent = scalar(engine, "select min(sent_at) from ops.alert_deliveries "
                                "where status = 'sent'")
    assert all(w.next_attempt_at == first_sent + timedelta(hours=1) for w in waiting)
    deliver_due(engine, first_sent + timedelta(hours=1, seconds=1),
                email=resources["alert_channels"].email_channel())
    assert len(smtp.messages) == 4
    assert {d.status for d in deliveries(engine)} == {"sent"}


def test_twilio_errors_are_retried_with_backoff_and_recorded(engine, shop, resources, twilio):
    twilio.state.fail_next = [500, 429]
    add_anomaly(engine, "flaky")
    Ticks(anomaly_alert_sensor, resources)()
    (sms,) = deliveries(engine, channel="sms")
    assert sms.status == "pending" and sms.attempts == 1 and "500" in sms.last_error
    now = datetime.now(UTC)
    assert now < sms.next_attempt_at <= now + timedelta(minutes=1, seconds=5)

    sms_channel = resources["alert_channels"].sms_channel()
    deliver_due(engine, sms.next_attempt_at + timedelta(seconds=1), sms=sms_channel)
    (sms,) = deliveries(engine, channel="sms")
    assert sms.attempts == 2 and "429" in sms.last_error
    deliver_due(engine, sms.next_attempt_at + timedelta(seconds=1), sms=sms_channel)
    (sms,) = deliveries(engine, channel="sms")
    assert sms.status == "sent" and sms.attempts == 3 and sms.last_error is None
    assert sms.message_id == twilio.state.messages[0]["sid"]
    assert len(twilio.state.messages) == 1 and twilio.state.requests == 3


@pytest.mark.parametrize("change, says", [
    ({"sms_recipients": ("07700900001",)}, "is not an E.164 number"),
    ({"sms_recipients": ("+44 7700 900001",)}, "is not an E.164 number"),
    ({"email_recipients": ("manager.shop.test",)}, "is not an email address"),
    ({"max_messages_per_hour": 0}, "at least 1 message per hour"),
    ({"stale_after": timedelta(0)}, "stale-after must be longer than zero"),
    ({"recent_days": 0}, "recent days must be at least 1"),
])
def test_rules_that_could_never_deliver_are_refused_before_saving(engine, shop, change, says):
    with pytest.raises(InvalidAlertRules, match=says):
        save_rules(engine, AlertRules(**{**shop.__dict__, **change}))
    assert scalar(engine, "select sms_recipients from ops.alert_rules") == [PHONE]


def test_a_number_twilio_refuses_is_recorded_with_twilios_reason(engine, shop, resources,
                                                                 twilio):
    # rules saved before numbers were checked: Twilio answers 400, error 21211
    with engine.begin() as conn:
        conn.execute(sa.text("update ops.alert_rules set sms_recipients = '{07700900001}'"))
    add_anomaly(engine, "unreachable")
    Ticks(anomaly_alert_sensor, resources)()
    (sms,) = deliveries(engine, channel="sms")
    # the same number gets the same answer: failed at once, not retried for hours
    assert sms.status == "failed" and sms.attempts == 1
    assert sms.last_error == ("refused, not retried: HTTP 400, Twilio error 21211: Unable to "
                              "create record: The 'To' number 07700900001 is not a valid "
                              "phone number."), sms.last_error
    deliver_due(engine, datetime.now(UTC) + timedelta(days=1),
                sms=resources["alert_channels"].sms_channel())
    assert twilio.state.messages == [] and twilio.state.requests == 1


def test_refusals_fail_at_once_and_the_rest_is_still_sent(engine, shop, resources, smtp,
                                                          twilio):
    smtp.refuse(unknown=(MANAGERS[0],))
    twilio.state.unsubscribed.add(PHONE)  # the on-call phone texted STOP
    add_anomaly(engine, "refused")
    Ticks(anomaly_alert_sensor, resources)()
    gone, owner, sms = deliveries(engine)
    assert (gone.recipient, gone.status, gone.attempts) == (MANAGERS[0], "failed", 1)
    assert gone.last_error.startswith(f"refused, not retried: {MANAGERS[0]}: 550 5.1.1"), \
        gone.last_error
    assert "User unknown" in gone.last_error
    assert (sms.status, sms.attempts) == ("failed", 1)
    assert "Twilio error 21610: Unable to create record: Attempt to send to unsubscribed " \
           "recipient" in sms.last_error, sms.last_error
    assert (owner.recipient, owner.status) == (MANAGERS[1], "sent")
    assert [m["To"] for m in smtp.messages] == [MANAGERS[1]]


def test_a_long_explanation_still_reaches_the_phone_shortened(engine, shop, resources,
                                                               twilio):
    # Twilio refuses a Body over 1,600 characters for good (21617): the SMS is cut to fit
    add_anomaly(engine, "wordy", explanation="Revenue far below a typical Tuesday. " * 60)
    Ticks(anomaly_alert_sensor, resources)()
    (sms,) = deliveries(engine, channel="sms")
    assert sms.status == "sent", sms.last_error
    (sent,) = twilio.state.messages
    assert len(sent["Body"]) <= 320 and sent["Body"].endswith("…")


def test_a_busy_mailbox_and_wrong_twilio_credentials_are_retried(engine, shop, resources,
                                                                 smtp, twilio):
    smtp.refuse(busy=(MANAGERS[0],))
    twilio.state.auth_token = "rotated"  # the deployment still has the old token
    add_anomaly(engine, "later")
    Ticks(anomaly_alert_sensor, resources)()
    busy, _, sms = deliveries(engine)
    assert (busy.status, busy.attempts) == ("pending", 1)
    assert busy.last_error == (f"DeliveryFailed: {MANAGERS[0]}: 450 4.2.1 <{MANAGERS[0]}>: "
                               "Recipient address rejected: mailbox busy"), busy.last_error
    assert (sms.status, sms.attempts) == ("pending", 1)
    assert sms.last_error.startswith("DeliveryFailed: HTTP 401, Twilio error 20003"), \
        sms.last_error

    smtp.inbox.busy.clear()
    twilio.state.auth_token = "secret"  # fixed: the retry goes out
    channels = resources["alert_channels"]
    deliver_due(engine, busy.next_attempt_at + timedelta(seconds=1),
                email=channels.email_channel(), sms=channels.sms_channel())
    assert {d.status for d in deliveries(engine)} == {"sent"}
    assert sorted(m["To"] for m in smtp.messages) == sorted(MANAGERS)
    assert len(twilio.state.messages) == 1


def test_unconfigured_channels_are_recorded_not_lost(engine, shop, database_url):
    add_anomaly(engine, "nowhere")
    resources = {"warehouse": WarehouseResource(
        database_url=database_url.render_as_string(hide_password=False)),
        "alert_channels": AlertChannelsResource()}
    Ticks(anomaly_alert_sensor, resources)()
    recorded = deliveries(engine)
    assert len(recorded) == 3 and {d.status for d in recorded} == {"not_configured"}
    # what to set is said where an operator reads it (the outbox, storepulse status)
    assert {d.channel: d.last_error for d in recorded} == {
        "email": "email channel not configured (SMTP_HOST is not set)",
        "sms": "sms channel not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and "
               "TWILIO_FROM must all be set)"}


def test_run_failure_emails_the_data_team_with_link_and_error(engine, resources, smtp):
    @asset
    def broken_asset():
        raise ValueError("the POS export is truncated")

    with DagsterInstance.ephemeral() as instance:
        result = materialize([broken_asset], instance=instance, raise_on_error=False)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        failure = next(e for e in instance.all_logs(result.run_id,
                                                    of_type=DagsterEventType.RUN_FAILURE))
        context = build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor", dagster_instance=instance,
            dagster_run=run, dagster_event=failure.dagster_event,
            resources=resources).for_run_failure()
        run_failure_alert_sensor(context)
    (email,) = smtp.messages
    assert email["To"] == DATA_TEAM and "failed" in email["Subject"]
    text = email.get_body(("plain",)).get_content()
    assert f"http://dagster.test/runs/{result.run_id}" in text
    assert "broken_asset" in text
    assert deliveries(engine)[0].status == "sent"


def test_failed_error_check_in_a_successful_run_is_alerted(engine, resources, smtp):
    @asset
    def sales_snapshot():
        return 1

    @asset_check(asset=sales_snapshot)
    def snapshot_not_empty():
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.ERROR)

    with DagsterInstance.ephemeral() as instance:
        result = materialize([sales_snapshot, snapshot_not_empty], instance=instance)
        assert result.success  # a non-blocking failed check leaves the run green
        success = next(e for e in instance.all_logs(result.run_id,
                                                    of_type=DagsterEventType.RUN_SUCCESS))
        context = build_run_status_sensor_context(
            sensor_name="failed_check_alert_sensor", dagster_instance=instance,
            dagster_run=instance.get_run_by_id(result.run_id),
            dagster_event=success.dagster_event, resources=resources)
        failed_check_alert_sensor(context)
    (email,) = smtp.messages
    assert "sales_snapshot snapshot_not_empty" in email.get_body(("plain",)).get_content()


def test_stale_tenant_is_alerted_once_per_silence(engine, shop, resources, smtp):
    save_rules(engine, AlertRules(**{**shop.__dict__, "stale_after": timedelta(days=2)}))
    with engine.begin() as conn:
        conn.execute(sa.text(
            "insert into raw.ingest_files (tenant_id, source, file_name, path, sha256, bytes, "
            "status, rows_read, rows_loaded, loaded_at) values ('shop', 'pos', 'old.csv', "
            "'old.csv', 'x', 1, 'loaded', 5, 5, now() - interval '5 days')"))
    tick = Ticks(stale_data_sensor, resources)
    recipients = len(MANAGERS) + 1
    assert tick().skip_message.startswith(
        f"{recipients} stale-data deliveries queued; {recipients} messages sent")
    assert tick().skip_message.startswith("0 stale-data deliveries queued; 0 messages sent")
    assert sorted(m["To"] for m in smtp.messages) == sorted([*MANAGERS, DATA_TEAM])
    assert "no new sales data" in smtp.messages[0]["Subject"]
    assert "the limit is 2 days" in smtp.messages[0].get_body(("plain",)).get_content()


def test_quiet_hours_over_midnight():
    rules = AlertRules("shop", timezone="UTC", quiet_hours_start=time(22),
                       quiet_hours_end=time(7))
    late = datetime(2026, 11, 21, 23, 30, tzinfo=UTC)
    assert rules.quiet_until(late) == datetime(2026, 11, 22, 7, tzinfo=UTC)
    early = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
    assert rules.quiet_until(early) == datetime(2026, 11, 22, 7, tzinfo=UTC)
    assert rules.quiet_until(datetime(2026, 11, 22, 12, tzinfo=UTC)) is None
