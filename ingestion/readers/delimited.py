"""CSV: pyarrow block by block, one record per line, and Python's csv module from the first
quoted value that spans lines (physical line numbers kept either way)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ingestion.readers.base import (
    FileRejected,
    RawChunk,
    Reject,
    Rows,
    check_columns,
    check_has_rows,
    check_unique_names,
    field_count_reject,
    head_lines,
    header_text,
    open_bytes,
    text_encoding,
    undecodable,
)
from ingestion.spec import SourceSpec

CSV_BLOCK_BYTES = 1 << 20
_OTHER_DELIMITERS = (";", "\t", "|", ",")


def _read_csv_header(path: Path, spec: SourceSpec) -> list[str]:
    lines, head = head_lines(path, spec, "csv")
    text = header_text(path, spec, lines)
    where = f"line {spec.header_line}"
    header = next(csv.reader([text], delimiter=spec.delimiter))
    check_unique_names(path, header, where)
    if len(header) == 1:
        for other in _OTHER_DELIMITERS:
            if other != spec.delimiter and other in text:
                raise FileRejected(
                    f"{path.name}: {where}: wrong delimiter: the spec says {spec.delimiter!r} "
                    f"but the header is {other!r}-separated"
                )
    check_columns(path, header, spec, "in the header")
    check_has_rows(path, lines, head, spec)
    return header


class _QuotesBroke(Exception):
    """pyarrow's one-record-per-line reading met a quote that does not close on its line."""

    def __init__(self, line: int) -> None:
        self.line = line


def read_csv(path: Path, spec: SourceSpec) -> Iterator[RawChunk]:
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
    with _QuoteWatch(open_bytes(path)) as watch:
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


MAX_LINES_PER_RECORD = 50


def _read_csv_records(path: Path, spec: SourceSpec, header: list[str], first_line: int
                      ) -> Iterator[RawChunk]:
    """From ``first_line`` on, records one at a time with Python's csv module. A quoted value
    may span lines when its quote closes within MAX_LINES_PER_RECORD lines and the record
    then has the header's fields; otherwise the line with the open quote is quarantined
    alone and reading goes on at the next line."""
    wanted = [c for c in spec.source_columns if c in header]
    positions = [header.index(c) for c in wanted]
    rows = Rows(wanted)

    def parse(text: str) -> list[str] | None:
        try:
            return next(csv.reader([text], delimiter=spec.delimiter, strict=True), [])
        except csv.Error:
            return None

    with open_bytes(path) as fh:
        stream = io.TextIOWrapper(fh, encoding=text_encoding(spec), newline="")
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
                    rows.rejects.append(field_count_reject(line_no, raw.rstrip("\r\n"),
                                                           len(fields), len(header)))
                elif any(fields):
                    rows.add(line_no, raw.rstrip("\r\n"),
                             {c: fields[pos] or None
                              for c, pos in zip(wanted, positions, strict=True)})
                line_no += used - 1
                if rows.full:
                    yield rows.flush()
        except UnicodeDecodeError as exc:
            raise undecodable(path, line_no + 1, spec, exc) from None
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
