"""The landing folder: ``landing/<tenant>/<source>/<file>``, where ``<source>`` names a spec."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ingestion.loader import LoadResult, ProgressFn, load_file
from ingestion.spec import SourceSpec, spec_for_source

_TARGET_ORDER = {"stores": 0, "products": 1, "sales_lines": 2}


@dataclass(frozen=True)
class LandingFile:
    tenant_id: str
    source: str
    path: Path
    spec: SourceSpec

    @property
    def sort_key(self) -> tuple:
        # Catalogues first: sales rows are checked against the store catalogue.
        return (_TARGET_ORDER[self.spec.target], self.source, self.path.name)


def tenant_folders(landing_dir: Path) -> list[str]:
    if not landing_dir.is_dir():
        return []
    return sorted(p.name for p in landing_dir.iterdir() if p.is_dir() and not
                  p.name.startswith("."))


def discover(landing_dir: Path, tenant_id: str) -> list[LandingFile]:
    """Every data file for ``tenant_id``, in load order. Unknown sources raise SpecError."""
    tenant_dir = Path(landing_dir) / tenant_id
    found: list[LandingFile] = []
    if not tenant_dir.is_dir():
        return found
    for source_dir in sorted(p for p in tenant_dir.iterdir() if p.is_dir()):
        if source_dir.name.startswith("."):
            continue
        spec = spec_for_source(source_dir.name, source_dir)
        for path in sorted(source_dir.iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.name != "spec.yaml":
                found.append(LandingFile(tenant_id, source_dir.name, path, spec))
    return sorted(found, key=lambda f: f.sort_key)


def ingest_tenant(engine: Engine, landing_dir: Path, tenant_id: str,
                  progress: ProgressFn | None = None,
                  on_file: Callable[[LoadResult], None] | None = None,
                  batch_id: str | None = None) -> list[LoadResult]:
    """Load every file of the tenant's landing folder; already-loaded files are skipped."""
    results = []
    for item in discover(landing_dir, tenant_id):
        result = unchanged_since_loaded(engine, item, tenant_id) or load_file(
            engine, item.path, tenant_id, item.spec, source=item.source,
            file_name=item.path.name, progress=progress, batch_id=batch_id)
        results.append(result)
        if on_file:
            on_file(result)
    touched = sorted({r.target for r in results if r.status == "loaded" and r.rows_loaded})
    if touched:
        # Fresh statistics before anything reads the batch: the quality checks and dbt that
        # follow plan their scans on them (a stale estimate made GE's queries 5x slower).
        with engine.begin() as conn:
            for table in [*touched, "ingest_files"]:
                conn.execute(sa.text(f"analyze raw.{table}"))
    return results


def unchanged_since_loaded(engine: Engine, item: LandingFile, tenant_id: str
                           ) -> LoadResult | None:
    """A file whose current version was loaded after its last modification, with the same
    size, is not read again (hashing years of history on every run costs more than the new
    day). Anything else goes to the loader, where the sha256 ledger decides."""
    stat = item.path.stat()
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "select file_id, version from raw.ingest_files where tenant_id = :t and "
            "source = :s and file_name = :n and status = 'loaded' and bytes = :b and "
            "loaded_at >= to_timestamp(:m)"),
            {"t": tenant_id, "s": item.source, "n": item.path.name, "b": stat.st_size,
             "m": stat.st_mtime}).first()
    if row is None:
        return None
    return LoadResult(path=item.path, tenant_id=tenant_id, source=item.source,
                      status="duplicate", target=item.spec.target, file_id=row.file_id,
                      version=row.version,
                      error="same size and not modified since it was loaded; not re-read")


def pending_files(engine: Engine, landing_dir: Path, tenant_id: str) -> dict[str, str]:
    """The tenant's landing files the ledger has not seen as they are now: no row for the
    same source and name, recorded after the file's last change with the same size.
    Returns {relative path: size:mtime}. Whoever loaded a file (a run, the CLI, the demo),
    it is not pending again until it changes."""
    marks = fingerprints(landing_dir, tenant_id)
    if not marks:
        return {}
    with engine.connect() as conn:
        seen = conn.execute(sa.text(
            "select source, file_name, bytes, extract(epoch from max(loaded_at)) as recorded "
            "from raw.ingest_files where tenant_id = :t group by source, file_name, bytes"),
            {"t": tenant_id}).all()
    recorded = {(f"{r.source}/{r.file_name}", int(r.bytes)): float(r.recorded) for r in seen}
    pending = {}
    for path, mark in marks.items():
        size, mtime_ns = (int(part) for part in mark.split(":"))
        when = recorded.get((path, size))
        if when is None or when < mtime_ns / 1e9:
            pending[path] = mark
    return pending


def fingerprints(landing_dir: Path, tenant_id: str) -> dict[str, str]:
    """A cheap change marker per file (size and mtime); the loader's sha256 stays the authority."""
    tenant_dir = Path(landing_dir) / tenant_id
    if not tenant_dir.is_dir():
        return {}
    marks = {}
    for path in sorted(tenant_dir.glob("*/*")):
        if path.is_file() and not path.name.startswith(".") and path.name != "spec.yaml":
            stat = path.stat()
            marks[str(path.relative_to(tenant_dir))] = f"{stat.st_size}:{stat.st_mtime_ns}"
    return marks
