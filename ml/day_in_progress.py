"""Whether a tenant's last day was still being traded when its export was taken.

An export taken during trading hours holds part of its last day, and a part-day reads as a
collapse: a store that has not opened yet looks like an outage. A POS that exports at the
close holds the whole day, and that day should be judged at once. Told apart from the data:
the day is in progress when its latest sale (across the tenant's stores, in its local time)
is at least an hour before the earliest "latest sale" of the same weekday in the previous 8
weeks (at least 3 of them with sales: a younger tenant's days are judged as exported), and
those weekdays brought enough orders after that time that an empty rest of the day would be
a 1-in-100 chance (Poisson; about 5 orders). Where fewer follow, as at a shop of a few orders
a day, a whole day often ends that early by chance and the times cannot tell: the day is
judged as exported (an empty day at such a shop is no outage either, see ``ml.anomalies``).
Exports that carry dates without times have every sale at midnight, so no day is ever in
progress for them.

A day held back is judged once a later export carries it past that time, or carries a later
day: a store that really closed early is then reported, one export late.

Forecasting takes the same rule: a day in progress is forecast instead of learned from, and
every other last day is learned from, however low. Only where the times cannot tell (exports
without times of day, a tenant with too few earlier weekdays, a day ending early where few
orders usually follow) does it fall back on the sales
alone (``ml.forecasting.drop_partial_last_day``): forecasting a whole day instead of learning
from it costs little. The anomaly scan has no such fallback, a low day being what it looks
for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, time, timedelta

import pandas as pd

REFERENCE_WEEKS = 8
MARGIN = timedelta(hours=1)
MIN_REFERENCE_DAYS = 3
# An empty rest of the day must be at most this likely on the usual orders after its time
EMPTY_REST_CHANCE = 0.01


@dataclass(frozen=True)
class DayInProgress:
    day: date
    last_sale: time  # the latest sale so far, local time
    usually_until: time  # the earliest latest-sale of the same weekday in the reference weeks
    reference_days: int
    usual_orders_after: float  # their mean number of orders after ``last_sale``

    def reason(self) -> str:
        return (f"its sales so far end at {self.last_sale:%H:%M}, and on each of the last "
                f"{self.reference_days} {self.day:%A}s they went on to "
                f"{self.usually_until:%H:%M} or later ({self.usual_orders_after:.0f} orders "
                f"after {self.last_sale:%H:%M} on average)")

    def describe(self) -> str:
        return (f"{self.day} not judged yet: {self.reason()}; it is judged when an export "
                f"carries it further")


@dataclass(frozen=True)
class LastDay:
    """What the export's times of day tell about the tenant's last day."""

    day: date
    # False when they cannot tell: every sale at midnight (an export without times of day),
    # too few of the same weekday before it, or a day ending early where so few orders
    # usually follow that a whole day often does
    told: bool
    in_progress: DayInProgress | None = None


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def read_last_day(last_sales: pd.DataFrame, weeks: int = REFERENCE_WEEKS,
                  margin: timedelta = MARGIN, min_reference_days: int = MIN_REFERENCE_DAYS,
                  empty_rest_chance: float = EMPTY_REST_CHANCE) -> LastDay | None:
    """The tenant's last day and whether it looks cut short by the export (see the module's
    rule); None when there is no sale at all.

    ``last_sales`` has one row per day with any order: ``day`` (a date), ``last_sale`` (the
    local time of that day's latest order, as a ``datetime.time``) and ``orders_after`` (the
    day's orders later than the last day's ``last_sale``), as ``ml.tables`` reads them."""
    if last_sales.empty:
        return None
    frame = last_sales.assign(day=pd.to_datetime(last_sales["day"])).sort_values("day")
    last_day, last_sale = frame["day"].iloc[-1], frame["last_sale"].iloc[-1]
    reference = frame[(frame["day"] < last_day)
                      & (frame["day"] >= last_day - pd.Timedelta(weeks=weeks))
                      & (frame["day"].dt.day_of_week == last_day.day_of_week)]
    has_times = any(_seconds(t) > 0 for t in frame["last_sale"])
    if len(reference) < min_reference_days or not has_times:
        return LastDay(last_day.date(), told=False)
    usually_until = min(reference["last_sale"], key=_seconds)
    if _seconds(last_sale) + margin.total_seconds() > _seconds(usually_until):
        return LastDay(last_day.date(), told=True)
    usual_orders_after = float(reference["orders_after"].mean())
    if math.exp(-usual_orders_after) > empty_rest_chance:
        return LastDay(last_day.date(), told=False)
    return LastDay(last_day.date(), told=True, in_progress=DayInProgress(
        last_day.date(), last_sale, usually_until, len(reference), usual_orders_after))


def day_in_progress(last_sales: pd.DataFrame, **rule) -> DayInProgress | None:
    """The tenant's last day, if it looks cut short by the export (see ``read_last_day``)."""
    last_day = read_last_day(last_sales, **rule)
    return last_day.in_progress if last_day is not None else None


def judged_days(daily_kpis: pd.DataFrame, in_progress: DayInProgress | None) -> pd.DataFrame:
    """The KPI rows to judge: all but those of the day in progress, if there is one."""
    if in_progress is None:
        return daily_kpis
    return daily_kpis[pd.to_datetime(daily_kpis["day"]) != pd.Timestamp(in_progress.day)]
