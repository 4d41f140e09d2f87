import hashlib
import json
from datetime import timedelta

import pandas as pd
import pytest

from ingestion.generator import (
    DEMO_TENANTS,
    generate_sample,
    load_ground_truth,
    load_promotions,
    store_ids,
)


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    return generate_sample(root, seed=11, scale=0.2)


def _lines(sample, tenant):
    profile = next(p for p in DEMO_TENANTS if p.tenant_id == tenant)
    folder = sample.root / tenant / profile.source
    if profile.source == "json_orders":
        rows = []
        for path in sorted(folder.glob("*.jsonl")):
            for line in path.read_text().splitlines():
                order = json.loads(line)
                for item in order["lines"]:
                    rows.append({"store_id": order["location_id"], "order_id": order["id"],
                                 "ordered_at": order["created_at"], "quantity": item["qty"],
                                 "unit_price": item["price"], "sku": item["sku"],
                                 "customer_id": (order["customer"] or {}).get("id"),
                                 "transaction_type": order["kind"]})
        frame = pd.DataFrame(rows)
    else:
        frame = pd.concat(pd.read_csv(p, dtype=str) for p in sorted(folder.glob("*.csv")))
    frame["day"] = pd.to_datetime(frame["ordered_at"], errors="coerce").dt.normalize()
    frame["amount"] = pd.to_numeric(frame["quantity"], errors="coerce") * pd.to_numeric(
        frame["unit_price"], errors="coerce")
    return frame


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, sample):
    again = generate_sample(tmp_path / "a", seed=11, scale=0.2)
    assert _digest(again.root) == _digest(sample.root)
    other = generate_sample(tmp_path / "b", seed=12, scale=0.2)
    assert _digest(other.root) != _digest(sample.root)


def test_tenants_stores_history_and_formats(sample):
    assert len(sample.tenants) >= 3
    assert sorted(p.stores for p in sample.tenants) == [1, 3, 5]
    for profile in sample.tenants:
        frame = _lines(sample, profile.tenant_id)
        assert set(frame.store_id) == set(store_ids(profile))
        days = frame.day.dropna()
        assert (days.max() - days.min()).days >= 700
        # Repeat buyers and guests both exist.
        per_customer = frame[frame.customer_id.notna() & (frame.customer_id != "")] \
            .groupby("customer_id").order_id.nunique()
        assert (per_customer > 1).sum() > 50
        assert (frame.customer_id.isna() | (frame.customer_id == "")).mean() > 0.1
        # Returns have negative quantities.
        returns = frame[frame.transaction_type == "return"]
        assert len(returns) > 0 and (pd.to_numeric(returns.quantity) < 0).all()


def test_weekly_seasonality_and_closed_days(sample):
    frame = _lines(sample, "northwind")
    by_weekday = frame.groupby(frame.day.dt.day_of_week).amount.sum()
    assert 6 not in by_weekday.index  # Northwind is closed on Sundays
    assert by_weekday[5] > by_weekday[0] * 1.2  # Saturdays beat Mondays
    assert not ((frame.day.dt.month == 12) & (frame.day.dt.day == 25)).any()


def test_co_purchase_structure(sample):
    frame = _lines(sample, "acme_grocers")
    frame = frame[frame.transaction_type == "sale"]
    baskets = frame.groupby(["store_id", "order_id"]).sku.apply(set)
    n = len(baskets)
    counts = frame.groupby("sku").order_id.nunique()
    best_lift = 0.0
    for a in counts.nlargest(40).index:
        with_a = baskets[baskets.apply(lambda b, a=a: a in b)]
        for b in counts.nlargest(40).index:
            if a == b:
                continue
            both = with_a.apply(lambda s, b=b: b in s).sum()
            if both >= 20:
                best_lift = max(best_lift, (both / len(with_a)) / (counts[b] / n))
    assert best_lift > 3, "anchor pairs should be bought together far more than by chance"


def test_planted_anomalies_are_in_the_data(tmp_path):
    # Full scale: at tiny volumes Poisson noise would blur a one-day spike.
    sample = generate_sample(tmp_path, seed=11, scale=1.0)
    truth = load_ground_truth(sample.root)
    assert len(truth) == 3 * len(sample.tenants)
    assert set(truth.kind) == {"outage", "spike", "decline"}
    for row in truth.itertuples():
        frame = _lines(sample, row.tenant_id)
        store = frame[(frame.store_id == row.store_id) & (frame.transaction_type == "sale")]
        daily = store.groupby("day").amount.sum()
        window = daily[(daily.index >= row.start) & (daily.index <= row.end)]
        same_weekdays = daily[(daily.index < row.start) &
                              (daily.index >= row.start - timedelta(days=56)) &
                              (daily.index.day_of_week == row.start.day_of_week)]
        typical = same_weekdays.median()
        if row.kind == "outage":
            assert window.sum() == 0
        elif row.kind == "spike":
            assert window.iloc[0] > 2 * typical, (row, window, typical)
        else:
            held = window[window.index >= row.start + timedelta(days=10)]
            assert held.mean() < 0.5 * daily[daily.index < row.start].tail(28).mean()


def test_promotion_weeks_are_written_and_sell_more(sample):
    promotions = load_promotions(sample.root)
    assert promotions.groupby("tenant_id").size().to_dict() == {
        p.tenant_id: 6 for p in DEMO_TENANTS}
    assert ((promotions["end"] - promotions["start"]).dt.days == 6).all()
    lines = _lines(sample, "northwind")
    ordered_on = pd.to_datetime(lines["ordered_at"], errors="coerce").dt.date  # broken rows: NaT
    orders = lines.groupby(ordered_on)["order_id"].nunique()
    days = pd.to_datetime(pd.Series(orders.index))
    weeks = promotions[promotions["tenant_id"] == "northwind"]
    inside = days.apply(lambda d: ((weeks["start"] <= d) & (d <= weeks["end"])).any())
    assert orders[inside.to_numpy()].mean() > 1.2 * orders[~inside.to_numpy()].mean()
