"""The freshness bench times the alert it planted: a spike that really is three times the
store's usual day, and only the email about that store and day ends the clock."""

from datetime import timedelta
from email.message import EmailMessage

import pandas as pd

from alerting.messages import compose_email
from bench.end_to_end import tenant_profiles
from bench.freshness import (
    HISTORY_END,
    NEW_DAY,
    generate_next_day,
    land_next_day,
    planted_alert,
    typical_orders,
)
from ingestion.generator import generate_sample, store_ids

# The 200-store layout's first two tenants, 25 stores each. The first tenant's first store
# sells half its usual Monday in the next-day file as generated (the day is generated apart
# from the history), so tripling it was no spike at all.
PROFILES = tenant_profiles(200)[:2]
FIRST = PROFILES[0]


def new_day_orders(folder, tenant_id: str, pattern: str) -> pd.Series:
    lines = pd.concat(pd.read_csv(path, dtype=str)
                      for path in (folder / tenant_id).rglob(pattern))
    return lines.groupby("store_id")["order_id"].nunique()


def test_the_planted_day_has_three_times_the_stores_usual_orders(tmp_path):
    landing = tmp_path / "landing"
    generate_sample(landing, seed=11, scale=0.35, tenants=PROFILES, end_date=HISTORY_END)
    store = store_ids(FIRST)[0]
    usual = typical_orders(landing, FIRST.tenant_id, store, NEW_DAY.weekday())

    land_next_day(landing, PROFILES, scale=0.35)

    # the day as generated, to compare with
    generated = tmp_path / "generated"
    generate_next_day(generated, PROFILES, scale=0.35)
    for profile in PROFILES:
        landed = new_day_orders(landing, profile.tenant_id, "next_sales_*.csv")
        as_generated = new_day_orders(generated, profile.tenant_id, "sales_*.csv")
        if profile is FIRST:
            assert 3 * as_generated[store] < 3 * usual  # what a fixed tripling gave
            assert landed[store] >= 3 * usual
            landed, as_generated = landed.drop(store), as_generated.drop(store)
        pd.testing.assert_series_equal(landed, as_generated)


def email(tenant_id: str, store_id: str, day) -> EmailMessage:
    item = {"severity": "critical", "payload": {
        "store_id": store_id, "day": str(day), "kpi": "revenue", "detector": "seasonal_baseline",
        "actual": 3000.0, "expected": 1000.0, "explanation": "Revenue 3.0x a typical Monday."}}
    return compose_email(tenant_id, "anomaly", [item], "alerts@bench.local",
                         f"manager@{tenant_id}.example", None)


def test_only_the_alert_for_the_planted_store_and_day_counts():
    store = store_ids(FIRST)[0]
    assert planted_alert(email(FIRST.tenant_id, store, NEW_DAY), FIRST)
    # Another tenant's store of the same id, another store, another day: not the planted one.
    other_tenant = next(p for p in tenant_profiles(200)[1:] if store_ids(p)[0] == store)
    assert not planted_alert(email(other_tenant.tenant_id, store, NEW_DAY), FIRST)
    assert not planted_alert(email(FIRST.tenant_id, store_ids(FIRST)[1], NEW_DAY), FIRST)
    assert not planted_alert(email(FIRST.tenant_id, store, NEW_DAY - timedelta(days=7)),
                             FIRST)
