"""XLSX workbooks, read row by row (openpyxl's read-only mode), the sheet and header row as
the spec chooses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ingestion.readers.base import (
    ROWS_PER_CHUNK,
    FileRejected,
    RawChunk,
    Reject,
    check_columns,
    check_unique_names,
)
from ingestion.spec import SourceSpec

if TYPE_CHECKING:  # openpyxl is imported when a workbook is read
    from openpyxl import Workbook


def _cell_text(value: object, spec: SourceSpec) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.strftime(spec.timestamp_format)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_xlsx(path: Path, spec: SourceSpec) -> Iterator[RawChunk]:
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
        where = f"sheet {sheet.title!r} row {spec.header_line}"
        check_unique_names(path, header, where)
        check_columns(path, header, spec, f"in {where}")
        if not spec.sheet:
            _check_no_other_sheet_alike(path, book, spec)
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
            if len(buffer) >= ROWS_PER_CHUNK:
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


def _check_no_other_sheet_alike(path: Path, book: Workbook, spec: SourceSpec) -> None:
    """Without ``xlsx.sheet`` the first sheet is read. A later sheet whose header holds every
    column the spec reads is more of the same data (a sheet per month or per store), and
    reading the first alone would leave its rows out without a word; a sheet of notes or
    totals is no such sheet and is left alone."""
    needed = {c.split(".")[0] for c in spec.source_columns}
    alike = []
    for sheet in book.worksheets[1:]:
        rows = sheet.iter_rows(max_row=spec.header_line, values_only=True)
        header = list(rows)[-1:] or [()]
        if needed <= {str(h).strip() for h in header[0] if h is not None}:
            alike.append(sheet.title)
    if alike:
        first = book.worksheets[0].title
        raise FileRejected(
            f"{path.name}: sheet(s) {', '.join(map(repr, alike))} have the columns of "
            f"{first!r} too, but one sheet is read per file: set xlsx.sheet in the spec to "
            "the one to load, or export one sheet per file")


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
