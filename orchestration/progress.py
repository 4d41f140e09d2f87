"""Progress of long steps, for whoever watches: the run's own log in the Dagster UI, and the
``storepulse.progress`` Python logger, which `storepulse demo` prints on the terminal (its
runs execute in its own process)."""

from __future__ import annotations

import logging

from dagster import AssetExecutionContext

PROGRESS = logging.getLogger("storepulse.progress")


def report(context: AssetExecutionContext, message: str) -> None:
    context.log.info(message)
    PROGRESS.info(message)


class NodeProgress:
    """Counts finished dbt nodes (models and tests) against the selection, and reports about
    every tenth of the way and at the end."""

    def __init__(self, context: AssetExecutionContext, what: str) -> None:
        self.context = context
        self.what = what
        self.total = len(context.selected_asset_keys) + len(context.selected_asset_check_keys)
        self.done = 0
        self._step = max(1, self.total // 10)
        self._next = self._step

    def node_done(self, name: str) -> None:
        self.done += 1
        if self.done >= self._next or self.done == self.total:
            report(self.context, f"{self.what}: {self.done}/{self.total} nodes done ({name})")
            self._next = self.done + self._step
