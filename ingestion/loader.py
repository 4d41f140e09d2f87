"""Load one export file into ``raw`` with COPY, exactly once, in one transaction.

Ledger semantics (``raw.ingest_files``):

* the file's sha256 is its identity: the same bytes for the same tenant and source load once;
  dropping them again returns ``status='duplicate'`` and loads nothing (the bytes of a
  superseded version sent again under the same name are a revert: a new version);
* a *changed* file with the same name is a new **version**: it loads in full and the previous
  version is marked ``superseded`` in the same transaction. Its rows stay in ``raw`` for audit,
  but staging reads only rows whose file is ``loaded``, so the new version *replaces* the old one
  downstream (dbt's incremental facts delete superseded rows);
* a file-level problem rolls the data back and records a ``rejected`` ledger row with the reason.

Every row read is either loaded or quarantined; the counts are checked before commit.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pyarrow.csv as pacsv
import sqlalchemy as sa
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy.engine import Engine

from ingestion import copy_binary
from ingestion.readers import FileRejected, Reject, read_chunks
from ingestion.spec import SourceSpec
from ingestion.validate import TenantInfo, new_file_state, validate_chunk

ProgressFn = Callable[[int, int], None]  # (rows read so far, rows quarantined so far)
# A file's first quarantined rows ride on its result, for whoever loaded it to read at once;
# all of them are in raw.quarantine.
QUARANTINED_SHOWN = 5


class IngestError(Exception):
    """A load could not even start (unknown tenant, missing file)."""


class ConnectionLost(IngestError):
    """The database connection went away mid-load: the file's transaction was not committed,
    and nothing more can be recorded until the database is back."""


@dataclass
class LoadResult:
    path: Path
    tenant_id: str
    source: str
    status: str  # loaded | duplicate | rejected
    target: str = "sales_lines"
    file_id: int | None = None
    version: int | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    replaced_file_id: int | None = None
    error: str | None = None
    seconds: float = 0.0
    first_quarantined: list[Reject] = field(default_factory=list)

    @property
    def quarantine_lines(self) -> list[str]:
        """The first quarantined rows, a line each (``line 7, quantity: ...``), and where the
        rest are."""
        lines = []
        for bad in self.first_quarantined:
            named = f", {bad.field}" if bad.field and not bad.reason.startswith(bad.field) else ""
            lines.append(f"line {bad.line_number}{named}: {bad.reason}")
        if self.rows_quarantined > len(lines):
            lines.append(f"... {self.rows_quarantined - len(lines):,} more in raw.quarantine "
                         f"(file_id {self.file_id})")
        return lines

    @property
    def message(self) -> str:
        if self.status == "duplicate":
            return (f"{self.path.name}: already loaded as file {self.file_id} "
                    f"({self.error or 'same sha256'}); nothing loaded")
        if self.status == "rejected":
            return f"{self.path.name}: rejected: {self.error}"
        replaced = f", replaces file {self.replaced_file_id}" if self.replaced_file_id else ""
        return (f"{self.path.name}: loaded {self.rows_loaded:,} of {self.rows_read:,} rows, "
                f"{self.rows_quarantined:,} quarantined (file {self.file_id}, "
                f"version {self.version}{replaced})")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def tenant_info(conn: sa.Connection, tenant_id: str) -> TenantInfo:
    row = conn.execute(
        sa.text("select tenant_id, timezone, currency, country_code from ops.tenants "
                "where tenant_id = :t"), {"t": tenant_id}).first()
    if row is None:
        raise IngestError(f"tenant '{tenant_id}' is not registered; run "
                          f"`storepulse tenants add {tenant_id} ...` first")
    return TenantInfo(*row)


def known_stores(conn: sa.Connection, tenant_id: str) -> set[str] | None:
    rows = conn.execute(sa.text(
        "select distinct s.store_id from raw.stores s join raw.ingest_files f "
        "on f.file_id = s.source_file_id where s.tenant_id = :t and f.status = 'loaded'"),
        {"t": tenant_id}).scalars().all()
    return set(rows) or None


def load_file(engine: Engine, path: Path, tenant_id: str, spec: SourceSpec,
              source: str | None = None, file_name: str | None = None,
              progress: ProgressFn | None = None, batch_id: str | None = None) -> LoadResult:
    """Load ``path`` for ``tenant_id`` with ``spec``; see the module docstring for semantics.

    ``batch_id`` names the load (the orchestrator's run id) so quality suites can validate
    exactly the files it brought in.
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    source = source or spec.name
    file_name = file_name or path.name
    started = time.perf_counter()
    size = path.stat().st_size
    try:
        digest = sha256_of(path)
    except OSError as exc:
        return reject_file(engine, path, tenant_id, source, spec.target, file_name,
                           f"{path.name}: cannot be read ({exc.strerror or exc})", batch_id,
                           hashlib.sha256(str(path).encode()).hexdigest(), size)
    result = LoadResult(path=path, tenant_id=tenant_id, source=source, status="loaded",
                        target=spec.target)
    try:
        with engine.begin() as conn:
            tenant = tenant_info(conn, tenant_id)
            # Serialise loads of the same file name so versions are numbered without races: a
            # row lock in ops.load_locks, which tenant roles cannot take (any role can take
            # an advisory lock).
            key = {"t": tenant_id, "s": source, "n": file_name}
            conn.execute(sa.text(
                "insert into ops.load_locks (tenant_id, source, file_name) values (:t, :s, :n) "
                "on conflict do nothing"), key)
            conn.execute(sa.text(
                "select 1 from ops.load_locks where tenant_id = :t and source = :s and "
                "file_name = :n for update"), key)
            # Already current, or a superseded version under another name (a copy of an
            # export its correction replaced): a duplicate. A superseded version of this
            # same name sent again is a revert, and loads as the newest version.
            existing = conn.execute(sa.text(
                "select file_id, version from raw.ingest_files where tenant_id = :t and "
                "source = :s and sha256 = :h and (status = 'loaded' or "
                "(status = 'superseded' and file_name <> :n)) "
                "order by status = 'loaded' desc, file_id desc limit 1"),
                {"t": tenant_id, "s": source, "h": digest, "n": file_name}).first()
            if existing:
                result.status, result.file_id, result.version = "duplicate", *existing
                _record_duplicate(conn, result, spec.target, file_name, digest, size)
                result.seconds = time.perf_counter() - started
                return result
            previous = conn.execute(sa.text(
                "select file_id, version from raw.ingest_files where tenant_id = :t and "
                "source = :s and file_name = :n and status = 'loaded' "
                "order by version desc limit 1"),
                {"t": tenant_id, "s": source, "n": file_name}).first()
            version = (previous.version + 1) if previous else 1
            file_id = conn.execute(sa.text(
                "insert into raw.ingest_files (tenant_id, source, target, file_name, path, "
                "sha256, bytes, version, status, batch_id) values (:t, :s, :g, :n, :p, :h, "
                ":b, :v, 'loaded', :batch) returning file_id"),
                {"t": tenant_id, "s": source, "g": spec.target, "n": file_name,
                 "p": str(path), "h": digest, "b": size, "v": version,
                 "batch": batch_id}).scalar_one()
            result.file_id, result.version = file_id, version
            known = known_stores(conn, tenant_id) if spec.target == "sales_lines" else None
            state = new_file_state(spec, tenant, file_id, known)
            # Naive local timestamps in the export are read in the source's time zone.
            conn.execute(sa.text("select set_config('TimeZone', :tz, true)"),
                         {"tz": spec.resolve_timezone(tenant.timezone)})
            _copy_file(conn, path, spec, state, result, progress)
            if result.rows_read != result.rows_loaded + result.rows_quarantined:
                raise RuntimeError(
                    f"{path.name}: counts do not reconcile: read {result.rows_read}, loaded "
                    f"{result.rows_loaded}, quarantined {result.rows_quarantined}")
            if previous:
                conn.execute(sa.text(
                    "update raw.ingest_files set status = 'superseded', superseded_by = :new, "
                    "superseded_at = now() where file_id = :old"),
                    {"new": file_id, "old": previous.file_id})
                result.replaced_file_id = previous.file_id
            conn.execute(sa.text(
                "update raw.ingest_files set rows_read = :r, rows_loaded = :l, "
                "rows_quarantined = :q, loaded_at = now() where file_id = :f"),
                {"r": result.rows_read, "l": result.rows_loaded,
                 "q": result.rows_quarantined, "f": file_id})
        if spec.target == "sales_lines" and result.rows_loaded:
            # New heap pages are invisible to the BRIN index on source_file_id until
            # summarized (autovacuum does it eventually); every reader of a file's rows (the
            # quality checks, the incremental facts) would scan the whole table meanwhile.
            with engine.begin() as conn:
                conn.execute(sa.text(
                    "select brin_summarize_new_values('raw.sales_lines_by_file'::regclass)"))
    except FileRejected as exc:
        result = reject_file(engine, path, tenant_id, source, spec.target, file_name, str(exc),
                             batch_id, digest, size)
    except IngestError:
        raise
    except Exception as exc:  # any failure of one file is that file's: rejected, next file
        if isinstance(exc, sa.exc.IntegrityError) and "ingest_files_once" in str(exc):
            # the same bytes under another name committed while this load waited for it
            return _duplicate_of(engine, path, tenant_id, source, spec.target, digest,
                                 size, started)
        if _connection_lost(exc):
            raise ConnectionLost(
                f"{path.name}: lost the database connection while loading it ({exc}); "
                "nothing of it was committed. Run the load again when the database is back: "
                "files already loaded are skipped.") from exc
        result = reject_file(engine, path, tenant_id, source, spec.target, file_name,
                             _reason(path, exc), batch_id, digest, size)
    result.seconds = time.perf_counter() - started
    return result


def refresh_statistics(engine: Engine, results: list[LoadResult]) -> None:
    """Fresh planner statistics for the tables these loads wrote into, before anything reads
    the batch. Until autovacuum gets round to it, PostgreSQL takes a new file's rows for a
    handful, and the gate's and dbt's queries that follow are planned for that handful: a
    nested loop that is quadratic in the batch's lines."""
    touched = sorted({r.target for r in results if r.status == "loaded" and r.rows_loaded})
    if not touched:
        return
    with engine.begin() as conn:
        for table in [*touched, "ingest_files"]:
            conn.execute(sa.text(f"analyze raw.{table}"))


def _duplicate_of(engine: Engine, path: Path, tenant_id: str, source: str, target: str,
                  digest: str, size: int, started: float) -> LoadResult:
    with engine.begin() as conn:
        file_id, version = conn.execute(sa.text(
            "select file_id, version from raw.ingest_files where tenant_id = :t and "
            "source = :s and sha256 = :h and status = 'loaded'"),
            {"t": tenant_id, "s": source, "h": digest}).one()
        result = LoadResult(path=path, tenant_id=tenant_id, source=source, status="duplicate",
                            target=target, file_id=file_id, version=version)
        _record_duplicate(conn, result, target, path.name, digest, size)
    result.seconds = time.perf_counter() - started
    return result


def _record_duplicate(conn: sa.Connection, result: LoadResult, target: str, file_name: str,
                      digest: str, size: int) -> None:
    """The ledger row of a file that repeats one already loaded (``result.file_id``): it
    loads nothing, but the landing sensor and `storepulse status` know it was seen."""
    conn.execute(sa.text(
        "insert into raw.ingest_files (tenant_id, source, target, file_name, path, sha256, "
        "bytes, status, duplicate_of, error) select :t, :s, :g, :n, :p, :h, :b, 'duplicate', "
        "file_id, 'same bytes as ' || file_name || ' (file ' || file_id || ', version ' || "
        "version || '), nothing loaded' from raw.ingest_files where file_id = :f"),
        {"t": result.tenant_id, "s": result.source, "g": target, "n": file_name,
         "p": str(result.path), "h": digest, "b": size, "f": result.file_id})


def reject_file(engine: Engine, path: Path, tenant_id: str, source: str, target: str,
                file_name: str, reason: str, batch_id: str | None = None,
                digest: str | None = None, size: int | None = None) -> LoadResult:
    """Record a file nothing of which loads, with the reason, in the ledger."""
    if digest is None:  # a link is never followed: its identity is where it points
        digest = (hashlib.sha256(str(path.readlink()).encode()).hexdigest()
                  if path.is_symlink() else sha256_of(path))
    size = path.lstat().st_size if size is None else size
    with engine.begin() as conn:
        file_id = conn.execute(sa.text(
            "insert into raw.ingest_files (tenant_id, source, target, file_name, path, "
            "sha256, bytes, status, error, batch_id) values (:t, :s, :g, :n, :p, :h, "
            ":b, 'rejected', :e, :batch) returning file_id"),
            {"t": tenant_id, "s": source, "g": target, "n": file_name, "p": str(path),
             "h": digest, "b": size, "e": reason, "batch": batch_id}).scalar_one()
    return LoadResult(path=path, tenant_id=tenant_id, source=source, status="rejected",
                      target=target, file_id=file_id, error=reason)


def _storable(text: str | None) -> str | None:
    """Text PostgreSQL can store: a NUL byte shown as \\x00 (the line is kept as evidence)."""
    return text.replace("\x00", "\\x00") if text else text


def _connection_lost(exc: BaseException) -> bool:
    """psycopg raises OperationalError (or a subclass: AdminShutdown...) when the server or
    the network goes away; SQLAlchemy marks such a connection invalidated."""
    if isinstance(exc, sa.exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc.orig, psycopg.OperationalError)
    return isinstance(exc, psycopg.OperationalError)


def _reason(path: Path, exc: BaseException) -> str:
    """A rejection reason a person can act on, from an error nobody anticipated."""
    diag = getattr(getattr(exc, "orig", exc), "diag", None)
    if diag is not None and diag.message_primary:
        # PostgreSQL refused a value during COPY; its context names the column and value.
        where = f" ({diag.context.splitlines()[0]})" if diag.context else ""
        return f"{path.name}: the database refused a value: {diag.message_primary}{where}"
    return f"{path.name}: could not be loaded: {type(exc).__name__}: {exc}"


# The server's type for each contract type, for binary COPY.
_PG_TYPES = {"text": "text", "integer": "integer", "numeric": "numeric",
             "timestamp": "timestamptz", "date": "date", "boolean": "boolean"}


@dataclass
class _EncodedChunk:
    data: memoryview | None
    rows_read: int
    rows_loaded: int
    quarantined: list


_DONE = object()


def _column_types(spec: SourceSpec) -> list[str]:
    """The server's type of each column the loader sends, in the validated chunks' order."""
    return ["text", *(_PG_TYPES[c.type] for c in spec.contract.columns), "bigint", "bigint"]


def _encode_chunks(path: Path, spec: SourceSpec, state, timezone: str | None,
                   out: queue.Queue, stop: threading.Event) -> None:
    """Producer: read, validate and encode chunks (binary COPY rows, or CSV where ``timezone``
    is None); runs beside the COPY so both cores work."""
    write_options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    types = _column_types(spec)
    try:
        for chunk in read_chunks(path, spec):
            if stop.is_set():
                return
            checked = validate_chunk(chunk, spec, state)
            data = None
            if checked.good.num_rows and timezone is not None:
                data = copy_binary.encode_rows(checked.good, types, timezone)
            elif checked.good.num_rows:
                buffer = io.BytesIO()
                pacsv.write_csv(checked.good, buffer, write_options)
                data = buffer.getbuffer()
            out.put(_EncodedChunk(data, chunk.rows_read, checked.good.num_rows,
                                  checked.quarantined))
        out.put(_DONE)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        out.put(exc)


def _copy_file(conn: sa.Connection, path: Path, spec: SourceSpec, state, result: LoadResult,
               progress: ProgressFn | None) -> None:
    contract = spec.contract
    columns = ["tenant_id", *contract.names, "source_file_id", "source_line"]
    cursor = conn.connection.driver_connection.cursor()
    chunks: queue.Queue = queue.Queue(maxsize=3)  # bounds memory to a few chunks
    stop = threading.Event()
    # Binary COPY spares the server parsing numbers and date-times; CSV remains for a time
    # zone this machine's database of zones does not know (the server places those times).
    timezone = spec.resolve_timezone(state.tenant.timezone)
    binary = copy_binary.knows_timezone(timezone)
    producer = threading.Thread(
        target=_encode_chunks, args=(path, spec, state, timezone if binary else None, chunks,
                                     stop),
        name=f"encode-{path.name}", daemon=True)
    # Quarantined rows wait on disk: a file that is all bad must not fill memory.
    with tempfile.TemporaryFile("w+", newline="", encoding="utf-8") as spool:
        quarantine_writer = csv.writer(spool)
        if binary:
            columns = [columns[i] for i in copy_binary.field_order(_column_types(spec))]
        copy_sql = (f"copy {contract.table} ({', '.join(columns)}) from stdin "
                    f"with (format {'binary' if binary else 'csv'})")
        producer.start()
        try:
            # The queued writer sends to the server from its own thread, so sending, encoding
            # and the server's parsing all overlap.
            with cursor.copy(copy_sql, writer=QueuedLibpqWriter(cursor)) as copy:
                if binary:
                    copy.write(copy_binary.SIGNATURE)
                while (item := chunks.get()) is not _DONE:
                    if isinstance(item, BaseException):
                        raise item
                    if item.data is not None:
                        copy.write(item.data)
                    for bad in item.quarantined:
                        quarantine_writer.writerow([state.file_id, state.tenant.tenant_id,
                                                    bad.line_number, bad.field,
                                                    _storable(bad.reason),
                                                    _storable(bad.raw_text)])
                    result.rows_read += item.rows_read
                    result.rows_loaded += item.rows_loaded
                    result.rows_quarantined += len(item.quarantined)
                    room = QUARANTINED_SHOWN - len(result.first_quarantined)
                    result.first_quarantined += item.quarantined[:max(room, 0)]
                    if progress:
                        progress(result.rows_read, result.rows_quarantined)
                if binary:
                    copy.write(copy_binary.TRAILER)
        finally:
            stop.set()
            while producer.is_alive():  # unblock a producer waiting on a full queue
                with contextlib.suppress(queue.Empty):
                    chunks.get(timeout=0.05)
            producer.join()
        if result.rows_read == 0:
            raise FileRejected(f"{path.name}: empty file (no data rows)")
        spool.seek(0)
        with cursor.copy("copy raw.quarantine (file_id, tenant_id, line_number, field, reason, "
                         "raw_text) from stdin with (format csv)") as copy:
            while block := spool.read(1 << 20):
                copy.write(block)
