-- Sales reach staging only once published: the raw gate passed their batch or a person
-- released it. Before, staging showed every file not held, including one loaded by
-- `storepulse ingest` that no check had seen. Existing current, unheld files count as
-- published (they were downstream already).
alter table raw.ingest_files add column published_at timestamptz;
update raw.ingest_files set published_at = loaded_at
where status = 'loaded' and held_at is null;
