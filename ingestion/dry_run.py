"""A spec tried on a file without loading it: the mapping, the first rows as they would load,
and what would be quarantined and why. Reads the file, writes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ingestion.readers import FileRejected, Reject, read_chunks
from ingestion.spec import Mapping, SourceSpec
from ingestion.validate import TenantInfo, new_file_state, validate_chunk

# Stands in for a tenant when none is named: its fields show as placeholders.
PLACEHOLDER_TENANT = TenantInfo(tenant_id="(tenant)", timezone="UTC", currency="XXX",
                                country_code="ZZ")


@dataclass
class DryRun:
    spec: SourceSpec
    rows_read: int = 0
    rows_loadable: int = 0
    first_rows: list[dict] = field(default_factory=list)
    quarantined: list[Reject] = field(default_factory=list)
    rows_quarantined: int = 0
    rejected: str | None = None  # the whole file would be rejected, with this reason

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_loadable + self.rows_quarantined


def describe(mapping: Mapping) -> str:
    """One mapping as a person reads it: ``Summe / Menge``, ``Kunde + '/' + Datum``."""
    if mapping.join:
        return f" + {mapping.separator!r} + ".join(mapping.join)
    if mapping.divided_by:
        return f"{mapping.column} / {mapping.divided_by}"
    if mapping.equals is not None:
        return f"{mapping.column} = {mapping.equals!r}"
    if mapping.starts_with is not None:
        return f"{mapping.column} starts with {mapping.starts_with!r}"
    if mapping.derive:
        return f"derived: {mapping.derive.replace('_', ' ')}"
    if mapping.tenant:
        return f"the tenant's {mapping.tenant}"
    if mapping.column is None:
        return f"constant {mapping.constant!r}"
    return mapping.column


def dry_run(path: Path, spec: SourceSpec, tenant: TenantInfo = PLACEHOLDER_TENANT,
            known_stores: set[str] | None = None, keep: int = 5,
            keep_quarantined: int = 20) -> DryRun:
    """Read and validate ``path`` as the loader would (store catalogue only when given)."""
    report = DryRun(spec=spec)
    state = new_file_state(spec, tenant, file_id=0, known_stores=known_stores)
    try:
        for chunk in read_chunks(Path(path), spec):
            checked = validate_chunk(chunk, spec, state)
            report.rows_read += chunk.rows_read
            report.rows_loadable += checked.good.num_rows
            report.rows_quarantined += len(checked.quarantined)
            wanted = keep - len(report.first_rows)
            if wanted > 0:
                shown = checked.good.drop_columns(["tenant_id", "source_file_id"])
                report.first_rows += shown.slice(0, wanted).to_pylist()
            room = keep_quarantined - len(report.quarantined)
            report.quarantined += checked.quarantined[:max(room, 0)]
    except FileRejected as exc:
        report.rejected = str(exc)
    except Exception as exc:  # as the loader: any failure of one file rejects that file
        report.rejected = f"{Path(path).name}: could not be read: {type(exc).__name__}: {exc}"
    return report
