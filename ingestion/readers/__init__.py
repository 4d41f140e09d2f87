"""Chunked readers: turn one export file into string tables, never holding the whole file.

Every reader yields :class:`RawChunk` objects whose ``table`` holds the spec's source columns
as strings (null where absent or empty), with the physical line number of each row, plus rows
it could not even split into fields (``rejects``), which go to quarantine like any other bad
row.
File-level problems raise :class:`FileRejected` with a message naming the file and the problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ingestion.readers.base import FileRejected, RawChunk, Reject
from ingestion.readers.delimited import read_csv
from ingestion.readers.json_orders import read_jsonl
from ingestion.readers.text_columns import read_text_columns
from ingestion.readers.xlsx import read_xlsx
from ingestion.spec import EXTENSIONS, SourceSpec, SpecError, load_spec, shipped_specs

__all__ = ["FileRejected", "RawChunk", "Reject", "detect_spec", "fits", "read_chunks"]


def read_chunks(path: Path, spec: SourceSpec) -> Iterator[RawChunk]:
    path = Path(path)
    if path.stat().st_size == 0:
        raise FileRejected(f"{path.name}: empty file (0 bytes)")
    if not path.name.lower().endswith(EXTENSIONS[spec.format]):
        raise FileRejected(f"{path.name}: the spec '{spec.name}' reads {spec.format.upper()} "
                           f"files ({', '.join(EXTENSIONS[spec.format])}), not this file type")
    readers = {"csv": read_csv, "text": read_text_columns, "fixed_width": read_text_columns,
               "xlsx": read_xlsx, "jsonl": read_jsonl}
    yield from readers[spec.format](path, spec)


def fits(path: Path, spec: SourceSpec) -> bool:
    """Whether ``spec`` can read ``path``: its file type, and the columns it needs are there
    (the first chunk is read, then the file is closed)."""
    chunks = read_chunks(Path(path), spec)
    try:
        next(chunks, None)
        return True
    except FileRejected:
        return False
    finally:
        chunks.close()


def detect_spec(path: Path) -> SourceSpec:
    """The spec that reads ``path``: among the shipped specs and a ``spec.yaml`` beside the
    file, the one whose format and columns fit it. None or several: a SpecError that says
    which were tried or which fit, and to pass the source."""
    path = Path(path)
    candidates = dict(shipped_specs())
    own = path.parent / "spec.yaml"
    if own.exists():
        local = load_spec(own)
        candidates[local.name] = local
    fitting = sorted(name for name, spec in candidates.items() if fits(path, spec))
    if len(fitting) == 1:
        return candidates[fitting[0]]
    if not fitting:
        raise SpecError(f"{path.name}: no spec fits its columns (tried "
                        f"{', '.join(sorted(candidates))}); add a spec.yaml beside it or pass "
                        "--source")
    raise SpecError(f"{path.name}: several specs fit its columns ({', '.join(fitting)}); "
                    "pass --source to choose")
