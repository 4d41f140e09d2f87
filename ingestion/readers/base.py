"""What every reader shares: the chunk it yields, rejected rows and files, opening (gzip by
content), sniffing binary files, the header and the row accumulator for Python-read rows."""

from __future__ import annotations

import codecs
import gzip
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from ingestion.spec import SourceSpec

ROWS_PER_CHUNK = 50_000  # rows read by Python (XLSX, text, CSV records) per chunk


class FileRejected(Exception):
    """The whole file is unusable; nothing of it may load."""


@dataclass
class Reject:
    line_number: int
    raw_text: str
    reason: str
    field: str | None = None


@dataclass
class RawChunk:
    table: pa.Table
    line_numbers: np.ndarray
    raw_text: Callable[[int], str]
    rejects: list[Reject] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return self.table.num_rows + len(self.rejects)


def field_count_reject(line_number: int, text: str, found: int, expected: int) -> Reject:
    """A line that splits into more or fewer fields than the header names."""
    return Reject(line_number, text, f"has {found} fields where the header has {expected}")


def undecodable(path: Path, line_number: int, spec: SourceSpec, exc: UnicodeDecodeError
                ) -> FileRejected:
    return FileRejected(f"{path.name}: line {line_number}: undecodable bytes for encoding "
                        f"{spec.encoding} ({exc.reason})")


def is_gzip(path: Path) -> bool:
    """By its content, not its name: a gzip file named .csv is still a gzip file."""
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_bytes(path: Path) -> io.BufferedIOBase:
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def wide_encoding(encoding: str) -> bool:
    """UTF-16 and UTF-32 text is full of NUL bytes and splits lines on more than one byte."""
    return codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))


def sniff_binary(path: Path, head: bytes, fmt: str, encoding: str = "utf-8") -> None:
    if head.startswith(b"PK\x03\x04"):
        raise FileRejected(
            f"{path.name}: is a ZIP/XLSX archive, not {fmt.upper()} as its name says")
    if head.startswith(b"%PDF"):
        raise FileRejected(f"{path.name}: is a PDF, not {fmt.upper()} as its name says")
    if b"\x00" in head and not wide_encoding(encoding):
        raise FileRejected(f"{path.name}: contains NUL bytes; it is binary, not {fmt.upper()}")


def check_unique_names(path: Path, header: list[str], where: str) -> None:
    """A column named twice is ambiguous (which copy is the quantity?): reject the file rather
    than load whichever copy comes first."""
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        raise FileRejected(f"{path.name}: {where}: column name(s) {', '.join(repeated)} appear "
                           "more than once in the header; rename or drop the copies")


def check_columns(path: Path, header: list[str], spec: SourceSpec, where: str) -> None:
    missing = [c for c in spec.source_columns if c.split(".")[0] not in header]
    if missing:
        raise FileRejected(
            f"{path.name}: missing required column(s) {', '.join(missing)} {where} "
            f"(found: {', '.join(header[:12])}){_near_misses(missing, header)}"
        )


def _near_misses(missing: list[str], header: list[str]) -> str:
    """Names that differ from a required one only in case or surrounding spaces, which are
    hard to see in the list of names found."""
    loose = {name.strip().casefold(): name for name in header}
    near = [f"{loose[c.casefold()]!r} for {c!r}" for c in (m.split(".")[0] for m in missing)
            if c.casefold() in loose]
    if not near:
        return ""
    return (f"; the header has {', '.join(near)}: names must match the spec exactly, case and "
            "spaces included")


_LINE_END = re.compile(rb"\r\n|\r|\n")


def head_lines(path: Path, spec: SourceSpec, fmt: str) -> tuple[list[bytes], bytes]:
    """The first 64 KiB split into lines (as UTF-8 for wide encodings, BOM removed), and the
    raw head for the checks that look at bytes."""
    try:
        with open_bytes(path) as fh:
            head = fh.read(64 * 1024)
    except (OSError, EOFError) as exc:
        raise FileRejected(f"{path.name}: cannot be read as {path.suffix} ({exc})") from None
    sniff_binary(path, head, fmt, spec.encoding)
    text = head
    if wide_encoding(spec.encoding):  # decode first: its line ends are several bytes long
        text = head.decode(spec.encoding, errors="ignore").encode("utf-8")
    text = text.removeprefix(b"\xef\xbb\xbf")
    # Lines may end in \n, \r\n or a lone \r (old Mac exports); every reader reads all three.
    return _LINE_END.split(text, maxsplit=spec.header_line), head


def header_text(path: Path, spec: SourceSpec, lines: list[bytes]) -> str:
    if len(lines) < spec.header_line:
        raise FileRejected(f"{path.name}: has {len(lines)} line(s); the spec expects the "
                           f"header on line {spec.header_line}")
    raw = lines[spec.header_line - 1]
    try:
        text = raw.decode("utf-8" if wide_encoding(spec.encoding) else spec.encoding)
    except UnicodeDecodeError as exc:
        raise FileRejected(
            f"{path.name}: line {spec.header_line}: undecodable bytes for encoding "
            f"{spec.encoding} (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})") from None
    if not text.strip():
        what = "no header line" if spec.header_line == 1 else \
            f"line {spec.header_line}, where the spec expects the header, is blank"
        raise FileRejected(f"{path.name}: empty file ({what})")
    return text


def check_has_rows(path: Path, lines: list[bytes], head: bytes, spec: SourceSpec) -> None:
    rest = lines[spec.header_line] if len(lines) > spec.header_line else b""
    if not rest.strip(b"\r\n") and len(head) < 64 * 1024:
        raise FileRejected(f"{path.name}: empty file (a header and no rows)")


class Rows:
    """Rows read one at a time by Python (not pyarrow), gathered into RawChunks."""

    def __init__(self, columns: list[str]) -> None:
        self.names = columns
        self._empty()

    def _empty(self) -> None:
        self.columns: dict[str, list] = {c: [] for c in self.names}
        self.numbers: list[int] = []
        self.texts: list[str] = []
        self.rejects: list[Reject] = []

    def add(self, line_number: int, text: str, values: dict[str, str | None]) -> None:
        for name in self.names:
            self.columns[name].append(values[name])
        self.numbers.append(line_number)
        self.texts.append(text)

    @property
    def full(self) -> bool:
        return len(self.numbers) >= ROWS_PER_CHUNK

    def __bool__(self) -> bool:
        return bool(self.numbers or self.rejects)

    def flush(self) -> RawChunk:
        texts = self.texts
        chunk = RawChunk(table=pa.table({c: pa.array(v, pa.string())
                                         for c, v in self.columns.items()}),
                         line_numbers=np.array(self.numbers, dtype=np.int64),
                         raw_text=lambda i: texts[i], rejects=self.rejects)
        self._empty()
        return chunk


def text_encoding(spec: SourceSpec) -> str:
    """UTF-8 with or without a byte-order mark, as the CSV reader accepts."""
    return "utf-8-sig" if codecs.lookup(spec.encoding).name == "utf-8" else spec.encoding
