-- Great Expectations gates: which run loaded a file (its batch), holds on batches whose
-- blocking expectations failed, and per-tenant plausibility limits the suites read.
alter table raw.ingest_files
    add column batch_id    text,
    add column held_at     timestamptz,
    add column held_reason text;
create index ingest_files_by_batch on raw.ingest_files (tenant_id, batch_id);

alter table ops.tenants
    add column max_unit_price      numeric not null default 10000 check (max_unit_price > 0),
    add column accepted_currencies text[];

alter table ops.quality_results
    add column asset            text not null default 'raw/sales_lines',
    add column unexpected_count bigint,
    add column file_ids         bigint[] not null default '{}';
create index quality_results_by_tenant on ops.quality_results (tenant_id, checked_at desc);
