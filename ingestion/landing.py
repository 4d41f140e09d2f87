"""The landing folder: ``landing/<tenant>/<source>/<file>``, where ``<source>`` names a spec."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ingestion.loader import (
    LoadResult,
    ProgressFn,
    load_file,
    refresh_statistics,
    reject_file,
)
from ingestion.readers import detect_spec
from ingestion.spec import SourceSpec, SpecError, spec_for_source

_TARGET_ORDER = {"stores": 0, "products": 1, "sales_lines": 2}


@dataclass(frozen=True)
class LandingFile:
    tenant_id: str
    source: str
    path: Path
    spec: SourceSpec | None
    # Why the file cannot be loaded at all (its source's spec is invalid, it is a link), or
    # None; such a file is recorded as rejected without being read.
    problem: str | None = None

    @property
    def target(self) -> str:
        return self.spec.target if self.spec else "sales_lines"

    @property
    def sort_key(self) -> tuple:
        # Catalogues first: sales rows are checked against the store catalogue.
        return (_TARGET_ORDER[self.target], self.source, self.path.name)


def unregistered_folders(landing_dir: Path, registered: set[str]) -> dict[str, int]:
    """Landing folders that hold files but name no registered tenant (a typo, or a tenant
    not onboarded yet), with their file counts: nothing reads them, so they are reported
    instead of waiting unseen."""
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        return {}
    found = {}
    for folder in sorted(landing_dir.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir() or folder.name in registered:
            continue
        files = sum(1 for _ in _visible_files(folder))
        if files:
            found[folder.name] = files
    return found


def unregistered_message(folder: str, files: int) -> str:
    return (f"landing/{folder}/ holds {files} file(s) but no tenant '{folder}' is registered: "
            f"register it (storepulse tenants add {folder} --name ...) or move the files to "
            "a registered tenant's folder")


OUTSIDE = ("is a symbolic link; landing files must be regular files inside "
           "landing/<tenant>/ (links are never followed)")


def discover(landing_dir: Path, tenant_id: str) -> list[LandingFile]:
    """Every data file for ``tenant_id``, in load order. A file that cannot be loaded at all
    (its source has no valid spec; it is a link, which could point at another tenant's export
    or a system file; it is not in a source folder) comes with its ``problem`` instead of
    stopping the others."""
    found: list[LandingFile] = []
    specs: dict[str, tuple[SourceSpec | None, str | None]] = {}
    for entry in landing_entries(Path(landing_dir) / tenant_id):
        if entry.misplaced:
            found.append(LandingFile(tenant_id, entry.source, entry.path, None,
                                     f"{entry.path.name} {entry.misplaced}"))
            continue
        if entry.source not in specs:
            specs[entry.source] = _source_spec(entry.path.parent)
        spec, problem = specs[entry.source]
        if entry.path.is_symlink():
            found.append(LandingFile(tenant_id, entry.source, entry.path, spec,
                                     f"{entry.path.name} {OUTSIDE}"))
        else:
            found.append(LandingFile(tenant_id, entry.source, entry.path, spec,
                                     problem and f"{entry.path.name}: {problem}"))
    return sorted(found, key=lambda f: f.sort_key)


def _source_spec(source_dir: Path) -> tuple[SourceSpec | None, str | None]:
    if source_dir.is_symlink():
        return None, f"its folder {source_dir.name}/ {OUTSIDE}"
    try:
        return spec_for_source(source_dir.name, source_dir), None
    except SpecError as exc:
        return None, f"no usable spec for source '{source_dir.name}': {exc}"


@dataclass(frozen=True)
class LandingEntry:
    source: str  # the source folder's name; for a misplaced file, the folder it is in
    path: Path
    misplaced: str | None = None  # where the file should be, when it is not there


def landing_entries(tenant_dir: Path) -> list[LandingEntry]:
    """Every file (or link) in a tenant's landing folder, at any depth, but hidden ones and
    specs. Files belong in ``<tenant>/<source>/``; one beside the source folders or in a
    folder inside one is listed as misplaced, so that it gets a ledger row saying where to
    move it instead of waiting unseen. Links to folders are not followed below a source."""
    if not tenant_dir.is_dir() or tenant_dir.is_symlink():
        return []
    entries = []
    for top in sorted(tenant_dir.iterdir()):
        if top.name.startswith("."):
            continue
        if not top.is_dir():
            entries.append(LandingEntry(".", top, "is not in a source folder: move it to "
                                                  f"landing/{tenant_dir.name}/<source>/, the "
                                                  "folder named for its spec"))
            continue
        for path in sorted(top.iterdir()):
            if path.name.startswith(".") or path.name == "spec.yaml":
                continue
            if path.is_file() or path.is_symlink():
                entries.append(LandingEntry(top.name, path))
            elif path.is_dir():
                entries.extend(_nested(tenant_dir, top, path))
    return entries


def _nested(tenant_dir: Path, source_dir: Path, folder: Path) -> list[LandingEntry]:
    where = (f"is in a folder inside {source_dir.name}/: move it up to "
             f"landing/{tenant_dir.name}/{source_dir.name}/ (subfolders are not read)")
    return [LandingEntry(path.parent.relative_to(tenant_dir).as_posix(), path, where)
            for path in _visible_files(folder)]


def _visible_files(folder: Path) -> Iterator[Path]:
    """Files (and links) at any depth under ``folder``, hidden files and folders left out;
    links to folders are not followed."""
    for parent, folders, names in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in sorted(names):
            if not name.startswith("."):
                yield Path(parent) / name


def given_files(path: Path, tenant_id: str, source: str | None = None) -> list[LandingFile]:
    """The files of ``storepulse ingest PATH`` (the file, or a folder's files but its
    spec.yaml), in name order, each with its spec: the named source's, else the one whose
    columns fit the file. Outside the landing layout no folder names a source; a file no
    spec fits comes with its problem, like a landing file with no usable spec."""
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name != "spec.yaml") \
        if path.is_dir() else [path]
    found = []
    for file in files:
        try:
            spec = spec_for_source(source, file.parent) if source else detect_spec(file)
        except SpecError as exc:
            found.append(LandingFile(tenant_id, source or file.parent.name, file, None,
                                     str(exc)))
        else:
            found.append(LandingFile(tenant_id, source or spec.name, file, spec))
    return found


def still_changing(path: Path, settle_seconds: float, now: float | None = None) -> bool:
    """Whether ``path`` changed less than ``settle_seconds`` ago: a file being copied or
    uploaded in place (scp, SFTP, a mounted share) is visible while only part of it is
    written, and a day loaded from its first half reads as a collapse in sales."""
    return _left_to_settle(path.lstat(), settle_seconds, now) > 0


def _left_to_settle(stat: os.stat_result, settle_seconds: float,
                    now: float | None = None) -> float:
    """Seconds until a file of this ``stat`` has been unchanged for ``settle_seconds`` (0: it
    has). The inode's change time moves on every write and cannot be set back by a copy
    tool. A change time ahead of ``now`` is another machine's clock (a network share): it
    cannot be judged, and the file is taken as it is."""
    if settle_seconds <= 0:
        return 0.0
    age = (time.time() if now is None else now) - stat.st_ctime
    return settle_seconds - age if 0 <= age < settle_seconds else 0.0


def wait_until_still(landing_dir: Path, settle_seconds: float) -> float:
    """Sleep until no file in the landing folder changed in the last ``settle_seconds``
    (at most that long): what the landing sensor's next tick would wait for, for a loop that
    runs once. Returns the seconds slept."""
    now = time.time()
    pause = 0.0
    for path in _visible_files(Path(landing_dir)):
        try:
            pause = max(pause, _left_to_settle(path.lstat(), settle_seconds, now))
        except FileNotFoundError:  # moved away meanwhile
            continue
    if pause > 0:
        time.sleep(pause)
    return pause


def ingest_tenant(engine: Engine, landing_dir: Path, tenant_id: str,
                  progress: ProgressFn | None = None,
                  on_file: Callable[[LoadResult], None] | None = None,
                  batch_id: str | None = None, settle_seconds: float = 0.0,
                  on_wait: Callable[[LandingFile], None] | None = None) -> list[LoadResult]:
    """Load every file of the tenant's landing folder; already-loaded (or already rejected)
    files are skipped. A file that fails is recorded as rejected and the next one goes on;
    only a lost database connection ends the run early (ConnectionLost). A file that changed
    less than ``settle_seconds`` ago may still be being written: it is left, untouched and
    still pending, for a later run (``on_wait`` is told)."""
    results = []
    for item in discover(landing_dir, tenant_id):
        if still_changing(item.path, settle_seconds):
            if on_wait:
                on_wait(item)
            continue
        result = unchanged_since_recorded(engine, item, tenant_id)
        if result is None and item.problem:
            result = reject_file(engine, item.path, tenant_id, item.source, item.target,
                                 item.path.name, item.problem, batch_id)
        elif result is None:
            result = load_file(engine, item.path, tenant_id, item.spec, source=item.source,
                               file_name=item.path.name, progress=progress, batch_id=batch_id)
        results.append(result)
        if on_file:
            on_file(result)
    refresh_statistics(engine, results)
    return results


def unchanged_since_recorded(engine: Engine, item: LandingFile, tenant_id: str
                             ) -> LoadResult | None:
    """A file whose latest ledger row (loaded, rejected, or a duplicate of a loaded one) was
    written after its last change (``_changed_ns``), with the same size, is not read again
    (hashing years of history on every run costs more than the new day; a rejected file stays
    rejected until it changes). Anything else goes to the loader, where the sha256 ledger
    decides."""
    stat = item.path.lstat()
    changed = _changed_ns(stat) / 1e9
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "select coalesce(duplicate_of, file_id) as file_id, version, status, error "
            "from raw.ingest_files where tenant_id = :t and source = :s and file_name = :n "
            "and status in ('loaded', 'rejected', 'duplicate') "
            "and bytes = :b and loaded_at >= to_timestamp(:m) "
            "order by loaded_at desc limit 1"),
            {"t": tenant_id, "s": item.source, "n": item.path.name, "b": stat.st_size,
             "m": changed}).first()
    if row is None:
        return None
    if row.status == "rejected":
        return LoadResult(path=item.path, tenant_id=tenant_id, source=item.source,
                          status="rejected", target=item.target, file_id=row.file_id,
                          error=f"unchanged since it was rejected: {row.error}")
    return LoadResult(path=item.path, tenant_id=tenant_id, source=item.source,
                      status="duplicate", target=item.target, file_id=row.file_id,
                      version=row.version,
                      error=(f"{row.error}; unchanged since" if row.status == "duplicate"
                             else "same size and not modified since it was loaded; not re-read"))


def pending_files(engine: Engine, landing_dir: Path, tenant_id: str,
                  settle_seconds: float = 0.0, now: float | None = None) -> dict[str, str]:
    """The tenant's landing files the ledger has not seen as they are now: no row for the
    same source and name, recorded after the file's last change with the same size.
    Returns {relative path: size:changed}. Whoever loaded a file (a run, the CLI, the
    demo), it is not pending again until it changes. A file still changing (see
    ``still_changing``) is not pending yet."""
    marks = fingerprints(landing_dir, tenant_id, settle_seconds, now)
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
        size, changed_ns = (int(part) for part in mark.split(":"))
        when = recorded.get((path, size))
        if when is None or when < changed_ns / 1e9:
            pending[path] = mark
    return pending


def fingerprints(landing_dir: Path, tenant_id: str, settle_seconds: float = 0.0,
                 now: float | None = None) -> dict[str, str]:
    """A cheap change marker per file, keyed by ``<source>/<name>`` as the ledger records it:
    size and the inode's change time. Not the modification time, which `cp -p`, rsync and
    unzip set to the original's, older than the last load, on a corrected file; the change
    time is the system's and moves on any write or rename. The loader's sha256 stays the
    authority. Links and misplaced files are listed too (and rejected); files still
    changing are not."""
    marks = {}
    for entry in landing_entries(Path(landing_dir) / tenant_id):
        stat = entry.path.lstat()
        if _left_to_settle(stat, settle_seconds, now):
            continue
        marks[f"{entry.source}/{entry.path.name}"] = f"{stat.st_size}:{_changed_ns(stat)}"
    return marks


# Files still unloaded this long after their last change are not waiting for the next
# daemon pass (seconds) or the settle time: nothing is requesting runs.
WAITING_TOO_LONG_SECONDS = 600


def waiting_message(engine: Engine, landing_dir: Path, tenant_id: str,
                    now: float | None = None) -> str | None:
    """How many of the tenant's landing files the ledger has not seen as they are now, and
    since when; with a hint when the oldest waited far longer than the daemon would let it
    (a stopped daemon, or a sensor turned off). None when nothing waits."""
    pending = pending_files(engine, landing_dir, tenant_id)
    if not pending:
        return None
    oldest = min(int(mark.split(":")[1]) for mark in pending.values()) / 1e9
    waited = (time.time() if now is None else now) - oldest
    message = (f"{len(pending)} file(s) in landing/{tenant_id}/ not loaded yet, the oldest "
               f"changed {time.strftime('%Y-%m-%d %H:%M', time.localtime(oldest))}")
    if waited > WAITING_TOO_LONG_SECONDS:
        message += (f"; {waited / 60:.0f} minutes without a load: is the Dagster daemon "
                    "running, with landing_sensor on?")
    return message


def _changed_ns(stat) -> int:
    """When the file last changed in any way: its content (mtime) or its inode (ctime: a copy
    that kept an old mtime, a rename into the folder)."""
    return max(stat.st_mtime_ns, stat.st_ctime_ns)
