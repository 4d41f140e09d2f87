"""Exports taken during trading hours: how many raise anomalies about a day not yet over, with
and without ``ml.day_in_progress`` holding such a day back, and what holding back costs on
days exported whole.

Data: UCI Online Retail and the demo's three generated tenants (seed 42), each loaded and
built through the platform (ingestion, dbt). For each of a tenant's last 28 trading days
before its final one, the day is cut as an export taken at 10:00, 13:00 and 16:00 local time
would cut it, rebuilt from ``marts.fct_orders`` the way ``mart_daily_store_kpis`` builds a
day, and judged with the days before it, as the anomaly scan judges a tenant's last day:

* **without the rule** every anomaly found on the cut day reaches the alert sensor;
* **with it** the cut day is held back when ``day_in_progress`` says so (its anomalies then
  come a later export, on the whole day).

The same days exported whole are judged too; and every whole day of each history is checked
as if it were the last one exported: one the rule holds back is judged, with any anomaly on
it, one export late. UCI's own final day, which its export cuts at 12:50, is shown apart.

Forecasting learns from the last day unless it is taken for a part-day. Per store, the same
cut and whole days are put to the two ways of telling: by the sales alone (a last day under
three quarters of its weekday's median, ``drop_partial_last_day``, what forecasting used for
every export before) and by the export's times of day where they tell, the sales where not
(``read_last_day`` and ``last_day_is_whole``, what it uses now). A cut store-day learned
from teaches the models a part-day as a whole one; a whole store-day dropped is forecast
instead of learned from.

    python bench/intraday_exports.py [--scale 0.05]

``--scale`` sets the demo tenants' volume: at 0.05 they take a few orders a day, and a day
ends early by chance more often. The rule's volume condition is for them; the last column of
the whole-day table is the rule without it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import UCI_CSV, announce_machine, emit_json, print_table, scratch_database
from bench.dbt_build import dbt_build
from ingestion.generator import DEMO_TENANTS, generate_sample
from ingestion.landing import ingest_tenant
from ingestion.loader import load_file
from ingestion.spec import shipped_specs
from ml.anomalies import detect_tenant
from ml.day_in_progress import REFERENCE_WEEKS, day_in_progress, read_last_day
from ml.forecasting import drop_partial_last_day, last_day_is_whole, store_histories
from ml.tables import read_daily_kpis
from storepulse.tenants import Tenant, add_tenant

CUT_HOURS = (10, 13, 16)
DAYS = 28
CONTEXT = timedelta(days=210)  # the history a daily scan judges with (ml.scan_plan: 180 + 30)


def read_orders(engine, tenant: Tenant, since) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(
            "select store_id, order_date as day, (ordered_at at time zone :tz) as local_at, "
            "is_return, gross_amount, return_amount from marts.fct_orders "
            "where tenant_id = :t and order_date >= :since"),
            conn, params={"tz": tenant.timezone, "t": tenant.tenant_id, "since": since})


def day_kpis(orders: pd.DataFrame, stores: list[str], day) -> pd.DataFrame:
    """One day's mart rows from its orders, as mart_daily_store_kpis makes them: every store,
    zeros (and closed) where it has no order."""
    by_store = orders.groupby("store_id")
    sales = orders[~orders["is_return"]].groupby("store_id")
    frame = pd.DataFrame({
        "gross": by_store["gross_amount"].sum(), "returns_amount": by_store["return_amount"].sum(),
        "orders": sales.size(), "any_order": by_store.size()}).reindex(stores).fillna(0)
    return pd.DataFrame({
        "store_id": stores, "day": day,
        "net_revenue": (frame["gross"] - frame["returns_amount"]).to_numpy(),
        "orders": frame["orders"].astype(int).to_numpy(),
        "avg_order_value": (frame["gross"] / frame["orders"].where(frame["orders"] > 0)
                            ).round(4).to_numpy(),
        "returns_amount": frame["returns_amount"].to_numpy(),
        "is_closed_day": (frame["any_order"] == 0).to_numpy()})


def last_sales(orders: pd.DataFrame) -> pd.DataFrame:
    """What ``ml.tables.read_last_sale_times`` reads: each day's latest order (local time),
    and its orders later in the day than the last day's latest."""
    at = orders["local_at"].dt.time
    until = at[orders["day"] == orders["day"].max()].max()
    by_day = orders.assign(at=at, after=at > until).groupby("day")
    return pd.DataFrame({"day": list(by_day.groups), "last_sale": by_day["at"].max().to_numpy(),
                         "orders_after": by_day["after"].sum().to_numpy()})


def as_last_day(by_day: dict, day) -> pd.DataFrame:
    """``last_sales`` of an export whose last day is ``day``: it and the same weekday of the
    weeks before (all the rule compares), from ``by_day`` (each day's orders)."""
    days = [day - timedelta(weeks=w) for w in range(REFERENCE_WEEKS, -1, -1)]
    return last_sales(pd.concat([by_day[d] for d in days if d in by_day]))


def judge(kpis: pd.DataFrame, orders: pd.DataFrame, tenant: Tenant, day, cut_hour: int | None
          ) -> dict | None:
    """Anomalies on ``day`` exported at ``cut_hour`` (None: whole), and whether the rule holds
    the day back; None when the export would not hold the day at all (no order yet)."""
    on_day = orders[orders["day"] == day]
    if cut_hour is not None:
        on_day = on_day[on_day["local_at"].dt.hour < cut_hour]
    if on_day.empty:
        return None
    before = kpis[(kpis["day"] < day) & (kpis["day"] >= day - CONTEXT)]
    judged = pd.concat([before, day_kpis(on_day, sorted(kpis["store_id"].unique()), day)],
                       ignore_index=True)
    history = orders[(orders["day"] < day) & (orders["day"] >= day - timedelta(weeks=9))]
    verdict = read_last_day(as_last_day({**dict(tuple(history.groupby("day"))), day: on_day},
                                        day))
    held = verdict.in_progress is not None
    found = detect_tenant(judged, tenant.tenant_id, tenant.currency, report_from=day,
                          country_code=tenant.country_code)
    cut_stores = cut_short_stores(kpis, judged, day) if cut_hour is not None else []
    learned_by_sales = learned_by_times = 0
    for series in store_histories(judged[judged["store_id"].isin(cut_stores)],
                                  "net_revenue").values():
        by_sales = not drop_partial_last_day(series)[1]
        whole = last_day_is_whole(series, verdict)  # what forecast_tenant decides by
        learned_by_sales += by_sales
        learned_by_times += by_sales if whole is None else whole
    return {"tenant": tenant.tenant_id, "day": day, "cut": cut_hour, "held": held,
            "anomalies": len(found), "critical": int((found["severity"] == "critical").sum()),
            "cut_store_days": len(cut_stores), "learned_by_sales": learned_by_sales,
            "learned_by_times": learned_by_times}


def cut_short_stores(kpis: pd.DataFrame, judged: pd.DataFrame, day) -> list[str]:
    """The stores whose day the cut changed (a store with no sale after the cut is whole)."""
    whole = kpis[kpis["day"] == day].set_index("store_id")["net_revenue"].astype(float)
    cut = judged[judged["day"] == day].set_index("store_id")["net_revenue"].astype(float)
    changed = (whole - cut.reindex(whole.index).fillna(0)).abs() > 0.005
    return list(whole.index[changed])


def check_rebuild(kpis: pd.DataFrame, orders: pd.DataFrame, day) -> None:
    """The rebuilt whole day must be the mart's own row, or the bench judges something else."""
    mart = kpis[kpis["day"] == day].set_index("store_id").sort_index()
    rebuilt = day_kpis(orders[orders["day"] == day], list(mart.index), day).set_index("store_id")
    for column in ("net_revenue", "orders", "returns_amount"):
        diff = (mart[column].astype(float) - rebuilt[column].astype(float)).abs().max()
        assert diff < 0.01, f"rebuilt {column} of {day} differs from the mart by {diff}"


def whole_days_held(kpis: pd.DataFrame, orders: pd.DataFrame, tenant: Tenant) -> dict:
    """Every whole day of the history as if it were the last one exported: how many the rule
    would hold back, and how many of those have anomalies (judged one export late)."""
    by_day = dict(tuple(orders.groupby("day")))
    days = sorted(by_day)[:-1]  # the final day is the export's own, judged apart
    exports = {day: as_last_day(by_day, day) for day in days}
    verdicts = {day: read_last_day(sales) for day, sales in exports.items()}
    held = [day for day, verdict in verdicts.items() if verdict.in_progress is not None]
    # The rule without its volume condition (an empty rest of the day may be any chance)
    held_by_time_alone = [day for day, sales in exports.items()
                          if day_in_progress(sales, empty_rest_chance=1.0)]
    found = detect_tenant(kpis, tenant.tenant_id, tenant.currency,
                          country_code=tenant.country_code)
    flagged = set(pd.to_datetime(found["day"]).dt.date)
    # Forecasting: each store's history ending on each of those days.
    store_days = dropped_by_sales = dropped_by_times = 0
    for history in store_histories(kpis, "net_revenue").values():
        ends = pd.Series(history["ds"].dt.date)
        for i in ends.index[ends.isin(set(days))]:
            store_days += 1
            by_sales = drop_partial_last_day(history.iloc[:i + 1])[1]
            whole = last_day_is_whole(history.iloc[:i + 1], verdicts[ends[i]])
            dropped_by_sales += by_sales
            dropped_by_times += by_sales if whole is None else not whole
    return {"tenant": tenant.tenant_id, "days": len(days), "held": len(held),
            "held_by_time_alone": len(held_by_time_alone),
            "held_with_anomalies": len(flagged & set(held)), "store_days": store_days,
            "dropped_by_sales": dropped_by_sales, "dropped_by_times": dropped_by_times}


def tenant_runs(engine, tenant: Tenant) -> tuple[list[dict], dict, dict | None]:
    with engine.connect() as conn:
        kpis = read_daily_kpis(conn, tenant.tenant_id)
    kpis = kpis.assign(day=pd.to_datetime(kpis["day"]).dt.date)
    final = kpis["day"].max()
    orders = read_orders(engine, tenant, kpis["day"].min())
    orders = orders.assign(day=pd.to_datetime(orders["day"]).dt.date,
                           local_at=pd.to_datetime(orders["local_at"]))
    trading = sorted(set(orders["day"]) - {final})[-DAYS:]
    runs = []
    for day in trading:
        check_rebuild(kpis, orders, day)
        for cut in (*CUT_HOURS, None):
            result = judge(kpis, orders, tenant, day, cut)
            if result is not None:
                runs.append(result)
    own_final = judge(kpis, orders, tenant, final, None)
    return runs, whole_days_held(kpis, orders, tenant), own_final


def load_uci(engine) -> Tenant:
    tenant = Tenant("uci", "UCI Online Retail", "Europe/London", "GBP", "GB")
    add_tenant(engine, tenant)
    load_file(engine, UCI_CSV, "uci", shipped_specs()["uci_online_retail_csv"])
    return tenant


def load_demo(engine, landing: Path, scale: float) -> list[Tenant]:
    generate_sample(landing, seed=42, scale=scale)
    tenants = []
    for p in DEMO_TENANTS:
        tenant = Tenant(p.tenant_id, p.name, p.timezone, p.currency, p.country_code)
        add_tenant(engine, tenant)
        ingest_tenant(engine, landing, p.tenant_id)
        tenants.append(tenant)
    return tenants


def summary_rows(runs: pd.DataFrame) -> list[list]:
    rows = []
    for tenant, group in [*runs.groupby("tenant", sort=False), ("all", runs)]:
        cut = group[group["cut"].notna()]
        whole = group[group["cut"].isna()]
        alerting = cut["anomalies"] > 0
        rows.append([
            tenant, len(cut), int(alerting.sum()), int((alerting & ~cut["held"]).sum()),
            int((cut["critical"] > 0).sum()), int(((cut["critical"] > 0) & ~cut["held"]).sum()),
            f"{cut['held'].mean():.0%}", len(whole), int(whole["held"].sum()),
            int((whole["anomalies"] > 0).sum())])
    return rows


def forecast_rows(runs: pd.DataFrame, whole: pd.DataFrame) -> list[list]:
    cut = runs[runs["cut"].notna()]
    by_tenant = cut.groupby("tenant", sort=False)[
        ["cut_store_days", "learned_by_sales", "learned_by_times"]].sum()
    by_tenant.loc["all"] = by_tenant.sum()
    return [[r.tenant, *by_tenant.loc[r.tenant].astype(int).tolist(), r.store_days,
             r.dropped_by_sales, r.dropped_by_times] for r in whole.itertuples()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="order volume of the demo's tenants (0.05: a few orders a day)")
    scale = parser.parse_args().scale
    announce_machine()
    runs, wholes, finals = [], [], []
    with scratch_database() as (url, engine), tempfile.TemporaryDirectory() as tmp:
        tenants = [load_uci(engine), *load_demo(engine, Path(tmp), scale)]
        dbt_build(url)
        for tenant in tenants:
            cut_runs, whole, final = tenant_runs(engine, tenant)
            runs.extend(cut_runs)
            wholes.append(whole)
            if final is not None:
                finals.append(final)
    frame = pd.DataFrame(runs)
    frame["cut"] = frame["cut"].astype("Int64")
    hours = ", ".join(f"{h}:00" for h in CUT_HOURS)
    print_table(
        f"Each tenant's last {DAYS} trading days, exported at {hours} (cut) and whole; "
        f"exports with at least one anomaly on that day",
        ["tenant", "cut exports", "alerting, no rule", "alerting, rule", "critical, no rule",
         "critical, rule", "cut held", "whole days", "whole held", "whole w/ anomaly"],
        summary_rows(frame))
    by_hour = frame[frame["cut"].notna()].groupby("cut")
    print_table("By export time (all tenants)", ["cut at", "exports", "held back",
                                                 "alerting, no rule", "alerting, rule"],
                [[f"{h}:00", len(g), f"{g['held'].mean():.0%}", int((g["anomalies"] > 0).sum()),
                  int(((g["anomalies"] > 0) & ~g["held"]).sum())] for h, g in by_hour])
    whole = pd.DataFrame(wholes)
    whole.loc[len(whole)] = ["all", *whole.drop(columns="tenant").sum()]
    print_table("Every whole day of the history, as if the export's last (the cost: a day held "
                "back is judged one export late)",
                ["tenant", "days", "held back", "share", "of them with anomalies",
                 "held by time alone"],
                [[r.tenant, r.days, r.held, f"{r.held / r.days:.1%}", r.held_with_anomalies,
                  r.held_by_time_alone]
                 for r in whole.itertuples()])
    print_table("Forecasting: cut store-days learned from as if whole, and whole store-days "
                "forecast instead of learned from, telling a part-day by the sales alone or by "
                "the export's times of day",
                ["tenant", "cut store-days", "learned, by sales", "learned, by times",
                 "whole store-days", "dropped, by sales", "dropped, by times"],
                forecast_rows(frame, whole))
    uci_final = next(f for f in finals if f["tenant"] == "uci")
    print(f"\nUCI's own final day ({uci_final['day']}, its export stops at 12:50): "
          f"{uci_final['anomalies']} anomalies ({uci_final['critical']} critical) without the "
          f"rule; held back by it: {uci_final['held']}")
    cut = frame[frame["cut"].notna()]
    everything = whole.iloc[-1]
    emit_json({
        "cut_exports": len(cut),
        "cut_exports_alerting_without_rule": int((cut["anomalies"] > 0).sum()),
        "cut_exports_alerting_with_rule": int(((cut["anomalies"] > 0) & ~cut["held"]).sum()),
        "cut_exports_critical_without_rule": int((cut["critical"] > 0).sum()),
        "cut_exports_critical_with_rule": int(((cut["critical"] > 0) & ~cut["held"]).sum()),
        "whole_days": int(everything["days"]),
        "whole_days_held_share": round(float(everything["held"] / everything["days"]), 4),
        "whole_days_held_share_by_time_alone": round(
            float(everything["held_by_time_alone"] / everything["days"]), 4),
        "whole_days_with_anomalies_delayed": int(everything["held_with_anomalies"]),
        "uci_final_day_held": bool(uci_final["held"]),
        "uci_final_day_anomalies_without_rule": int(uci_final["anomalies"]),
        "cut_store_days": int(cut["cut_store_days"].sum()),
        "cut_store_days_learned_by_sales": int(cut["learned_by_sales"].sum()),
        "cut_store_days_learned_by_times": int(cut["learned_by_times"].sum()),
        "whole_store_days": int(everything["store_days"]),
        "whole_store_days_dropped_by_sales": int(everything["dropped_by_sales"]),
        "whole_store_days_dropped_by_times": int(everything["dropped_by_times"]),
    })


if __name__ == "__main__":
    main()
