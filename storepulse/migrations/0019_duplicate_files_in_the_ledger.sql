-- A landing file whose bytes were already loaded (a re-upload, a copy under another name)
-- loads nothing, and had no ledger row: the landing sensor, which asks the ledger what it
-- has seen, took it for new on every tick, and `storepulse status` reported it waiting for
-- the daemon forever. Now every file gets a row: 'duplicate', naming the file it repeats.
alter table raw.ingest_files drop constraint ingest_files_status_check;
alter table raw.ingest_files add constraint ingest_files_status_check
    check (status in ('loaded', 'superseded', 'rejected', 'duplicate'));
alter table raw.ingest_files add column duplicate_of bigint references raw.ingest_files (file_id);
