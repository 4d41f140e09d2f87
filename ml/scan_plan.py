"""Which days an anomaly scan reads and judges: all history the first time and weekly, else
the recent days with half a year behind them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta


@dataclass(frozen=True)
class ScanPlan:
    """Which KPI days to read and which days' anomalies to report."""

    full: bool
    kpis_from: date | None = None  # None: all history
    report_from: date | None = None  # None: every day read

    def describe(self) -> str:
        if self.full:
            return "full history"
        return f"recent: days from {self.report_from} judged with history from {self.kpis_from}"


def plan_scan(last_scanned_through: date | None, last_full_scan: datetime | None,
              now: datetime, force_full: bool = False, full_every: timedelta = timedelta(days=7),
              context_days: int = 180, rejudge_days: int = 30) -> ScanPlan:
    """A full scan the first time, weekly, or when asked; otherwise only the days since the
    last scan (and the month before it, where late data may have changed them), with half a
    year of history for the weekday baselines, level shifts and the isolation forest."""
    if (force_full or last_scanned_through is None or last_full_scan is None
            or now - last_full_scan >= full_every):
        return ScanPlan(full=True)
    report_from = last_scanned_through - timedelta(days=rejudge_days)
    return ScanPlan(full=False, kpis_from=report_from - timedelta(days=context_days),
                    report_from=report_from)
