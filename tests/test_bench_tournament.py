"""The tournament bench's combinations: scored from their members' forecasts, and weighted only
by what was known before the days they forecast."""

import pandas as pd
import pytest

from bench.forecast_tournament import HELD_OUT, combination_table

# Relative error of each model's forecast per fold (every actual is 100, so a fold's WAPE is
# its error). Fold HELD_OUT is the held-out month; folds 1-3 the backtest before it. Series
# "b" swaps the models' errors, so weights pooled across series would come out equal.
ERRORS = {
    "a": {"prophet": {1: 0.10, 2: 0.10, 3: 0.10, HELD_OUT: 0.05},
          "mstl": {1: 0.40, 2: 0.20, 3: 0.20, HELD_OUT: -0.10}},
    "b": {"prophet": {1: 0.40, 2: 0.20, 3: 0.20, HELD_OUT: -0.10},
          "mstl": {1: 0.10, 2: 0.10, 3: 0.10, HELD_OUT: 0.05}},
}


def daily_forecasts() -> pd.DataFrame:
    rows = []
    for series, models in ERRORS.items():
        for model, folds in models.items():
            for fold, error in folds.items():
                for day in range(2):
                    rows.append({"series": series, "model_name": model, "fold": fold,
                                 "ds": pd.Timestamp("2026-01-01")
                                 + pd.Timedelta(days=28 * fold + day),
                                 "actual": 100.0, "yhat": 100.0 * (1 + error),
                                 "predicted_closed": False})
    return pd.DataFrame(rows)


def test_the_equal_mean_is_scored_from_its_members_forecasts():
    table = combination_table(daily_forecasts())
    row = table.loc["mean(prophet, mstl)"]
    assert row.members == ("prophet", "mstl")
    assert row.mean_wape == pytest.approx(((0.10 + 0.40) / 2 + 0.15 + 0.15) / 3)
    assert row.holdout_wape == pytest.approx(abs(0.05 - 0.10) / 2)
    # A single model's row is its own forecast: series "a" 10% in every fold, "b" 40/20/20%.
    assert table.loc["prophet"].mean_wape == pytest.approx((0.10 + 0.80 / 3) / 2)
    assert table.loc["prophet"].holdout_wape == pytest.approx((0.05 + 0.10) / 2)


def test_weights_come_from_the_other_backtest_folds_of_the_same_series_only():
    table = combination_table(daily_forecasts())
    weighted = table.loc["weighted mean of the combinable"]
    # Series "a", fold 1: prophet's other folds averaged 10% WAPE, mstl's 20%, so the weights
    # are 1/0.1 : 1/0.2. With fold 1's own 40% counted, or series "b" pooled in, they differ.
    fold_1 = (2 / 3) * 0.10 + (1 / 3) * 0.40
    folds_2_and_3 = 0.75 * 0.10 + 0.25 * 0.20  # prophet 10%, mstl (40% + 20%) / 2
    assert weighted.mean_wape == pytest.approx((fold_1 + 2 * folds_2_and_3) / 3)
    # The held-out month is weighted by all three backtest folds, never by itself.
    w_prophet = (1 / 0.10) / (1 / 0.10 + 1 / (0.80 / 3))
    assert weighted.holdout_wape == pytest.approx(abs(w_prophet * 0.05
                                                      - (1 - w_prophet) * 0.10))
