"""Anomalies in daily store KPIs, with a severity a manager can act on.

Three detectors:

* **seasonal baseline** (per KPI): the expected value of a day is the median of the same
  weekday over the previous 8 trading weeks; the spread is 1.4826 x their median absolute
  deviation, floored at 10% of the expected value (day-to-day noise never reads as zero).
  Each day is also compared with its own week (the median deviation of the three trading days
  either side, clipped to -15%..+60%), so a promotion week lifts the bar for its days. A real
  change in demand moves revenue *and* orders, while one large basket moves only revenue, so a
  day is flagged when both are at least 40% off in the same direction and orders are at least
  4 standard deviations (Poisson plus 15% overdispersion) from the week-adjusted expectation;
  orders alone flag at 100% off and 5 deviations, revenue alone at three times its usual level
  and 6 spreads where the store takes at least 20 orders a day.
  Average order value is flagged at 100% above or 60% below and 6 spreads; returns when they
  are at least 5x their usual level and a quarter of the day's usual revenue (or of what
  it sold, when that is more: after a slump the weekday baselines lag a recovered store).
  A store with no sale orders on a day it normally trades (see ``ClosedDayRule``) is an
  outage, where its usual orders make an empty day a 1-in-100 chance (about 5 orders a
  day): a store that sells twice a day has empty days by chance. Public holidays of the
  tenant's country (``ml.calendar``) are not judged at all: a weekday's usual level says
  nothing about Easter Monday, and a closed holiday is no outage. Nor is an empty day on a
  holiday the store closed on in an earlier year (any region's holiday, recognised by name so
  a moving one counts; a date closed every year is already ``ClosedDayRule``'s).
* **level shift**: a run of trading days whose every 3 consecutive days total 40% or more
  below (or above) normal on revenue and on orders, with those orders at least 4 times the
  noise of 3 such days (the store's own spread, at least Poisson plus 15% overdispersion, so
  a small store's noise is not a shift). The run ends on its last day whose orders are
  themselves that far off. The surrounding-week adjustment does not apply, as a shift moves
  the whole week. Each day of the run from its third is flagged, saying how long it has
  lasted. A drop of up to four weeks then leaves the weekday baselines, so the weeks after
  it are judged against the store's normal, not against the drop.
* **isolation forest** over the vector of log ratios (actual / expected) of revenue, orders,
  average order value and returns, per tenant (contamination 0.1%), for days odd in
  combination that no single KPI flagged and where revenue or orders moved at least 25%.

Severity follows the rule documented for managers in ``ml.severity``, which also words each
anomaly's one-line explanation.

A tenant's last day, when its export was taken during trading hours, is left out by the
caller (``ml.day_in_progress``) until a later export completes it.

Each anomaly has a stable id (tenant, store, day, KPI, detector), so reruns update rather than
duplicate it. Every detection threshold above is a field of ``Thresholds`` (``detect_tenant``
takes one); the severity rules are fixed, as documented.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from ml.calendar import habitual_holiday_closures, public_holidays
from ml.models import ClosedDayRule
from ml.severity import KPIS, WEEKDAY_NAMES, explain, returns_severity, severity


@dataclass(frozen=True)
class Thresholds:
    """Every number the detectors judge by, as the module's docstring states them."""

    weeks: int = 8  # same-weekday trading weeks behind a baseline
    spread_floor: float = 0.10  # a spread is at least this share of the expected value
    week_level: tuple[float, float] = (-0.15, 0.60)  # how far a day's own week moves its bar
    joint_deviation: float = 0.40  # revenue and orders both this far off, the same way ...
    joint_sigma: float = 4.0  # ... with orders this many deviations off
    solo_deviation: float = 1.00  # orders alone this far off ...
    solo_sigma: float = 5.0  # ... and this many deviations
    overdispersion: float = 0.15  # daily demand's variation beyond Poisson
    revenue_alone: float = 2.0  # revenue alone this far above (three times usual) ...
    revenue_alone_spreads: float = 6.0  # ... and this many spreads ...
    busy_store_orders: float = 20  # ... at a store expecting this many orders a day
    order_value_above: float = 1.0  # average order value this far above ...
    order_value_below: float = -0.6  # ... or below usual ...
    order_value_spreads: float = 6.0  # ... and this many spreads
    returns_times_usual: float = 5.0  # returns this many times their usual level ...
    # ... and this share of the day's usual revenue, or of its actual sales when more
    returns_share_of_revenue: float = 0.25
    shift_days: int = 3  # a level shift's window of trading days ...
    shift_deviation: float = 0.40  # ... totalling this far off on revenue and orders ...
    shift_z: float = 4.0  # ... with orders this many times their noise
    shift_forgotten_days: int = 20  # a drop up to this long leaves the baselines
    band_half_width_spreads: float = 3.5  # the normal band shown beside a flagged value
    outage_chance: float = 0.01  # an empty trading day is an outage when this unlikely


THRESHOLDS = Thresholds()
ANOMALY_COLUMNS = ["anomaly_id", "store_id", "day", "kpi", "detector", "actual", "expected",
                   "lower_bound", "upper_bound", "score", "severity", "explanation"]


def anomaly_id(tenant_id: str, store_id: str, day, kpi: str, detector: str) -> str:
    key = f"{tenant_id}|{store_id}|{pd.Timestamp(day).date()}|{kpi}|{detector}"
    return hashlib.sha1(key.encode()).hexdigest()[:20]


def seasonal_baseline(values: pd.Series, weekdays: pd.Series, trading: pd.Series,
                      judged: np.ndarray | None = None, thresholds: Thresholds = THRESHOLDS
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Expected value and spread per day from the same weekday's previous trading weeks.

    Baselines are drawn from trading days only; they are computed for every ``judged`` day
    (by default the trading days), so an unexpected closure is compared with normal days.
    """
    expected = np.full(len(values), np.nan)
    spread = np.full(len(values), np.nan)
    v = values.to_numpy(float)
    w = weekdays.to_numpy()
    t = trading.to_numpy(bool)
    j = t if judged is None else judged
    weeks = thresholds.weeks
    for weekday in range(7):
        sources = np.flatnonzero((w == weekday) & t)
        positions = np.flatnonzero((w == weekday) & j)
        if len(sources) < weeks or len(positions) == 0:
            continue
        # Row k of the windows holds the `weeks` source values before sources[k + weeks].
        windows = sliding_window_view(v[sources], weeks)
        earlier = np.searchsorted(sources, positions)  # sources strictly before each day
        positions, rows = positions[earlier >= weeks], earlier[earlier >= weeks] - weeks
        window = windows[rows]
        enough = (~np.isnan(window)).sum(axis=1) >= weeks // 2
        positions, window = positions[enough], window[enough]
        if len(positions) == 0:
            continue
        median = _rowwise_nanmedian(window)
        mad = _rowwise_nanmedian(np.abs(window - median[:, None])) * 1.4826
        expected[positions] = median
        spread[positions] = np.maximum(
            np.maximum(mad, thresholds.spread_floor * np.abs(median)), 1e-9)
    return expected, spread


def _rowwise_nanmedian(rows: np.ndarray) -> np.ndarray:
    """Median of each row's non-missing values; NaN for a row with none. The same values as
    ``np.nanmedian(rows, axis=1)``, which on short rows goes through masked arrays: slow
    enough to dominate a tenant's anomaly scan."""
    ordered = np.sort(rows, axis=1)  # NaNs sort last
    counts = (~np.isnan(rows)).sum(axis=1)
    out = np.full(len(rows), np.nan)
    present = np.flatnonzero(counts)
    low, high = (counts[present] - 1) // 2, counts[present] // 2
    out[present] = (ordered[present, low] + ordered[present, high]) / 2
    return out


def _local_level(deviation: np.ndarray, usable: np.ndarray, half_window: int = 3
                 ) -> np.ndarray:
    """Median deviation of the nearby trading days (the day itself excluded): how far the
    whole week runs from normal, e.g. during a promotion."""
    level = np.zeros(len(deviation))
    index = np.flatnonzero(usable)
    if len(index) == 0:
        return level
    padding = np.full(half_window, np.nan)
    around = sliding_window_view(np.r_[padding, deviation[index], padding], 2 * half_window + 1)
    neighbours = np.delete(around, half_window, axis=1)
    level[index] = np.nan_to_num(_rowwise_nanmedian(neighbours), nan=0.0)
    return level


def _level_shift(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray],
                 spread_orders: np.ndarray, usable: np.ndarray, t: Thresholds
                 ) -> tuple[np.ndarray, ...]:
    """For each day of a run of shifted trading days, from the one it is first seen on: how
    far revenue has run from normal since the run began, the run's length so far in trading
    days and the position of its first day (NaN, 0 and -1 elsewhere); and the days of drops
    short enough to leave the baselines.

    A window of ``shift_days`` trading days is off when its total revenue and total orders
    are both ``shift_deviation`` or more from their expected totals in one direction, and
    its orders at least ``shift_z`` times their noise. Totals, because a wholesaler's
    revenue jumps with single large orders from day to day even while a decline holds.
    """
    level = np.full(len(usable), np.nan)
    run_days = np.zeros(len(usable), dtype=int)
    run_start = np.full(len(usable), -1)
    forgotten = np.zeros(len(usable), dtype=bool)
    index = np.flatnonzero(usable)
    if len(index) < t.shift_days:
        return level, run_days, run_start, forgotten

    def cumulative(values: np.ndarray) -> np.ndarray:
        return np.r_[0.0, np.cumsum(np.nan_to_num(values[index]))]

    sums = {(kind, kpi): cumulative(source[kpi]) for kind, source in
            (("actual", actual), ("expected", expected)) for kpi in ("revenue", "orders")}

    def total(kind: str, kpi: str, first: np.ndarray | int, last: np.ndarray | int):
        return sums[kind, kpi][np.asarray(last) + 1] - sums[kind, kpi][np.asarray(first)]

    last = np.arange(t.shift_days - 1, len(index))
    first = last - t.shift_days + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        off = {kpi: total("actual", kpi, first, last) / total("expected", kpi, first, last) - 1
               for kpi in ("revenue", "orders")}
    # How far a run of days can wander by chance: each day's spread of orders in its recent
    # weeks, but never less than counting noise (Poisson plus overdispersion; eight weeks
    # give a median absolute deviation that is often too small); days taken as independent.
    daily = np.nan_to_num(expected["orders"][index])
    counting = daily + (t.overdispersion * daily) ** 2
    variance = np.r_[0.0, np.cumsum(np.maximum(np.nan_to_num(spread_orders[index]) ** 2,
                                               counting))]
    noise = np.sqrt(variance[last + 1] - variance[first])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (total("actual", "orders", first, last) - total("expected", "orders", first, last)
             ) / noise
    revenue, orders = np.nan_to_num(off["revenue"]), np.nan_to_num(off["orders"])
    with np.errstate(divide="ignore", invalid="ignore"):
        own_orders = actual["orders"][index] / expected["orders"][index] - 1
    significant = np.abs(np.nan_to_num(z)) >= t.shift_z
    for direction in (np.sign(revenue) < 0, np.sign(revenue) > 0):
        shifted = direction & (np.abs(revenue) >= t.shift_deviation) & (
            np.abs(orders) >= t.shift_deviation) & (np.sign(orders) == np.sign(revenue)) \
            & significant
        edges = np.diff(np.r_[0, shifted.astype(int), 0])
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        for w_first, w_end in zip(starts, ends, strict=True):
            begin, end = first[w_first], last[w_end - 1]
            # A window's total can stay off a day or two after the run: end on its last day
            # that is itself off.
            own = np.flatnonzero(np.sign(revenue[w_first]) * np.nan_to_num(
                own_orders[begin:end + 1]) >= t.shift_deviation)
            end = max(begin + own[-1], last[w_first]) if len(own) else end
            # Each day of the run from the one it is first seen on, saying how long it has
            # lasted so far.
            for k in range(last[w_first], end + 1):
                level[index[k]] = total("actual", "revenue", begin, k) / total(
                    "expected", "revenue", begin, k) - 1
                run_days[index[k]] = k - begin + 1
                run_start[index[k]] = index[begin]
            if revenue[w_first] < 0 and end - begin + 1 <= t.shift_forgotten_days:
                forgotten[index[begin:end + 1]] = True
    return level, run_days, run_start, forgotten


def _baselines(store: pd.DataFrame, days: pd.Series, sources: np.ndarray, judged: np.ndarray,
               t: Thresholds) -> tuple[dict[str, np.ndarray], ...]:
    """Actual, expected, spread and relative deviation of every KPI, per day."""
    actual, expected, spread, deviation = {}, {}, {}, {}
    for kpi, (column, _) in KPIS.items():
        actual[kpi] = store[column].astype(float).fillna(0).to_numpy()
        expected[kpi], spread[kpi] = seasonal_baseline(store[column].astype(float),
                                                       days.dt.day_of_week, pd.Series(sources),
                                                       judged, t)
        with np.errstate(divide="ignore", invalid="ignore"):
            deviation[kpi] = np.where(expected[kpi] > 0, actual[kpi] / expected[kpi] - 1, np.nan)
    return actual, expected, spread, deviation


def detect_store(store: pd.DataFrame, tenant_id: str, currency: str,
                 country_code: str | None = None, t: Thresholds = THRESHOLDS
                 ) -> tuple[list[dict], pd.DataFrame]:
    """Anomalies for one store, and its feature rows for the isolation forest."""
    store = store.sort_values("day").reset_index(drop=True)
    store_id = store["store_id"].iloc[0]
    days = pd.to_datetime(store["day"])
    is_closed = store["is_closed_day"].astype(bool).to_numpy()
    rule = ClosedDayRule.learn(pd.DataFrame({"ds": days, "y": store["net_revenue"],
                                             "closed": is_closed}))
    holiday = np.zeros(len(days), dtype=bool)
    if country_code and len(days):
        calendar = public_holidays(country_code, tuple(range(days.iloc[0].year,
                                                             days.iloc[-1].year + 1)))
        holiday = days.dt.date.isin(calendar).to_numpy()
    judged = ~rule.is_closed(days) & ~holiday  # days the store normally trades
    trading = judged & ~is_closed
    empty = judged & (store["orders"].to_numpy(float) == 0)
    actual, expected, spread, deviation = _baselines(store, days, trading, judged, t)
    usable = trading & (np.nan_to_num(expected["revenue"]) > 0) & ~empty
    shift, shift_days, shift_start, dropped = _level_shift(actual, expected, spread["orders"],
                                                           usable, t)
    # A drop the store recovered from must not become its normal: its days leave the weekday
    # baselines, or the weeks after it read as a rise. A longer one is the new normal.
    if dropped.any():
        actual, expected, spread, deviation = _baselines(store, days, trading & ~dropped, judged,
                                                         t)
        usable = trading & (np.nan_to_num(expected["revenue"]) > 0) & ~empty
        shift, shift_days, shift_start, _ = _level_shift(actual, expected, spread["orders"],
                                                         usable, t)
    has_baseline = np.nan_to_num(expected["revenue"]) > 0
    # Poisson: an empty day has probability exp(-expected orders). A holiday the store has
    # closed on before (a regional holiday) is its custom, not an outage.
    custom = np.array(habitual_holiday_closures(
        list(days.dt.date), list(store["orders"].fillna(0).to_numpy(float) == 0), country_code),
        dtype=bool)
    outage = empty & ~custom & (np.exp(-np.nan_to_num(expected["orders"])) <= t.outage_chance)

    # Point anomalies: the day against its own week (so a promotion week is not a spike).
    point, adjusted = {}, {}
    for kpi in ("revenue", "orders"):
        # Promotions and holidays move a week by tens of percent; bigger moves are level
        # shifts, judged separately, and must not excuse (or inflate) a single day.
        level = np.clip(_local_level(deviation[kpi], usable), *t.week_level)
        point[kpi] = (1 + deviation[kpi]) / (1 + level) - 1
        adjusted[kpi] = expected[kpi] * (1 + level)
    # Orders are counts: judge them by significance, not by percentages alone. Daily demand
    # varies more than Poisson (weather, events), hence the overdispersion term.
    mean_orders = np.maximum(np.nan_to_num(adjusted["orders"]), 1)
    orders_sigma = np.nan_to_num((actual["orders"] - adjusted["orders"]) / np.sqrt(
        mean_orders + (t.overdispersion * mean_orders) ** 2))
    same_direction = np.sign(np.nan_to_num(point["revenue"])) == np.sign(
        np.nan_to_num(point["orders"]))

    def off(values: np.ndarray, at_least: float) -> np.ndarray:
        return np.nan_to_num(np.abs(values), nan=0) >= at_least

    joint = off(point["revenue"], t.joint_deviation) & off(point["orders"], t.joint_deviation) \
        & same_direction & (np.abs(orders_sigma) >= t.joint_sigma)
    # Revenue alone swings with basket size at small stores; there it flags only with orders.
    # At a busy store no single basket triples a day (a bulk order or a price error does).
    revenue_alone = (np.nan_to_num(deviation["revenue"]) >= t.revenue_alone) \
        & (np.nan_to_num(adjusted["orders"]) >= t.busy_store_orders) \
        & (np.nan_to_num((actual["revenue"] - adjusted["revenue"]) / spread["revenue"])
           >= t.revenue_alone_spreads)
    # What a refund is measured against: the day's usual revenue, or what it actually sold
    # when that is more. After a drop the weekday baselines lag behind a recovered store,
    # and a refund that is small next to the day's own sales is not worth an alert.
    revenue_reference = np.maximum(np.nan_to_num(expected["revenue"]), actual["revenue"])
    flags = {
        "revenue": joint | revenue_alone,
        "orders": joint | (off(point["orders"], t.solo_deviation)
                           & (np.abs(orders_sigma) >= t.solo_sigma)),
        "avg_order_value": ((np.nan_to_num(deviation["avg_order_value"]) >= t.order_value_above)
                            | (np.nan_to_num(deviation["avg_order_value"])
                               <= t.order_value_below))
        & (np.nan_to_num(np.abs((actual["avg_order_value"] - expected["avg_order_value"])
                                / spread["avg_order_value"])) >= t.order_value_spreads),
        "returns": (np.nan_to_num(actual["returns"] / np.maximum(expected["returns"], 1e-9))
                    >= t.returns_times_usual)
        & (actual["returns"] >= t.returns_share_of_revenue * revenue_reference),
    }

    found: list[dict] = []
    for i in np.flatnonzero(judged & has_baseline):
        if outage[i]:
            found.append(_anomaly(tenant_id, store_id, days[i], "revenue", actual["revenue"][i],
                                  expected["revenue"][i], spread["revenue"][i], currency,
                                  t.band_half_width_spreads, outage=True))
            continue
        for kpi, flagged in flags.items():
            if flagged[i] and usable[i] and expected[kpi][i] > 0:
                anomaly = _anomaly(tenant_id, store_id, days[i], kpi, actual[kpi][i],
                                   expected[kpi][i], spread[kpi][i], currency,
                                   t.band_half_width_spreads)
                if kpi == "returns":
                    anomaly["severity"] = returns_severity(actual[kpi][i],
                                                           expected["revenue"][i])
                found.append(anomaly)
        if not np.isnan(shift[i]):
            found.append(_shift_anomaly(tenant_id, store_id, days[i], days[shift_start[i]],
                                        shift[i], shift_days[i], actual["revenue"][i],
                                        expected["revenue"][i]))
    features = pd.DataFrame({"day": days, "store_id": store_id})
    for kpi in KPIS:
        features[kpi] = np.log1p(np.clip(actual[kpi], 0, None)) - np.log1p(
            np.clip(expected[kpi], 0, None))
    return found, features[usable].dropna()


def _shift_anomaly(tenant_id: str, store_id: str, day: pd.Timestamp, started: pd.Timestamp,
                   run_deviation: float, run_days: int, actual: float, expected: float
                   ) -> dict:
    direction = "below" if run_deviation < 0 else "above"
    typical = 1 + run_deviation
    return {
        "anomaly_id": anomaly_id(tenant_id, store_id, day, "revenue", "level_shift"),
        "store_id": store_id, "day": day.date(), "kpi": "revenue", "detector": "level_shift",
        "actual": float(actual), "expected": float(expected), "lower_bound": None,
        "upper_bound": None, "score": float(run_deviation),
        # A sustained rise is rarely an emergency (a price error shows in average order
        # value); nobody is paged for good news.
        "severity": severity(expected * typical, expected) if run_deviation < 0 else "low",
        "explanation": (f"Revenue has run {abs(run_deviation):.0%} {direction} normal for "
                        f"{run_days} trading days from {started:%a %-d %b} (orders too)."),
    }


def _anomaly(tenant_id: str, store_id: str, day: pd.Timestamp, kpi: str, actual: float,
             expected: float, spread: float, currency: str, band_spreads: float,
             outage: bool = False) -> dict:
    return {
        "anomaly_id": anomaly_id(tenant_id, store_id, day, kpi, "seasonal_baseline"),
        "store_id": store_id, "day": day.date(), "kpi": kpi, "detector": "seasonal_baseline",
        "actual": float(actual), "expected": float(expected),
        "lower_bound": float(max(expected - band_spreads * spread, 0)),
        "upper_bound": float(expected + band_spreads * spread),
        "score": float((actual - expected) / spread),
        "severity": severity(actual, expected, outage),
        "explanation": explain(kpi, actual, expected, day, currency, outage),
    }


def detect_combinations(features: pd.DataFrame, already: set[tuple[str, object]],
                        tenant_id: str, contamination: float = 0.001, seed: int = 0
                        ) -> list[dict]:
    """Isolation forest over the KPI ratio vectors of all of a tenant's store-days."""
    columns = list(KPIS)
    if len(features) < 200:
        return []
    # Imported here: every Dagster process loading the definitions imports this module.
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=200, contamination=contamination, random_state=seed)
    vectors = features[columns].to_numpy()
    scores = forest.fit(vectors).score_samples(vectors)
    found = []
    # predict() would score every day again: an outlier is a score below the fitted offset
    for i in np.flatnonzero(scores < forest.offset_):
        row = features.iloc[i]
        key = (row["store_id"], pd.Timestamp(row["day"]).date())
        # Odd only in the small KPIs (a few returns) is not worth a manager's attention.
        if key in already or max(abs(row["revenue"]), abs(row["orders"])) < np.log(1.25):
            continue
        ratios = {k: float(np.expm1(row[k])) for k in ("revenue", "orders")}
        weekday = WEEKDAY_NAMES[pd.Timestamp(row["day"]).day_of_week]
        detail = ", ".join(f"{k} {abs(v):.0%} {'above' if v > 0 else 'below'} typical"
                           for k, v in ratios.items())
        found.append({
            "anomaly_id": anomaly_id(tenant_id, row["store_id"], row["day"], "combination",
                                     "isolation_forest"),
            "store_id": row["store_id"], "day": pd.Timestamp(row["day"]).date(),
            "kpi": "combination", "detector": "isolation_forest", "actual": None,
            "expected": None, "lower_bound": None, "upper_bound": None,
            "score": float(scores[i]), "severity": "low",
            "explanation": (f"Unusual mix of revenue, orders, order value and returns for a "
                            f"{weekday} ({detail})."),
        })
    return found


def detect_tenant(daily_kpis: pd.DataFrame, tenant_id: str, currency: str,
                  report_from: date | None = None, country_code: str | None = None,
                  thresholds: Thresholds = THRESHOLDS) -> pd.DataFrame:
    """All anomalies of one tenant's mart_daily_store_kpis rows (from ``report_from`` on, when
    given: earlier rows then only serve as history); the public holidays of ``country_code``
    are not judged."""
    found: list[dict] = []
    feature_frames = []
    for _, store in daily_kpis.groupby("store_id"):
        store_found, features = detect_store(store, tenant_id, currency, country_code,
                                             thresholds)
        found.extend(store_found)
        feature_frames.append(features)
    if feature_frames:
        already = {(f["store_id"], f["day"]) for f in found}
        found.extend(detect_combinations(pd.concat(feature_frames, ignore_index=True), already,
                                         tenant_id))
    result = pd.DataFrame(found, columns=ANOMALY_COLUMNS)
    if report_from is not None and not result.empty:
        result = result[pd.to_datetime(result["day"]).dt.date >= report_from]
    return result.reset_index(drop=True)
