-- When a file version was replaced, so incremental models can recompute what it touched.
alter table raw.ingest_files add column superseded_at timestamptz;
