"""Plain-text reports: columns separated by whitespace, or cut at fixed positions."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

from ingestion.readers.base import (
    FileRejected,
    RawChunk,
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


def read_text_columns(path: Path, spec: SourceSpec) -> Iterator[RawChunk]:
    """Plain-text reports: ``text`` splits each line on runs of spaces and tabs (so a value
    cannot hold a space); ``fixed_width`` cuts each line at the positions the spec gives."""
    lines, head = head_lines(path, spec, spec.format.replace("_", "-"))
    fixed = spec.format == "fixed_width"
    if fixed:
        header = list(spec.fixed_width)
    else:
        header = header_text(path, spec, lines).split()
        check_unique_names(path, header, f"line {spec.header_line}")
        check_columns(path, header, spec, "in the header")
    if spec.header_line:
        check_has_rows(path, lines, head, spec)
    wanted = [c for c in spec.source_columns if c in header]
    slices = {c: slice(spec.fixed_width[c][0] - 1, spec.fixed_width[c][1]) for c in wanted} \
        if fixed else {}
    positions = {c: header.index(c) for c in wanted}
    rows = Rows(wanted)

    line_no = 0
    with open_bytes(path) as fh:
        stream = io.TextIOWrapper(fh, encoding=text_encoding(spec), newline="")
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
                        rows.rejects.append(field_count_reject(line_no, line, len(fields),
                                                               len(header)))
                        continue
                    values = {c: fields[pos] for c, pos in positions.items()}
                rows.add(line_no, line, values)
                if rows.full:
                    yield rows.flush()
        except UnicodeDecodeError as exc:
            raise undecodable(path, line_no + 1, spec, exc) from None
    if rows:
        yield rows.flush()
    elif line_no <= spec.header_line:
        raise FileRejected(f"{path.name}: empty file (no data lines)")


# -------------------------------------------------------------------------------------- XLSX
