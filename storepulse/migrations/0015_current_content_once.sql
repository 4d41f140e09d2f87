-- Exactly once applies to what is current: the same bytes load once while their load is the
-- file's current version. Bytes of a superseded version sent again are a new version, so a
-- merchant can revert a mistaken correction by sending the earlier file again.
drop index raw.ingest_files_once;
create unique index ingest_files_once on raw.ingest_files (tenant_id, source, sha256)
    where status = 'loaded';
