"""Pictures for asset metadata: actual vs forecast with its bands."""

from __future__ import annotations

import io
from pathlib import Path
from types import ModuleType

import pandas as pd


def _pyplot() -> ModuleType:
    """matplotlib's pyplot, imported on the first picture rather than with this module: every
    Dagster process that loads the definitions imports this module, and most draw nothing."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot

    return matplotlib.pyplot


def forecast_plot(history: pd.DataFrame, forecast: pd.DataFrame, title: str,
                  history_days: int = 120) -> bytes:
    """PNG: the last ``history_days`` of actuals, then the forecast with 80% and 95% bands."""
    plt = _pyplot()
    recent = history.tail(history_days)
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=100)
    ax.plot(pd.to_datetime(recent["ds"]), recent["y"], color="#333333", lw=1, label="actual")
    ds = pd.to_datetime(forecast["ds"])
    ax.fill_between(ds, forecast["yhat_lower_95"], forecast["yhat_upper_95"], color="#9ecae1",
                    alpha=0.5, label="95% interval")
    ax.fill_between(ds, forecast["yhat_lower_80"], forecast["yhat_upper_80"], color="#4292c6",
                    alpha=0.5, label="80% interval")
    ax.plot(ds, forecast["yhat"], color="#08519c", lw=1.5, label="forecast")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=8, ncols=4)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def save_forecast_plot(directory: Path, name: str, png: bytes, keep: int = 10) -> Path:
    """Write the picture as ``directory/name.png`` and keep only the ``keep`` newest there:
    asset metadata then carries a path, not the picture."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    path.write_bytes(png)
    for old in sorted(directory.glob("*.png"), key=lambda p: p.stat().st_mtime)[:-keep]:
        old.unlink(missing_ok=True)
    return path
