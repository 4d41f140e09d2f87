"""Anomaly severity rules, explanations, and planted anomalies that must be found."""

import numpy as np
import pandas as pd
import pytest

from bench.anomaly_scoring import score_against_truth
from ml.anomalies import detect_tenant
from ml.severity import explain, severity


@pytest.mark.parametrize(("actual", "expected", "outage", "level"), [
    (0, 100, True, "critical"),
    (310, 100, False, "critical"),
    (20, 100, False, "critical"),
    (165, 100, False, "high"),
    (35, 100, False, "high"),
    (150, 100, False, "medium"),
    (48, 100, False, "medium"),
    (145, 100, False, "low"),
])
def test_severity_rule(actual, expected, outage, level):
    assert severity(actual, expected, outage) == level


def test_explanations_read_like_a_manager_would_say_it():
    tuesday = pd.Timestamp("2026-03-10")
    assert explain("revenue", 460, 1000, tuesday, "GBP") == \
        "Revenue 54% below a typical Tuesday (£460 vs about £1,000)."
    assert explain("orders", 93, 30, tuesday, "USD") == \
        "Orders 3.1x a typical Tuesday (93 vs about 30)."
    assert explain("revenue", 0, 2340, tuesday, "EUR", outage=True) == \
        "No sales on a Tuesday the store normally trades (a typical Tuesday brings €2,340)."


def store_days(days: int = 300, seed: int = 1, orders_per_day: float = 60.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    day = pd.date_range("2025-01-06", periods=days, freq="D")
    weekly = np.array([0.9, 0.95, 1.0, 1.05, 1.25, 1.4, 0.0])[day.day_of_week]  # Sundays closed
    orders = rng.poisson(orders_per_day * weekly)
    revenue = orders * rng.lognormal(np.log(40), 0.05, days)
    return pd.DataFrame({
        "store_id": "S1", "day": day.date, "net_revenue": revenue, "orders": orders,
        "avg_order_value": np.where(orders > 0, revenue / np.maximum(orders, 1), np.nan),
        "returns_amount": rng.poisson(1, days) * 20.0, "is_closed_day": orders == 0})


def test_planted_outage_spike_and_decline_are_found_with_stable_ids():
    frame = store_days()
    outage, spike = pd.Timestamp("2025-07-16"), pd.Timestamp("2025-08-21")  # Wed, Thu
    decline = pd.date_range("2025-09-22", "2025-10-12")
    days = pd.to_datetime(frame["day"])
    frame.loc[days == outage, ["net_revenue", "orders", "returns_amount"]] = 0
    frame.loc[days == outage, "is_closed_day"] = True
    frame.loc[days == spike, ["net_revenue", "orders"]] *= 3
    in_decline = days.isin(decline) & ~frame["is_closed_day"]
    frame.loc[in_decline, ["net_revenue", "orders"]] = (
        frame.loc[in_decline, ["net_revenue", "orders"]] * 0.3).round()
    found = detect_tenant(frame, "t1", "GBP")
    by_day = found.assign(day=pd.to_datetime(found["day"]))
    outage_rows = by_day[by_day["day"] == outage]
    assert outage_rows["severity"].tolist() == ["critical"]
    assert outage_rows["explanation"].str.startswith("No sales on a Wednesday").all()
    spike_rows = by_day[(by_day["day"] == spike) & (by_day["kpi"] == "revenue")]
    assert spike_rows["severity"].iloc[0] in ("high", "critical")
    assert by_day[by_day["day"].isin(decline)]["detector"].eq("level_shift").any()
    truth = pd.DataFrame({
        "tenant_id": "t1", "store_id": "S1", "kind": ["outage", "spike", "decline"],
        "start": [outage, spike, decline[0]], "end": [outage, spike, decline[-1]]})
    scores = score_against_truth(found.assign(tenant_id="t1"), truth)
    assert scores["recall"] == 1.0
    assert scores["precision"] >= 0.8
    # Rerunning gives the same ids: the ml.anomalies upsert cannot duplicate.
    again = detect_tenant(frame, "t1", "GBP")
    assert sorted(again["anomaly_id"]) == sorted(found["anomaly_id"])
    assert found["anomaly_id"].is_unique


def test_closed_days_are_not_outages_and_quiet_data_is_quiet():
    frame = store_days(seed=5)
    quiet = detect_tenant(frame, "t1", "GBP")
    assert len(quiet) <= 3  # 300 ordinary days: at most a handful of flags
    # The same days with one Wednesday shut: that closure, and no Sunday, is an outage.
    wednesday = pd.Timestamp("2025-08-13")
    shut = pd.to_datetime(frame["day"]) == wednesday
    frame.loc[shut, ["net_revenue", "orders", "returns_amount"]] = 0
    frame.loc[shut, "is_closed_day"] = True
    found = detect_tenant(frame, "t1", "GBP")
    outages = found[found["explanation"].str.startswith("No sales")]
    assert pd.to_datetime(outages["day"]).tolist() == [wednesday]
    assert not (pd.to_datetime(found["day"]).dt.day_of_week == 6).any()


def test_scan_plan_full_first_weekly_and_on_request_else_recent():
    from datetime import UTC, date, datetime, timedelta

    from ml.scan_plan import plan_scan

    now = datetime(2026, 11, 21, 6, tzinfo=UTC)
    assert plan_scan(None, None, now).full
    assert plan_scan(date(2026, 11, 20), now - timedelta(days=8), now).full
    assert plan_scan(date(2026, 11, 20), now - timedelta(days=1), now, force_full=True).full
    recent = plan_scan(date(2026, 11, 20), now - timedelta(days=1), now)
    assert not recent.full
    assert recent.report_from == date(2026, 10, 21)
    assert recent.kpis_from == date(2026, 10, 21) - timedelta(days=180)


def test_isolation_forest_flags_an_odd_mix_as_sklearn_would():
    from sklearn.ensemble import IsolationForest

    from ml.anomalies import KPIS, detect_combinations

    rng = np.random.default_rng(5)
    features = pd.DataFrame({kpi: rng.normal(0, 0.05, 2000) for kpi in KPIS})
    features["store_id"] = "S1"
    features["day"] = pd.date_range("2020-01-01", periods=2000, freq="D").date
    # revenue up a third with orders down a third: each move alone is ordinary for a busy day
    features.loc[700, ["revenue", "orders", "avg_order_value"]] = [0.29, -0.41, 0.70]
    found = detect_combinations(features, already=set(), tenant_id="t1")
    flagged = {row["day"] for row in found}
    assert features.loc[700, "day"] in flagged
    assert {row["detector"] for row in found} == {"isolation_forest"}
    # the same days sklearn's own fit_predict labels outliers (minus the ones moving revenue
    # and orders under 25%, which are not worth a manager's attention)
    labels = IsolationForest(n_estimators=200, contamination=0.001, random_state=0).fit_predict(
        features[list(KPIS)].to_numpy())
    big_move = features[["revenue", "orders"]].abs().max(axis=1) >= np.log(1.25)
    assert flagged == set(features.loc[(labels == -1) & big_move, "day"])
    # a day already flagged by a KPI rule is not reported twice
    again = detect_combinations(features, already={("S1", features.loc[700, "day"])},
                                tenant_id="t1")
    assert features.loc[700, "day"] not in {row["day"] for row in again}


def test_public_holidays_are_never_outages_but_other_closures_are():
    frame = store_days(days=400, seed=3)  # 2025-01-06 .. 2026-02-09, Sundays closed
    days = pd.to_datetime(frame["day"])
    closures = pd.to_datetime(["2025-04-18", "2025-04-21", "2025-08-25",  # Good Friday,
                               "2025-06-11"])  # Easter Monday, August bank holiday; a Wednesday
    shut = days.isin(closures)
    frame.loc[shut, ["net_revenue", "orders", "returns_amount"]] = 0
    frame.loc[shut, "is_closed_day"] = True
    without_calendar = detect_tenant(frame, "t1", "GBP")
    flagged = set(pd.to_datetime(without_calendar["day"]))
    assert set(closures) <= flagged  # no calendar: every closure reads as an outage
    found = detect_tenant(frame, "t1", "GBP", country_code="GB")
    by_day = found.assign(day=pd.to_datetime(found["day"]))
    assert by_day[by_day["day"].isin(closures[:3])].empty
    assert by_day.loc[by_day["day"] == closures[3], "severity"].tolist() == ["critical"]


def test_holidays_the_store_closed_on_before_are_no_outages_the_first_time_is():
    frame = store_days(days=760, seed=5)  # 2025-01-06 .. 2027-02-04, Sundays closed
    days = pd.to_datetime(frame["day"])
    # Corpus Christi: a holiday in six German states only, on a different date each year.
    corpus_christi = pd.to_datetime(["2025-06-19", "2026-06-04"])
    wednesday = pd.Timestamp("2026-09-16")
    shut = days.isin(corpus_christi.union([wednesday]))
    frame.loc[shut, ["net_revenue", "orders", "returns_amount"]] = 0
    frame.loc[shut, "is_closed_day"] = True

    def outages(country_code: str | None) -> set[pd.Timestamp]:
        found = detect_tenant(frame, "t1", "EUR", country_code=country_code)
        return set(pd.to_datetime(found.loc[found["explanation"].str.startswith("No sales"),
                                            "day"]))

    # The first closure on the holiday is news; the repeat a year later is the store's custom.
    assert outages("DE") == {corpus_christi[0], wednesday}
    assert outages(None) == set(corpus_christi) | {wednesday}  # no calendar, no custom


def test_a_sustained_drop_is_flagged_daily_naming_its_length_and_a_rise_is_low():
    frame = store_days(days=300, seed=4)
    days = pd.to_datetime(frame["day"])
    drop_end = pd.Timestamp("2025-06-08")
    drop = days.between("2025-06-02", drop_end) & ~frame["is_closed_day"]  # Mon..Sat
    frame.loc[drop, ["net_revenue", "orders"]] = (frame.loc[drop, ["net_revenue", "orders"]]
                                                  * 0.4).round()
    rise = days.between("2025-09-01", "2025-09-06")
    frame.loc[rise, ["net_revenue", "orders"]] = (frame.loc[rise, ["net_revenue", "orders"]]
                                                  * 1.7).round()
    found = detect_tenant(frame, "t1", "GBP")
    shifts = found[found["detector"] == "level_shift"].assign(day=lambda f: pd.to_datetime(
        f["day"])).sort_values("day")
    # Every day of each run from its third trading day on, saying how long it has lasted.
    down = shifts[shifts["day"] <= drop_end]
    assert down["day"].tolist() == list(pd.to_datetime(
        ["2025-06-04", "2025-06-05", "2025-06-06", "2025-06-07"]))
    assert [e.split(" normal ")[1] for e in down["explanation"]] == [
        f"for {n} trading days from Mon 2 Jun (orders too)." for n in (3, 4, 5, 6)]
    assert down["explanation"].str.contains("below normal").all()
    assert down["severity"].isin(["medium", "high"]).all()
    up = shifts[shifts["day"] > drop_end]
    assert up["day"].tolist() == list(pd.to_datetime(["2025-09-03", "2025-09-04",
                                                      "2025-09-05", "2025-09-06"]))
    assert up["explanation"].str.contains("above normal").all()
    assert up["severity"].eq("low").all()


def test_a_small_stores_quiet_days_are_no_level_shift():
    frame = store_days(days=300, seed=6, orders_per_day=4.0)
    days = pd.to_datetime(frame["day"])
    quiet = days.between("2025-06-02", "2025-06-04")
    frame.loc[quiet, ["net_revenue", "orders"]] = (frame.loc[quiet, ["net_revenue", "orders"]]
                                                   * 0.5).round()
    found = detect_tenant(frame, "t1", "GBP")
    assert not found["detector"].eq("level_shift").any()
    busy = store_days(days=300, seed=6, orders_per_day=60.0)
    busy.loc[quiet, ["net_revenue", "orders"]] = (busy.loc[quiet, ["net_revenue", "orders"]]
                                                  * 0.5).round()
    assert detect_tenant(busy, "t1", "GBP")["detector"].eq("level_shift").any()


@pytest.mark.parametrize(("returns", "usual_revenue", "level"), [
    (2500, 2400, "critical"), (1300, 2400, "high"), (900, 2400, "medium"), (650, 2400, "low")])
def test_returns_severity_follows_the_money_taken_back(returns, usual_revenue, level):
    from ml.severity import returns_severity

    assert returns_severity(returns, usual_revenue) == level


def test_flags_in_explained_windows_count_neither_way():
    flags = pd.DataFrame({"tenant_id": "t1", "store_id": ["S1", "S1", "S2"],
                          "day": pd.to_datetime(["2025-03-03", "2025-05-06", "2025-05-07"])})
    truth = pd.DataFrame({"tenant_id": ["t1"], "store_id": ["S1"],
                          "start": pd.to_datetime(["2025-03-01"]),
                          "end": pd.to_datetime(["2025-03-05"])})
    promotions = pd.DataFrame({"tenant_id": ["t1"], "start": pd.to_datetime(["2025-05-05"]),
                               "end": pd.to_datetime(["2025-05-11"])})
    assert score_against_truth(flags, truth)["precision"] == pytest.approx(1 / 3)
    explained = score_against_truth(flags, truth, promotions)
    assert explained["precision"] == 1.0 and explained["recall"] == 1.0
    assert explained["flagged_days"] == 1


def test_an_empty_day_is_an_outage_only_where_it_is_unlikely_by_chance():
    # A store selling about twice a day has empty days by chance; one selling sixty has not.
    quiet = store_days(days=300, seed=8, orders_per_day=2.0)
    empty_days = quiet[(quiet["orders"] == 0) & (pd.to_datetime(quiet["day"]).dt.day_of_week
                                                  != 6)]
    assert len(empty_days) > 10
    assert not detect_tenant(quiet, "t1", "GBP")["explanation"].str.startswith(
        "No sales").any()
    busy = store_days(days=300, seed=8, orders_per_day=60.0)
    shut = pd.to_datetime(busy["day"]) == pd.Timestamp("2025-08-13")
    busy.loc[shut, ["net_revenue", "orders", "returns_amount"]] = 0
    busy.loc[shut, "is_closed_day"] = True
    outages = detect_tenant(busy, "t1", "GBP")
    assert outages[outages["explanation"].str.startswith("No sales")]["severity"].tolist() == [
        "critical"]


def test_a_refund_is_weighed_against_what_the_day_sold_when_baselines_lag_a_recovery():
    # Six weeks a third below usual (too shallow for a level shift) stay in the weekday
    # baselines; the store then recovers, and the baselines lag behind it.
    frame = store_days(days=300, seed=3)
    days = pd.to_datetime(frame["day"])
    slump = days.between("2025-06-02", "2025-07-13") & ~frame["is_closed_day"]
    frame.loc[slump, ["net_revenue", "orders"]] = (frame.loc[slump, ["net_revenue", "orders"]]
                                                   * 0.65).round()
    small, large = pd.Timestamp("2025-07-22"), pd.Timestamp("2025-07-23")
    sold = frame.set_index(days)["net_revenue"]
    frame.loc[days == small, "returns_amount"] = 0.2 * sold[small]
    frame.loc[days == large, "returns_amount"] = 0.4 * sold[large]
    found = detect_tenant(frame, "t1", "GBP")
    refunds = set(pd.to_datetime(found.loc[found["kpi"] == "returns", "day"]))
    # A fifth of the day's sales is under the quarter a refund must reach, though it is over
    # a quarter of the lagging baseline; two fifths is over both.
    assert large in refunds
    assert small not in refunds
