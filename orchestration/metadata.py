"""Asset metadata a person can read at a glance in the Dagster UI."""

from __future__ import annotations

import pandas as pd
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

_TYPES = {"b": "bool", "i": "int", "u": "int", "f": "float"}


def table_metadata(frame: pd.DataFrame) -> MetadataValue:
    """A small DataFrame as a table the UI shows as is (not behind "Show Markdown")."""
    schema = TableSchema(columns=[TableColumn(str(name), _TYPES.get(frame[name].dtype.kind,
                                                                    "string"))
                                  for name in frame.columns])
    records = [TableRecord({str(k): (None if pd.isna(v) else
                                     v.item() if hasattr(v, "item") else v)
                            for k, v in row.items()})
               for row in frame.to_dict("records")]
    return MetadataValue.table(records, schema)
