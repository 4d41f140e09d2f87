-- How far anomaly detection has looked per tenant: a daily run re-judges only recent days
-- (with enough history for the baselines) and the whole history is rescanned weekly.
create table ml.anomaly_scans (
    tenant_id        text primary key,
    scanned_through  date not null,
    full_scan_at     timestamptz not null,
    last_scan_at     timestamptz not null default now()
);
select ops.apply_tenant_isolation('ml.anomaly_scans');
