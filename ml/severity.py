"""What a manager reads of an anomaly: its severity and its one-line explanation.

Severity rule (documented for managers):

============  =============================================================================
critical      an outage (no sales on a normal trading day), or actual >= 3x or <= 25% of
              expected
high          at least 60% above or below expected
medium        at least 50% above or below expected
low           any other flagged value, and combination anomalies from the isolation forest
============  =============================================================================

Returns are judged by the money they take back, not by their ratio to usual returns (which
are near zero on most days, so any refund looks huge): critical when they reach a typical
day's revenue, high at half of it, medium at 35%, low from the 25% at which they flag.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# The KPIs judged: the daily mart's column, and the label an explanation gives it
KPIS = {
    "revenue": ("net_revenue", "Revenue"),
    "orders": ("orders", "Orders"),
    "avg_order_value": ("avg_order_value", "Average order value"),
    "returns": ("returns_amount", "Returns"),
}
MONEY_KPIS = {"revenue", "avg_order_value", "returns"}
CURRENCY_SYMBOLS = {"GBP": "£", "USD": "$", "EUR": "€", "JPY": "¥"}
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def severity(actual: float, expected: float, outage: bool = False) -> str:
    """The documented rule above, for one flagged value."""
    if outage:
        return "critical"
    if expected <= 0:
        return "high" if actual > 0 else "low"
    ratio = actual / expected
    if ratio >= 3 or ratio <= 0.25:
        return "critical"
    deviation = abs(ratio - 1)
    if deviation >= 0.60:
        return "high"
    if deviation >= 0.50:
        return "medium"
    return "low"


def returns_severity(returns: float, usual_revenue: float) -> str:
    """Severity of a returns anomaly, from its share of the day's usual revenue."""
    share = returns / usual_revenue if usual_revenue > 0 else np.inf
    if share >= 1.0:
        return "critical"
    if share >= 0.5:
        return "high"
    if share >= 0.35:
        return "medium"
    return "low"


def money(value: float, currency: str) -> str:
    symbol = CURRENCY_SYMBOLS.get(currency)
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


def explain(kpi: str, actual: float, expected: float, day: pd.Timestamp, currency: str,
            outage: bool = False) -> str:
    weekday = WEEKDAY_NAMES[pd.Timestamp(day).day_of_week]
    label = KPIS[kpi][1]

    def fmt(v: float) -> str:
        return money(v, currency) if kpi in MONEY_KPIS else f"{v:,.0f}"

    if outage:
        return (f"No sales on a {weekday} the store normally trades "
                f"(a typical {weekday} brings {money(expected, currency)}).")
    if expected > 0 and actual >= 2 * expected:
        return (f"{label} {actual / expected:.1f}x a typical {weekday} "
                f"({fmt(actual)} vs about {fmt(expected)}).")
    change = (actual - expected) / expected if expected else 0.0
    direction = "above" if change > 0 else "below"
    return (f"{label} {abs(change):.0%} {direction} a typical {weekday} "
            f"({fmt(actual)} vs about {fmt(expected)}).")
