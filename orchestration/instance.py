"""The Dagster instance in DAGSTER_HOME, for the command line."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import DagsterInstance


@contextmanager
def dagster_home_instance() -> Iterator[DagsterInstance | None]:
    """The instance in DAGSTER_HOME, or None when none is set up (no daemon to tell)."""
    if not os.environ.get("DAGSTER_HOME"):
        yield None
        return
    # An instance folder without dagster.yaml (what `dagster dev` leaves) is normal here:
    # Dagster's warning about it would be noise on the command line.
    dagster_logger = logging.getLogger("dagster")
    level = dagster_logger.level
    dagster_logger.setLevel(logging.ERROR)
    try:
        with DagsterInstance.get() as instance:
            yield instance
    finally:
        dagster_logger.setLevel(level)
