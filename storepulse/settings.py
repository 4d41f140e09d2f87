"""Everything StorePulse reads from the environment, in one place.

Only this package reads environment variables; libraries receive values as arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    home: Path
    landing_dir: Path
    sample_dir: Path
    metabase_url: str | None
    role_prefix: str = "tenant_"

    @property
    def pgdata_dir(self) -> Path:
        return self.home / "pgdata"


def load_settings() -> Settings:
    home = Path(os.environ.get("STOREPULSE_HOME", ".storepulse")).resolve()
    landing = Path(os.environ.get("STOREPULSE_LANDING", home / "landing")).resolve()
    return Settings(
        database_url=os.environ.get("DATABASE_URL") or None,
        home=home,
        landing_dir=landing,
        sample_dir=home / "sample",
        metabase_url=os.environ.get("METABASE_URL") or None,
        role_prefix=os.environ.get("STOREPULSE_ROLE_PREFIX", "tenant_"),
    )
