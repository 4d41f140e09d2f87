"""Forecasting, backtesting and anomaly detection. Plain Python: no Dagster, no environment."""
