"""Deterministic generator of realistic multi-tenant POS data.

The same seed gives byte-identical files. What it models, and why:

* weekly and yearly seasonality, growth, holidays (from the ``holidays`` package) and promotions,
  so forecasters have real structure to find;
* closed days (Christmas, and Sundays for one tenant), which are data, not gaps;
* a product catalogue in themes with anchor pairs that are bought together, so affinity has lift;
* customers who join over time and come back (skewed loyalty), plus guests with no id;
* returns a few days after the sale, with negative quantities;
* planted anomalies (store outage, one-day spike, slow decline) written to ``ground_truth.csv``
  so that detectors can be scored, and the promotion weeks to ``promotions.csv`` (a rise a
  detector may see there is explained, not false);
* a handful of deliberately broken rows, so the demo shows quarantine at work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import holidays as holidays_lib
import numpy as np
import pandas as pd

END_DATE = date(2026, 10, 31)
HISTORY_DAYS = 730

POS_COLUMNS = [
    "store_id", "order_id", "line_number", "ordered_at", "sku", "product_name",
    "quantity", "unit_price", "currency", "customer_id", "channel", "transaction_type",
]


@dataclass(frozen=True)
class TenantProfile:
    tenant_id: str
    name: str
    timezone: str
    currency: str
    country_code: str
    stores: int
    base_orders: float  # mean orders a day for a typical store
    weekly: tuple[float, ...]  # Monday..Sunday multipliers; 0 means closed
    source: str  # generic_pos_csv or json_orders
    price_scale: float = 1.0


@dataclass(frozen=True)
class PlantedAnomaly:
    tenant_id: str
    store_id: str
    kind: str  # outage | spike | drop | decline
    start: date
    end: date
    factor: float
    description: str


DEMO_TENANTS: tuple[TenantProfile, ...] = (
    TenantProfile("northwind", "Northwind Gifts", "Europe/London", "GBP", "GB", 1, 60.0,
                  (0.9, 0.95, 1.0, 1.05, 1.25, 1.4, 0.0), "generic_pos_csv"),
    TenantProfile("acme_grocers", "Acme Grocers", "America/New_York", "USD", "US", 3, 45.0,
                  (0.85, 0.9, 0.95, 1.0, 1.2, 1.45, 1.15), "generic_pos_csv", 0.6),
    TenantProfile("alpen_outdoor", "Alpen Outdoor", "Europe/Berlin", "EUR", "DE", 5, 25.0,
                  (0.9, 0.9, 1.0, 1.0, 1.15, 1.5, 0.8), "json_orders", 1.8),
)

PROMOTION_DAYS = 7
THEMES = ("kitchen", "garden", "stationery", "toys", "apparel", "lighting", "snacks", "gifts")


@dataclass
class GeneratedSample:
    root: Path
    tenants: tuple[TenantProfile, ...]
    anomalies: list[PlantedAnomaly] = field(default_factory=list)
    line_counts: dict[str, int] = field(default_factory=dict)
    broken_rows: int = 0


def store_ids(profile: TenantProfile) -> list[str]:
    return [f"{profile.tenant_id[:3].upper()}{i + 1:02d}" for i in range(profile.stores)]


def plant_anomalies(profile: TenantProfile, days: pd.DatetimeIndex, rng: np.random.Generator
                    ) -> list[PlantedAnomaly]:
    """One outage, one spike and one slow decline per tenant, in the last year, on open days."""
    stores = store_ids(profile)
    last_year = days[-365:-40]
    open_days = [d for d in last_year if profile.weekly[d.day_of_week] > 0 and
                 not (d.month == 12 and d.day in (24, 25, 26, 31)) and
                 not (d.month == 1 and d.day == 1)]
    picks = rng.choice(len(open_days) - 30, size=3, replace=False)
    picks.sort()
    # Keep the three events apart so they never overlap.
    picks = [int(picks[0]), int(picks[0]) + 60, int(picks[0]) + 140]
    picks = [p % (len(open_days) - 30) for p in picks]
    outage_day = open_days[picks[0]].date()
    spike_day = open_days[picks[1]].date()
    decline_start = open_days[picks[2]].date()
    s_out, s_spike, s_decl = (stores[i % len(stores)] for i in (0, 1, 2))
    return [
        PlantedAnomaly(profile.tenant_id, s_out, "outage", outage_day, outage_day, 0.0,
                       "till system down all day: no sales recorded"),
        PlantedAnomaly(profile.tenant_id, s_spike, "spike", spike_day, spike_day, 3.0,
                       "bulk corporate orders: three times the usual sales"),
        PlantedAnomaly(profile.tenant_id, s_decl, "decline", decline_start,
                       decline_start + timedelta(days=20), 0.35,
                       "road works: sales slide to a third over ten days and stay there"),
    ]


def _anomaly_multiplier(anomalies: list[PlantedAnomaly], store: str, days: pd.DatetimeIndex
                        ) -> np.ndarray:
    mult = np.ones(len(days))
    day_dates = days.date
    for a in anomalies:
        if a.store_id != store:
            continue
        if a.kind == "decline":
            # Ramp down over the first ten days of the window, hold, then recover.
            for i, d in enumerate(day_dates):
                if a.start <= d <= a.end:
                    frac = min((d - a.start).days / 10, 1.0)
                    mult[i] *= 1 - (1 - a.factor) * frac
        else:
            for i, d in enumerate(day_dates):
                if a.start <= d <= a.end:
                    mult[i] *= a.factor
    return mult


def plant_into_daily_kpis(kpis: pd.DataFrame, anomalies: list[PlantedAnomaly]
                          ) -> pd.DataFrame:
    """Daily store KPIs (``mart_daily_store_kpis`` rows) with events planted, to score a
    detector on a real history: an outage sells nothing; a spike multiplies the day's
    quantities by ``factor`` (revenue and basket size, not the number of orders); a drop keeps
    ``factor`` of the orders on each of its days; a decline slides to ``factor`` over its
    first ten days and holds."""
    planted = kpis.copy()
    days = pd.to_datetime(planted["day"])
    for store_id, rows in planted.groupby("store_id").groups.items():
        store_days = pd.DatetimeIndex(days[rows])
        events = [a for a in anomalies if a.store_id == store_id]
        trading = ~planted.loc[rows, "is_closed_day"].astype(bool).to_numpy()
        for event in events:
            inside = (store_days.date >= event.start) & (store_days.date <= event.end) & trading
            at = rows[inside]
            if event.kind == "outage":
                planted.loc[at, ["net_revenue", "orders", "returns_amount"]] = 0
                planted.loc[at, "avg_order_value"] = np.nan
                planted.loc[at, "is_closed_day"] = True
            elif event.kind == "spike":
                planted.loc[at, ["net_revenue", "avg_order_value"]] *= event.factor
            else:
                mult = _anomaly_multiplier([event], store_id, store_days)[inside]
                planted.loc[at, "net_revenue"] *= mult
                planted.loc[at, "orders"] = (planted.loc[at, "orders"] * mult).round()
    return planted


def _catalog(profile: TenantProfile, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for t, theme in enumerate(THEMES):
        base = rng.uniform(3, 25) * profile.price_scale
        for j in range(15):
            rows.append({
                "sku": f"{theme[:3].upper()}-{t}{j:02d}",
                "product_name": f"{theme.title()} item {j + 1}",
                "theme": t,
                "price": round(float(base * rng.lognormal(0, 0.35)), 2),
                "popularity": float(rng.pareto(1.5) + 0.2),
            })
    return pd.DataFrame(rows)


def _daily_expected_orders(profile: TenantProfile, store_idx: int, days: pd.DatetimeIndex,
                           promo: np.ndarray, closed: np.ndarray, rng: np.random.Generator
                           ) -> np.ndarray:
    level = profile.base_orders * (0.7 + 0.25 * store_idx % 3) * rng.uniform(0.85, 1.15)
    weekly = np.array(profile.weekly)[days.day_of_week]
    doy = days.day_of_year.to_numpy()
    yearly = 1 + 0.22 * np.cos(2 * np.pi * (doy - 350) / 365.25) + 0.08 * np.sin(
        4 * np.pi * doy / 365.25)
    growth = 1 + 0.10 * np.arange(len(days)) / 365
    noise = rng.lognormal(0, 0.07, len(days))
    expected = level * weekly * yearly * growth * noise * np.where(promo, 1.35, 1.0)
    return np.where(closed, 0.0, expected)


def generate_sample(root: Path, seed: int = 42, scale: float = 1.0,
                    tenants: tuple[TenantProfile, ...] = DEMO_TENANTS,
                    end_date: date = END_DATE, history_days: int = HISTORY_DAYS,
                    broken_rows: bool = True, order_offset: int = 0) -> GeneratedSample:
    """Write landing files for every tenant under ``root`` and return what was planted.

    ``scale`` multiplies order volume (tests use a small one; benchmarks a large one).
    ``order_offset`` shifts order numbers, so a later batch (one more day) never reuses ids.
    """
    root = Path(root)
    days = pd.date_range(end=pd.Timestamp(end_date), periods=history_days, freq="D")
    sample = GeneratedSample(root=root, tenants=tenants)
    truth_rows, promotion_rows = [], []
    for profile in tenants:
        t_rng = np.random.default_rng([seed, sum(map(ord, profile.tenant_id))])
        anomalies = plant_anomalies(profile, days, t_rng) if len(days) >= 400 else []
        sample.anomalies.extend(anomalies)
        starts = _promotion_starts(days, t_rng)
        promotion_rows.extend(
            {"tenant_id": profile.tenant_id, "start": days[i].date(),
             "end": days[min(i + PROMOTION_DAYS, len(days)) - 1].date()} for i in starts)
        lines = _tenant_lines(profile, days, anomalies, t_rng, scale, order_offset, starts)
        if broken_rows and profile.source == "generic_pos_csv":
            lines = _with_broken_rows(lines, t_rng)
            sample.broken_rows += 3
        sample.line_counts[profile.tenant_id] = len(lines)
        _write_tenant(root, profile, lines)
        truth_rows.extend(a.__dict__ for a in anomalies)
    truth = pd.DataFrame(truth_rows)
    truth.to_csv(root / "ground_truth.csv", index=False)
    pd.DataFrame(promotion_rows, columns=["tenant_id", "start", "end"]).to_csv(
        root / "promotions.csv", index=False)
    (root / "tenants.json").write_text(json.dumps([p.__dict__ for p in tenants], indent=2))
    return sample


def _promotion_starts(days: pd.DatetimeIndex, rng: np.random.Generator) -> list[int]:
    """Six week-long promotions a tenant runs in its history (a one-day batch has none)."""
    if len(days) <= 60:
        return []
    return [int(start) for start in rng.choice(len(days) - 10, size=6, replace=False)]


def _tenant_lines(profile: TenantProfile, days: pd.DatetimeIndex,
                  anomalies: list[PlantedAnomaly], rng: np.random.Generator, scale: float,
                  order_offset: int = 0, promotion_starts: list[int] = ()) -> pd.DataFrame:
    years = sorted({d.year for d in days})
    country_holidays = holidays_lib.country_holidays(profile.country_code, years=years)
    day_dates = days.date
    closed = np.array([(d.month == 12 and d.day == 25) or (d.month == 1 and d.day == 1)
                       for d in day_dates]) | (np.array(profile.weekly)[days.day_of_week] == 0)
    holiday = np.array([d in country_holidays for d in day_dates])
    promo = np.zeros(len(days), dtype=bool)
    for start in promotion_starts:
        promo[start:start + PROMOTION_DAYS] = True
    catalog = _catalog(profile, rng)
    theme_weights = rng.dirichlet(np.ones(len(THEMES)) * 2)
    # Anchor pairs: buying the first product often brings the second along.
    anchors = {}
    for t in range(len(THEMES)):
        in_theme = catalog.index[catalog.theme == t].to_numpy()
        a, b = rng.choice(in_theme, size=2, replace=False)
        anchors[int(a)] = int(b)
    n_customers = int(500 * profile.stores * max(scale, 0.2))
    signup = np.sort(rng.integers(-120, len(days), n_customers))
    frames = []
    for s_idx, store in enumerate(store_ids(profile)):
        expected = _daily_expected_orders(profile, s_idx, days, promo, closed, rng) * scale
        expected *= np.where(holiday & ~closed, 0.75, 1.0)
        expected *= _anomaly_multiplier(anomalies, store, days)
        counts = rng.poisson(expected)
        n_orders = int(counts.sum())
        if n_orders == 0:  # e.g. a one-day batch on a day the store is closed
            continue
        day_idx = np.repeat(np.arange(len(days)), counts)
        seconds = (rng.integers(9, 20, n_orders) * 3600 + rng.integers(0, 3600, n_orders))
        eligible = np.searchsorted(signup, day_idx, side="right")
        is_guest = (rng.random(n_orders) < 0.28) | (eligible == 0)
        cust_idx = np.floor(np.maximum(eligible, 1) * rng.random(n_orders) ** 0.6).astype(int)
        customer = np.where(is_guest, "", np.char.add(f"{profile.tenant_id[:2].upper()}C",
                                                      cust_idx.astype(str)))
        n_lines = np.minimum(1 + rng.poisson(1.3, n_orders), 8)
        order_of_line = np.repeat(np.arange(n_orders), n_lines)
        theme = rng.choice(len(THEMES), size=n_orders, p=theme_weights)[order_of_line]
        # Mostly in the order's theme, sometimes anything.
        theme = np.where(rng.random(len(theme)) < 0.8, theme,
                         rng.integers(0, len(THEMES), len(theme)))
        product = _pick_products(catalog, theme, rng)
        companion = np.array([anchors.get(int(p), -1) for p in product], dtype=int)
        adds = (companion >= 0) & (rng.random(len(product)) < 0.55)
        order_of_line = np.concatenate([order_of_line, order_of_line[adds]])
        product = np.concatenate([product, companion[adds]])
        lines = pd.DataFrame({"order": order_of_line, "product": product})
        lines = lines.drop_duplicates().sort_values(["order", "product"], kind="stable")
        o = lines["order"].to_numpy()
        p = lines["product"].to_numpy()
        prices = catalog.price.to_numpy()[p] * np.where(promo[day_idx[o]], 0.85, 1.0)
        qty = 1 + rng.poisson(0.4, len(o))
        ts = (days[day_idx[o]] + pd.to_timedelta(seconds[o], unit="s"))
        frame = pd.DataFrame({
            "store_id": store,
            "order_id": np.char.add(f"{store}-",
                                    np.char.zfill((o + 1 + order_offset).astype(str), 7)),
            "line_number": pd.Series(o).groupby(o).cumcount().to_numpy() + 1,
            "ordered_at": ts,
            "sku": catalog.sku.to_numpy()[p],
            "product_name": catalog.product_name.to_numpy()[p],
            "quantity": qty,
            "unit_price": np.round(prices, 2),
            "currency": profile.currency,
            "customer_id": customer[o],
            "channel": "store",
            "transaction_type": "sale",
        })
        frames.append(frame)
        frames.append(_returns(frame, rng, days[-1], profile.weekly))
    if not frames:  # every store closed on every day of the batch
        return pd.DataFrame(columns=[*POS_COLUMNS, "theme"]).drop(columns="theme")
    lines = pd.concat(frames, ignore_index=True)
    return lines.sort_values(["ordered_at", "order_id", "line_number"], kind="stable",
                             ignore_index=True)


def _pick_products(catalog: pd.DataFrame, theme: np.ndarray, rng: np.random.Generator
                   ) -> np.ndarray:
    product = np.empty(len(theme), dtype=int)
    for t in range(len(THEMES)):
        mask = theme == t
        idx = catalog.index[catalog.theme == t].to_numpy()
        w = catalog.popularity.to_numpy()[idx]
        product[mask] = rng.choice(idx, size=int(mask.sum()), p=w / w.sum())
    return product


def _returns(sales: pd.DataFrame, rng: np.random.Generator, last_day: pd.Timestamp,
             weekly: tuple[float, ...]) -> pd.DataFrame:
    picked = sales[rng.random(len(sales)) < 0.02].copy()
    # One return date per returned order: a return is a single visit to the till.
    orders = picked["order_id"].unique()
    delay = dict(zip(orders, rng.integers(1, 21, len(orders)), strict=True))
    picked["ordered_at"] = picked["ordered_at"] + pd.to_timedelta(
        picked["order_id"].map(delay), unit="D")
    # A closed store takes no returns: they come back on the next open day.
    for _ in range(3):
        at = picked["ordered_at"]
        closed = (np.array(weekly)[at.dt.day_of_week] == 0) | (
            (at.dt.month == 12) & (at.dt.day == 25)) | ((at.dt.month == 1) & (at.dt.day == 1))
        picked.loc[closed, "ordered_at"] = at[closed] + pd.Timedelta(days=1)
    picked = picked[picked["ordered_at"] < last_day + pd.Timedelta(days=1)]
    picked["order_id"] = "R" + picked["order_id"]
    picked["line_number"] = picked.groupby("order_id").cumcount() + 1
    picked["quantity"] = -picked["quantity"]
    picked["transaction_type"] = "return"
    return picked


def _with_broken_rows(lines: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Three rows a real POS export might contain: a bad date, a zero quantity, a negative price."""
    lines = lines.astype({"ordered_at": str, "quantity": str, "unit_price": str})
    at = rng.choice(len(lines) // 2, size=3, replace=False) + len(lines) // 4
    bad = lines.iloc[at].copy()
    bad["order_id"] = bad["order_id"] + "-X"
    bad.iloc[0, bad.columns.get_loc("ordered_at")] = "2025-13-45 10:00:00"
    bad.iloc[1, bad.columns.get_loc("quantity")] = "0"
    bad.iloc[2, bad.columns.get_loc("unit_price")] = "-4.50"
    return pd.concat([lines.iloc[: at.max()], bad, lines.iloc[at.max():]], ignore_index=True)


def _write_tenant(root: Path, profile: TenantProfile, lines: pd.DataFrame) -> None:
    tenant_dir = root / profile.tenant_id
    source_dir = tenant_dir / profile.source
    source_dir.mkdir(parents=True, exist_ok=True)
    stores_dir = tenant_dir / "stores_csv"
    stores_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({
        "store_id": store_ids(profile),
        "store_name": [f"{profile.name} #{i + 1}" for i in range(profile.stores)],
        "city": [f"City {i + 1}" for i in range(profile.stores)],
        "country": profile.country_code,
    }).to_csv(stores_dir / "stores.csv", index=False)
    ordered_at = lines["ordered_at"].astype(str)
    month = ordered_at.str.slice(0, 7)
    # A month whose label is unparseable (the broken row) travels with its neighbours' month.
    month = month.where(month.str.match(r"^\d{4}-(0[1-9]|1[0-2])$")).ffill()
    for label, chunk in lines.groupby(month.to_numpy(), sort=True):
        chunk = chunk.assign(ordered_at=chunk["ordered_at"].astype(str))
        if profile.source == "json_orders":
            _write_jsonl(source_dir / f"orders_{label}.jsonl", chunk)
        else:
            chunk[POS_COLUMNS].to_csv(source_dir / f"sales_{label}.csv", index=False)


def _write_jsonl(path: Path, chunk: pd.DataFrame) -> None:
    # Plain lists, not DataFrame rows: per-row pandas access is a hundred times slower here.
    chunk = chunk.sort_values(["order_id", "line_number"], kind="stable")
    cols = {c: chunk[c].tolist() for c in (
        "order_id", "store_id", "ordered_at", "currency", "transaction_type", "customer_id",
        "line_number", "sku", "product_name", "quantity", "unit_price")}
    with path.open("w", encoding="utf-8") as out:
        i, n = 0, len(chunk)
        while i < n:
            j = i
            while j < n and cols["order_id"][j] == cols["order_id"][i]:
                j += 1
            customer = cols["customer_id"][i]
            record = {
                "id": cols["order_id"][i],
                "location_id": cols["store_id"][i],
                "created_at": cols["ordered_at"][i],
                "currency": cols["currency"][i],
                "kind": cols["transaction_type"][i],
                "customer": {"id": customer} if customer else None,
                "lines": [
                    {"line": int(cols["line_number"][k]), "sku": cols["sku"][k],
                     "title": cols["product_name"][k], "qty": int(cols["quantity"][k]),
                     "price": float(cols["unit_price"][k])}
                    for k in range(i, j)
                ],
            }
            out.write(json.dumps(record) + "\n")
            i = j


def load_ground_truth(root: Path) -> pd.DataFrame:
    return pd.read_csv(Path(root) / "ground_truth.csv", parse_dates=["start", "end"])


def load_promotions(root: Path) -> pd.DataFrame:
    """The promotion weeks the generator ran (every store of the tenant): real sustained rises
    it caused on purpose, which a detector may flag without being wrong."""
    return pd.read_csv(Path(root) / "promotions.csv", parse_dates=["start", "end"])


# ------------------------------------------------------------------ forecasting test series
SERIES_SHAPES = ("steady", "trend_break", "six_day_week", "holidays", "promotions",
                 "low_volume", "intermittent", "refund_days", "level_shift", "growth")


def daily_store_series(count: int = 50, seed: int = 0, days: int = 730,
                       end_date: date = END_DATE) -> list[tuple[str, pd.DataFrame]]:
    """``count`` daily net-revenue series of stores of different shapes (cycling through
    SERIES_SHAPES, each drawn with its own level, week and noise), deterministic for a seed:
    what forecast defaults are chosen on besides real data (bench/forecast_tournament.py).
    Each is (name, frame with ds, y, closed)."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(end=pd.Timestamp(end_date), periods=days, freq="D")
    doy = ds.day_of_year.to_numpy()
    t = np.arange(days)
    out = []
    for i in range(count):
        shape = SERIES_SHAPES[i % len(SERIES_SHAPES)]
        level = float(rng.lognormal(np.log(2000), 0.8))
        weekly = rng.uniform(0.7, 1.5, 7)
        yearly = 1 + rng.uniform(0.05, 0.3) * np.cos(2 * np.pi * (doy - rng.integers(300, 366))
                                                     / 365.25)
        trend = 1 + rng.uniform(-0.05, 0.15) * t / 365
        noise = rng.lognormal(0, rng.uniform(0.05, 0.25), days)
        closed = np.zeros(days, dtype=bool)
        multiplier = np.ones(days)
        if shape == "six_day_week" or (shape == "holidays" and i % 2):
            closed |= ds.day_of_week.to_numpy() == int(rng.integers(0, 7))
        if shape == "holidays":
            closed |= np.isin(ds.strftime("%m-%d"), ["12-25", "12-26", "01-01"])
            multiplier *= np.where(np.isin(ds.strftime("%m-%d"), ["12-23", "12-24"]), 1.8, 1.0)
        if shape == "trend_break":
            at = int(rng.integers(days // 3, 2 * days // 3))
            trend = np.where(t < at, trend, trend[at] * (1 + rng.uniform(-0.6, 0.6)
                                                         * (t - at) / 365))
        if shape == "level_shift":
            at = int(rng.integers(days // 2, days - 60))
            multiplier *= np.where(t < at, 1.0, rng.uniform(0.5, 1.6))
        if shape == "promotions":
            starts = rng.choice(days - 7, size=12, replace=False)
            for start in starts:
                multiplier[start:start + int(rng.integers(2, 7))] *= rng.uniform(1.3, 2.2)
        if shape == "growth":
            trend = np.exp(rng.uniform(0.2, 0.7) * t / 365)
        y = level * weekly[ds.day_of_week] * yearly * trend * noise * multiplier
        if shape == "low_volume":
            y = rng.poisson(np.maximum(y / level * rng.uniform(2, 8), 0)).astype(float) \
                * rng.uniform(10, 40)
        if shape == "intermittent":
            y = np.where(rng.random(days) < 0.45, 0.0, y / 10)
        if shape == "refund_days":
            refunds = rng.random(days) < 0.02
            y = np.where(refunds, -y * rng.uniform(0.1, 0.5, days), y)
        y = np.where(closed, 0.0, np.round(y, 2))
        out.append((f"{shape}_{i:02d}", pd.DataFrame({"ds": ds, "y": y, "closed": closed})))
    return out
