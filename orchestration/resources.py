"""Dagster resources: thin wrappers that hand library code what it needs."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy.engine import URL, Engine

from storepulse.settings import load_settings
from storepulse.warehouse import get_engine, parse_database_url, resolve_database_url


class WarehouseResource(ConfigurableResource):
    """The platform's PostgreSQL.

    With no ``database_url`` configured, StorePulse's own settings decide: ``DATABASE_URL`` when
    set, else the embedded server under ``STOREPULSE_HOME``.
    """

    database_url: str | None = Field(
        default=None, description="Overrides DATABASE_URL (tests point this at their database)")

    def url(self) -> URL:
        if self.database_url:
            return parse_database_url(self.database_url)
        return resolve_database_url()

    def engine(self) -> Engine:
        return get_engine(self.url())



class LandingResource(ConfigurableResource):
    """The landing folder: ``landing/<tenant>/<source>/`` where POS exports arrive."""

    landing_dir: str | None = Field(
        default=None, description="Overrides STOREPULSE_LANDING / $STOREPULSE_HOME/landing")
    settle_seconds: float | None = Field(
        default=None, ge=0,
        description="Overrides STOREPULSE_LANDING_SETTLE_SECONDS (5): a file is loaded once it "
                    "has not changed for this long, so a copy in progress is not read half "
                    "written")

    def path(self) -> Path:
        return Path(self.landing_dir) if self.landing_dir else load_settings().landing_dir

    def settle(self) -> float:
        if self.settle_seconds is not None:
            return self.settle_seconds
        return load_settings().landing_settle_seconds
