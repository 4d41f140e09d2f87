"""Chunked readers: turn one export file into string tables, never holding the whole file.

Every reader yields :class:`RawChunk` objects whose ``table`` holds the spec's source columns
as strings (null where absent or empty), with the physical line number of each row, plus rows
it could not even split into fields (``rejects``), which go to quarantine like any other bad
row.
File-level problems raise :class:`FileRejected` with a message naming the file and the problem.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ingestion.spec import EXTENSIONS, SourceSpec

CSV_BLOCK_BYTES = 1 << 20
XLSX_CHUNK_ROWS = 50_000
JSONL_CHUNK_ORDERS = 20_000
_OTHER_DELIMITERS = (";", "\t", "|", ",")


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


def _is_gzip(path: Path) -> bool:
    """By its content, not its name: a gzip file named .csv is still a gzip file."""
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open_bytes(path: Path) -> io.BufferedIOBase:
    if _is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _wide(encoding: str) -> bool:
    """UTF-16 and UTF-32 text is full of NUL bytes and splits lines on more than one byte."""
    return codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))


def _sniff_binary(path: Path, head: bytes, fmt: str, encoding: str = "utf-8") -> None:
    if head.startswith(b"PK\x03\x04"):
        raise FileRejected(
            f"{path.name}: is a ZIP/XLSX archive, not {fmt.upper()} as its name says")
    if head.startswith(b"%PDF"):
        raise FileRejected(f"{path.name}: is a PDF, not {fmt.upper()} as its name says")
    if b"\x00" in head and not _wide(encoding):
        raise FileRejected(f"{path.name}: contains NUL bytes; it is binary, not {fmt.upper()}")


def read_chunks(path: Path, spec: SourceSpec) -> Iterator[RawChunk]:
    path = Path(path)
    if path.stat().st_size == 0:
        raise FileRejected(f"{path.name}: empty file (0 bytes)")
    if not path.name.lower().endswith(EXTENSIONS[spec.format]):
        raise FileRejected(f"{path.name}: the spec '{spec.name}' reads {spec.format.upper()} "
                           f"files ({', '.join(EXTENSIONS[spec.format])}), not this file type")
    readers = {"csv": _read_csv, "text": _read_text_columns, "fixed_width": _read_text_columns,
               "xlsx": _read_xlsx, "jsonl": _read_jsonl}
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


def _check_columns(path: Path, header: list[str], spec: SourceSpec, where: str) -> None:
    missing = [c for c in spec.source_columns if c.split(".")[0] not in header]
    if missing:
        raise FileRejected(
            f"{path.name}: missing required column(s) {', '.join(missing)} {where} "
            f"(found: {', '.join(header[:12])})"
        )


# --------------------------------------------------------------------------------------- CSV
_LINE_END = re.compile(rb"\r\n|\r|\n")


def _head_lines(path: Path, spec: SourceSpec, fmt: str) -> tuple[list[bytes], bytes]:
    """The first 64 KiB split into lines (as UTF-8 for wide encodings, BOM removed), and the
    raw head for the checks that look at bytes."""
    try:
        with _open_bytes(path) as fh:
            head = fh.read(64 * 1024)
    except (OSError, EOFError) as exc:
        raise FileRejected(f"{path.name}: cannot be read as {path.suffix} ({exc})") from None
    _sniff_binary(path, head, fmt, spec.encoding)
    text = head
    if _wide(spec.encoding):  # decode first: its line ends are several bytes long
        text = head.decode(spec.encoding, errors="ignore").encode("utf-8")
    text = text.removeprefix(b"\xef\xbb\xbf")
    # Lines may end in \n, \r\n or a lone \r (old Mac exports); every reader reads all three.
    return _LINE_END.split(text, maxsplit=spec.header_line), head


def _header_text(path: Path, spec: SourceSpec, lines: list[bytes]) -> str:
    if len(lines) < spec.header_line:
        raise FileRejected(f"{path.name}: has {len(lines)} line(s); the spec expects the "
                           f"header on line {spec.header_line}")
    raw = lines[spec.header_line - 1]
    try:
        text = raw.decode("utf-8" if _wide(spec.encoding) else spec.encoding)
    except UnicodeDecodeError as exc:
        raise FileRejected(
            f"{path.name}: line {spec.header_line}: undecodable bytes for encoding "
            f"{spec.encoding} (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})") from None
    if not text.strip():
        what = "no header line" if spec.header_line == 1 else \
            f"line {spec.header_line}, where the spec expects the header, is blank"
        raise FileRejected(f"{path.name}: empty file ({what})")
    return text


def _check_has_rows(path: Path, lines: list[bytes], head: bytes, spec: SourceSpec) -> None:
    rest = lines[spec.header_line] if len(lines) > spec.header_line else b""
    if not rest.strip(b"\r\n") and len(head) < 64 * 1024:
        raise FileRejected(f"{path.name}: empty file (a header and no rows)")


def _read_csv_header(path: Path, spec: SourceSpec) -> list[str]:
    lines, head = _head_lines(path, spec, "csv")
    text = _header_text(path, spec, lines)
    where = f"line {spec.header_line}"
    header = next(csv.reader([text], delimiter=spec.delimiter))
    repeated = sorted({name for name in header if header.count(name) > 1 and name})
    if repeated:
        raise FileRejected(f"{path.name}: {where}: column name(s) {', '.join(repeated)} appear "
                           "more than once in the header; rename or drop the copies")
    if len(header) == 1:
        for other in _OTHER_DELIMITERS:
            if other != spec.delimiter and other in text:
                raise FileRejected(
                    f"{path.name}: {where}: wrong delimiter: the spec says {spec.delimiter!r} "
                    f"but the header is {other!r}-separated"
                )
    _check_columns(path, header, spec, "in the header")
    _check_has_rows(path, lines, head, spec)
    return header


class _QuotesBroke(Exception):
    """pyarrow's one-record-per-line reading met a quote that does not close on its line."""

    def __init__(self, line: int) -> None:
        self.line = line


def _read_csv(path: Path, spec: SourceSpec) -> Iterator[RawChunk]:
    """pyarrow reads the file block by block, one record per line. A quoted value that goes
    on past its line (an unclosed quote, or a real multi-line value) breaks that: from the
    line where it starts, the rest of the file is read by :func:`_read_csv_records`, which
    keeps physical line numbers and quarantines an unclosed quote alone."""
    header = _read_csv_header(path, spec)
    try:
        yield from _read_csv_blocks(path, spec, header)
    except _QuotesBroke as broke:
        yield from _read_csv_records(path, spec, header, broke.line)


def _read_csv_blocks(path: Path, spec: SourceSpec, header: list[str]) -> Iterator[RawChunk]:
    invalid: list[Reject] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        trailing = (" (a delimiter at the end of the line?)"
                    if row.actual_columns == row.expected_columns + 1
                    and row.text.rstrip("\r\n").endswith(spec.delimiter) else "")
        invalid.append(Reject(row.number or 0, row.text,
                              f"has {row.actual_columns} fields where the header "
                              f"has {row.expected_columns}{trailing}"))
        return "skip"

    wanted = spec.source_columns
    reader_opts = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, encoding=spec.encoding,
                                    skip_rows=spec.header_line - 1, use_threads=False)
    # Empty lines come through as rows of nulls (rather than vanishing) so that line numbers
    # stay physical; they are dropped below: a line with no value in it is not a record.
    parse_opts = pacsv.ParseOptions(delimiter=spec.delimiter, newlines_in_values=False,
                                    ignore_empty_lines=False,
                                    invalid_row_handler=on_invalid_row)
    convert_opts = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in header},
        null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True,
    )
    next_line = spec.header_line + 1
    with _QuoteWatch(_open_bytes(path)) as watch:
        try:
            stream = pacsv.open_csv(pa.PythonFile(watch, mode="r"), read_options=reader_opts,
                                    parse_options=parse_opts, convert_options=convert_opts)
            while True:
                try:
                    batch = stream.read_next_batch()
                except StopIteration:
                    break
                if watch.odd_line_seen:
                    # This batch or one read ahead of it has a quote open at a line's end:
                    # pyarrow's lines are no longer records from here on.
                    raise _QuotesBroke(next_line)
                table = pa.Table.from_batches([batch])
                rejects, invalid[:] = list(invalid), []
                # Rows pyarrow skipped shift the physical line numbers of those after them.
                line_numbers = np.arange(next_line, next_line + table.num_rows, dtype=np.int64)
                for rej in rejects:
                    line_numbers[line_numbers >= rej.line_number] += 1
                next_line += table.num_rows + len(rejects)
                yield from _csv_chunk(table, line_numbers, rejects, wanted, header, spec)
            if invalid:  # a last block with no valid row yields no batch: its rejects count
                yield RawChunk(table=_empty_table(wanted, header),
                               line_numbers=np.array([], dtype=np.int64),
                               raw_text=lambda i: "", rejects=list(invalid))
        except pa.ArrowInvalid as exc:
            message = str(exc).splitlines()[0]
            if watch.odd_line_seen or "out of sync" in message:
                raise _QuotesBroke(next_line) from None
            if "UTF8" in message or "decode" in message.lower():
                raise FileRejected(f"{path.name}: undecodable bytes for encoding "
                                   f"{spec.encoding} near line {next_line}: {message}") from None
            raise FileRejected(f"{path.name}: unreadable CSV near line {next_line}: {message}"
                               ) from None
        except (OSError, EOFError) as exc:  # a truncated or corrupt .gz
            raise FileRejected(f"{path.name}: cannot be read past line {next_line} ({exc})"
                               ) from None


def _has_line_end(block: bytes, start: int, stop: int) -> bool:
    return block.find(b"\n", start, stop) >= 0 or block.find(b"\r", start, stop) >= 0


class _QuoteWatch(io.RawIOBase):
    """The bytes pyarrow reads, watched for a line with an odd number of quote characters:
    a quote still open at the line's end (unclosed, or a value going on to the next line),
    which pyarrow's one-record-per-line reading cannot place. Quotes pair up; a line end
    between the two of a pair is such a line. Most blocks have few quotes: a few finds per
    pair; a block full of them is checked with numpy."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        self.raw = raw
        self.odd_line_seen = False
        self._open_quote = False  # a quote opened and not yet closed

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        block = self.raw.read(size)
        if block and not self.odd_line_seen:
            self._watch(block)
        return block

    def readinto(self, buffer) -> int:  # io.RawIOBase's protocol
        block = self.read(len(buffer))
        buffer[:len(block)] = block
        return len(block)

    def _watch(self, block: bytes) -> None:
        if block.count(b'"') > len(block) // 64:  # quote-heavy (every field quoted)
            self._watch_vectorised(block)
            return
        at = 0
        while True:
            if self._open_quote:  # opened earlier: the line must not end before it closes
                close = block.find(b'"', at)
                if _has_line_end(block, at, close if close >= 0 else len(block)):
                    self.odd_line_seen = True
                    return
                if close < 0:
                    return
                at, self._open_quote = close + 1, False
            opened = block.find(b'"', at)
            if opened < 0:
                return
            at, self._open_quote = opened + 1, True

    def _watch_vectorised(self, block: bytes) -> None:
        data = np.frombuffer(block, np.uint8)
        quotes = np.flatnonzero(data == 34)
        ends = np.flatnonzero((data == 10) | (data == 13))
        # quotes before each line end, counting one still open from an earlier block
        so_far = np.searchsorted(quotes, ends) + int(self._open_quote)
        if (so_far % 2).any():
            self.odd_line_seen = True
        self._open_quote = bool((len(quotes) + int(self._open_quote)) % 2)

    def close(self) -> None:
        self.raw.close()
        super().close()


def _empty_table(wanted: list[str], header: list[str]) -> pa.Table:
    return pa.table({c: pa.array([], pa.string()) for c in wanted if c in header})


def _csv_chunk(table: pa.Table, line_numbers: np.ndarray, rejects: list[Reject],
               wanted: list[str], header: list[str], spec: SourceSpec) -> Iterator[RawChunk]:
    empty = _all_null(table)
    if empty is not None:
        table, line_numbers = table.filter(pc.invert(empty)), line_numbers[
            ~empty.to_numpy(zero_copy_only=False)]
    if table.num_rows or rejects:
        yield RawChunk(table=table.select([c for c in wanted if c in header]),
                       line_numbers=line_numbers,
                       raw_text=_csv_row_text(table, spec.delimiter), rejects=rejects)


class _Rows:
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
        return len(self.numbers) >= XLSX_CHUNK_ROWS

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


MAX_LINES_PER_RECORD = 50


def _read_csv_records(path: Path, spec: SourceSpec, header: list[str], first_line: int
                      ) -> Iterator[RawChunk]:
    """From ``first_line`` on, records one at a time with Python's csv module. A quoted value
    may span lines when its quote closes within MAX_LINES_PER_RECORD lines and the record
    then has the header's fields; otherwise the line with the open quote is quarantined
    alone and reading goes on at the next line."""
    wanted = [c for c in spec.source_columns if c in header]
    positions = [header.index(c) for c in wanted]
    rows = _Rows(wanted)

    def parse(text: str) -> list[str] | None:
        try:
            return next(csv.reader([text], delimiter=spec.delimiter, strict=True), [])
        except csv.Error:
            return None

    with _open_bytes(path) as fh:
        stream = io.TextIOWrapper(fh, encoding=_text_encoding(spec), newline="")
        lines = iter(stream)  # newline="": each line keeps its end, \n, \r\n or a lone \r
        pending: list[str] = []  # lines read ahead while looking for a closing quote
        line_no = 0
        try:
            while True:
                if pending:
                    raw = pending.pop(0)
                else:
                    raw = next(lines, None)
                    if raw is None:
                        break
                line_no += 1
                if line_no < first_line or not raw.strip("\r\n"):
                    continue
                fields = parse(raw)
                used = 1
                if fields is None:  # a quote still open at the end of the line
                    record = raw
                    for extra in range(1, MAX_LINES_PER_RECORD):
                        if extra > len(pending):
                            more = next(lines, None)
                            if more is None:
                                break
                            pending.append(more)
                        record += pending[extra - 1]
                        fields = parse(record)
                        if fields is not None:
                            used = extra + 1
                            break
                    if fields is None or len(fields) != len(header):
                        rows.rejects.append(Reject(line_no, raw.rstrip("\r\n"),
                                                   "has a quote that is not closed on its line"))
                        continue
                    raw = record
                    del pending[:used - 1]
                if len(fields) != len(header):
                    rows.rejects.append(Reject(line_no, raw.rstrip("\r\n"),
                                               f"has {len(fields)} fields where the header has "
                                               f"{len(header)}"))
                elif any(fields):
                    rows.add(line_no, raw.rstrip("\r\n"),
                             {c: fields[pos] or None
                              for c, pos in zip(wanted, positions, strict=True)})
                line_no += used - 1
                if rows.full:
                    yield rows.flush()
        except UnicodeDecodeError as exc:
            raise FileRejected(f"{path.name}: line {line_no + 1}: undecodable bytes for "
                               f"encoding {spec.encoding} ({exc.reason})") from None
    if rows:
        yield rows.flush()


def _all_null(table: pa.Table) -> pa.BooleanArray | None:
    """Rows in which every field is empty (blank lines), or None when there are none."""
    if table.num_rows == 0 or table.num_columns == 0:
        return None
    mask = pc.is_null(table.column(0))
    for column in table.columns[1:]:
        mask = pc.and_(mask, pc.is_null(column))
    mask = mask.combine_chunks() if isinstance(mask, pa.ChunkedArray) else mask
    return mask if pc.any(mask).as_py() else None


def _csv_row_text(table: pa.Table, delimiter: str) -> Callable[[int], str]:
    def raw_text(i: int) -> str:
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, lineterminator="").writerow(
            table.slice(i, 1).to_pylist()[0].values())
        return out.getvalue()
    return raw_text


# ------------------------------------------------------------------- whitespace, fixed width
def _read_text_columns(path: Path, spec: SourceSpec) -> Iterator[RawChunk]:
    """Plain-text reports: ``text`` splits each line on runs of spaces and tabs (so a value
    cannot hold a space); ``fixed_width`` cuts each line at the positions the spec gives."""
    lines, head = _head_lines(path, spec, spec.format.replace("_", "-"))
    fixed = spec.format == "fixed_width"
    if fixed:
        header = list(spec.fixed_width)
    else:
        header = _header_text(path, spec, lines).split()
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise FileRejected(f"{path.name}: line {spec.header_line}: column name(s) "
                               f"{', '.join(repeated)} appear more than once in the header")
        _check_columns(path, header, spec, "in the header")
    if spec.header_line:
        _check_has_rows(path, lines, head, spec)
    wanted = [c for c in spec.source_columns if c in header]
    slices = {c: slice(spec.fixed_width[c][0] - 1, spec.fixed_width[c][1]) for c in wanted} \
        if fixed else {}
    positions = {c: header.index(c) for c in wanted}
    rows = _Rows(wanted)

    line_no = 0
    with _open_bytes(path) as fh:
        stream = io.TextIOWrapper(fh, encoding=_text_encoding(spec), newline="")
        try:
            for raw in stream:
                line_no += 1
                line = raw.rstrip("\r\n")
                if line_no <= spec.header_line or not line.strip():
                    continue
                if fixed:
                    values = {c: line[cut].strip() or None for c, cut in slices.items()}
                else:
                    fields = line.split()
                    if len(fields) != len(header):
                        rows.rejects.append(Reject(line_no, line, f"has {len(fields)} fields "
                                                                  f"where the header has "
                                                                  f"{len(header)}"))
                        continue
                    values = {c: fields[pos] for c, pos in positions.items()}
                rows.add(line_no, line, values)
                if rows.full:
                    yield rows.flush()
        except UnicodeDecodeError as exc:
            raise FileRejected(f"{path.name}: line {line_no + 1}: undecodable bytes for "
                               f"encoding {spec.encoding} ({exc.reason})") from None
    if rows:
        yield rows.flush()
    elif line_no <= spec.header_line:
        raise FileRejected(f"{path.name}: empty file (no data lines)")


# -------------------------------------------------------------------------------------- XLSX
def _cell_text(value: object, spec: SourceSpec) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.strftime(spec.timestamp_format)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_xlsx(path: Path, spec: SourceSpec) -> Iterator[RawChunk]:
    import zipfile

    import openpyxl

    if not zipfile.is_zipfile(path):
        raise FileRejected(f"{path.name}: is not an XLSX workbook (not a ZIP archive)")
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise FileRejected(f"{path.name}: cannot be opened as XLSX ({exc})") from None
    formulas_book = None
    try:
        if spec.sheet and spec.sheet not in book.sheetnames:
            raise FileRejected(f"{path.name}: has no sheet {spec.sheet!r} (sheets: "
                               f"{', '.join(book.sheetnames)}); set xlsx.sheet in the spec")
        sheet = book[spec.sheet] if spec.sheet else book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        # A formula saved without its computed value (written by a program, never opened in
        # Excel) reads as empty: say so instead of "required field is empty". The formulas
        # are read in step only when the sheet has any.
        formulas = iter(())
        if _sheet_has_formulas(path, sheet.title):
            formulas_book = openpyxl.load_workbook(path, read_only=True, data_only=False)
            formulas = formulas_book[sheet.title].iter_rows(values_only=True)
        for _ in range(spec.header_line - 1):
            next(rows, None)
            next(formulas, None)
        header_row = next(rows, None)
        next(formulas, None)
        if header_row is None:
            raise FileRejected(f"{path.name}: empty workbook (no header row"
                               + (f" at row {spec.header_line})" if spec.header_line > 1
                                  else ")"))
        header = [str(h).strip() if h is not None else "" for h in header_row]
        _check_columns(path, header, spec, f"in sheet {sheet.title!r} row {spec.header_line}")
        positions = {c: header.index(c) for c in spec.source_columns if c in header}
        buffer: list[tuple] = []
        rejects: list[Reject] = []
        line = spec.header_line
        produced = False
        for values in rows:
            line += 1
            formula_row = next(formulas, None)
            if values is None or all(v is None for v in values):
                continue
            unsaved = _unsaved_formula(values, formula_row, positions)
            if unsaved:
                name, formula = unsaved
                rejects.append(Reject(line, "\t".join("" if c is None else str(c)
                                                      for c in formula_row or values),
                                      f"{name} is a formula ({formula}) saved without its "
                                      "value: open and save the file in a spreadsheet "
                                      "program, or export values", name))
                continue
            buffer.append((line, values))
            if len(buffer) >= XLSX_CHUNK_ROWS:
                yield _xlsx_chunk(buffer, positions, spec, rejects)
                produced, rejects = True, []
                buffer = []
        if buffer or rejects:
            yield _xlsx_chunk(buffer, positions, spec, rejects)
            produced = True
        if not produced:
            raise FileRejected(f"{path.name}: empty workbook (a header and no rows)")
    finally:
        book.close()
        if formulas_book is not None:
            formulas_book.close()


def _sheet_has_formulas(path: Path, title: str) -> bool:
    """Whether the sheet's XML holds any <f> element (one pass over its bytes)."""
    import zipfile

    from openpyxl.reader.excel import ExcelReader

    reader = ExcelReader(str(path), read_only=True)
    try:
        reader.read_manifest()
        reader.read_workbook()
        target = next((rel.target for sheet, rel in reader.parser.find_sheets()
                       if sheet.name == title), None)
    finally:
        reader.archive.close()
    if target is None:
        return False
    with zipfile.ZipFile(path) as archive, archive.open(target.lstrip("/")) as xml:
        tail = b""
        while block := xml.read(1 << 20):
            if b"<f>" in tail + block or b"<f " in tail + block:
                return True
            tail = block[-2:]
    return False


def _unsaved_formula(values: tuple, formulas: tuple | None, positions: dict[str, int]
                     ) -> tuple[str, str] | None:
    if formulas is None:
        return None
    for name, pos in positions.items():
        value = values[pos] if pos < len(values) else None
        formula = formulas[pos] if pos < len(formulas) else None
        if value is None and isinstance(formula, str) and formula.startswith("="):
            return name, formula
    return None


def _xlsx_chunk(buffer: list[tuple], positions: dict[str, int], spec: SourceSpec,
                rejects: list[Reject]) -> RawChunk:
    columns = {
        name: pa.array([_cell_text(v[pos] if pos < len(v) else None, spec) for _, v in buffer],
                       type=pa.string())
        for name, pos in positions.items()
    }
    table = pa.table(columns)
    rows = [v for _, v in buffer]
    return RawChunk(
        table=table,
        line_numbers=np.array([ln for ln, _ in buffer], dtype=np.int64),
        raw_text=lambda i: "\t".join("" if c is None else str(c) for c in rows[i]),
        rejects=rejects,
    )


# ------------------------------------------------------------------------------------- JSONL
def _lookup(obj: object, dotted: str) -> object:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _as_text(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


_ID_COLUMNS = ("store_id", "order_id", "product_id", "customer_id")
_JSON_KINDS = {dict: "object", list: "array", bool: "boolean"}


def _wrong_id_type(order: dict, items: list, spec: SourceSpec, prefix: str
                   ) -> tuple[str, str, str] | None:
    """An id given as an object, array or boolean (text or a number is an id): as text it
    would load as something no export meant (a customer id of `{"id": 5}` once became a
    guest). Returns (field, source path, JSON kind) for the first one found."""
    for field_name in _ID_COLUMNS:
        mapping = spec.columns.get(field_name)
        if mapping is None or not mapping.column:
            continue
        if mapping.column.startswith(prefix):
            values = [_lookup(item, mapping.column[len(prefix):]) for item in items]
        else:
            values = [_lookup(order, mapping.column)]
        for value in values:
            kind = _JSON_KINDS.get(type(value))
            if kind:
                return field_name, mapping.column, kind
    return None


def _text_encoding(spec: SourceSpec) -> str:
    """UTF-8 with or without a byte-order mark, as the CSV reader accepts."""
    return "utf-8-sig" if codecs.lookup(spec.encoding).name == "utf-8" else spec.encoding


def _orders_from_lines(stream: io.TextIOBase) -> Iterator[tuple[int, str, object]]:
    """(line number, text, order or a JSONDecodeError) for each non-blank line."""
    for line_no, raw in enumerate(stream, start=1):
        stripped = raw.strip()
        if not stripped:
            continue
        try:
            yield line_no, stripped, json.loads(stripped)
        except json.JSONDecodeError as exc:
            yield line_no, stripped, exc


def _orders_from_array(path: Path, text: str, start: int) -> Iterator[tuple[int, str, object]]:
    """The elements of one JSON array of orders (pretty-printed or not), each with the line
    it starts on. The array is parsed element by element, so the file is in memory once."""
    decoder = json.JSONDecoder()
    at = start + 1  # after "["
    while True:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        if at >= len(text):
            raise FileRejected(f"{path.name}: the JSON array is not closed (no final ']')")
        if text[at] == "]":
            return
        line = text.count("\n", 0, at) + 1
        try:
            order, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            raise FileRejected(f"{path.name}: line {exc.lineno}: the JSON array breaks "
                               f"({exc.msg}); nothing after it can be read") from None
        yield line, text[at:end], order
        at = end


def _read_jsonl(path: Path, spec: SourceSpec) -> Iterator[RawChunk]:
    """JSON lines (one order per line), or one JSON array of orders."""
    prefix = spec.lines_field + "."
    header_cols = [c for c in spec.source_columns if not c.startswith(prefix)]
    line_cols = [c for c in spec.source_columns if c.startswith(prefix)]
    with _open_bytes(path) as fh:
        head = fh.read(4096)
    _sniff_binary(path, head, "json", spec.encoding)
    columns: dict[str, list] = {c: [] for c in spec.source_columns}
    line_numbers: list[int] = []
    raw_lines: list[str] = []
    row_raw: list[int] = []
    rejects: list[Reject] = []
    orders = 0
    seen_any = False
    first_error: str | None = None

    def flush() -> RawChunk:
        nonlocal columns, line_numbers, raw_lines, row_raw, rejects, orders
        texts = raw_lines
        index = row_raw
        chunk = RawChunk(
            table=pa.table({c: pa.array(v, type=pa.string()) for c, v in columns.items()}),
            line_numbers=np.array(line_numbers, dtype=np.int64),
            raw_text=lambda i: texts[index[i]],
            rejects=rejects,
        )
        columns = {c: [] for c in spec.source_columns}
        line_numbers, raw_lines, row_raw, rejects, orders = [], [], [], [], 0
        return chunk

    with _open_bytes(path) as fh:
        text_stream = io.TextIOWrapper(fh, encoding=_text_encoding(spec))
        line_no = 0
        try:
            # One JSON array of orders (what many APIs export) or one order per line.
            if head.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"[":
                text = text_stream.read()
                source = _orders_from_array(path, text, text.index("["))
            else:
                source = _orders_from_lines(text_stream)
            for line_no, stripped, order in source:
                if isinstance(order, json.JSONDecodeError):
                    first_error = first_error or f"line {line_no}: {order.msg}"
                    rejects.append(Reject(line_no, stripped, f"not valid JSON ({order.msg})"))
                    continue
                seen_any = True
                if not isinstance(order, dict):
                    rejects.append(Reject(line_no, stripped, "is not a JSON object (an order)"))
                    continue
                items = order.get(spec.lines_field)
                if not isinstance(items, list) or not items:
                    rejects.append(Reject(line_no, stripped,
                                          f"order has no '{spec.lines_field}' items",
                                          spec.lines_field))
                    continue
                wrong = _wrong_id_type(order, items, spec, prefix)
                if wrong:
                    field_name, source_path, kind = wrong
                    rejects.append(Reject(line_no, stripped,
                                          f"{source_path} is a JSON {kind}, not an id",
                                          field_name))
                    continue
                raw_lines.append(stripped)
                header_values = {c: _as_text(_lookup(order, c)) for c in header_cols}
                for item in items:
                    for c in header_cols:
                        columns[c].append(header_values[c])
                    for c in line_cols:
                        columns[c].append(_as_text(_lookup(item, c[len(prefix):])))
                    line_numbers.append(line_no)
                    row_raw.append(len(raw_lines) - 1)
                orders += 1
                if orders >= JSONL_CHUNK_ORDERS:
                    yield flush()
        except UnicodeDecodeError as exc:
            raise FileRejected(f"{path.name}: line {line_no + 1}: undecodable bytes for encoding "
                               f"{spec.encoding} ({exc.reason})") from None
    if not seen_any:
        if first_error:  # not one line parses: this is not JSON at all
            raise FileRejected(f"{path.name}: not JSON lines or a JSON array "
                               f"({first_error})")
        if not rejects:
            raise FileRejected(f"{path.name}: empty file (no JSON lines)")
    if line_numbers or rejects:
        yield flush()

