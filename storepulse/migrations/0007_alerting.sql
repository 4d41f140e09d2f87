-- Alerting: who hears about what, per tenant, and an order on anomalies for the sensor's
-- cursor (anomaly ids are stable hashes, not ordered; upserts keep the first number).
create table ops.alert_rules (
    tenant_id              text primary key references ops.tenants (tenant_id) on delete cascade,
    email_recipients       text[] not null default '{}',
    sms_recipients         text[] not null default '{}',
    email_min_severity     text not null default 'medium'
                           check (email_min_severity in ('low', 'medium', 'high', 'critical')),
    sms_min_severity       text not null default 'critical'
                           check (sms_min_severity in ('low', 'medium', 'high', 'critical')),
    -- SMS waits while the tenant's local clock is in [start, end); email always goes.
    quiet_hours_start      time,
    quiet_hours_end        time,
    max_messages_per_hour  integer not null default 6 check (max_messages_per_hour > 0),
    stale_after            interval not null default '3 days',
    dashboard_url          text
);

create sequence ml.anomalies_alert_seq;
alter table ml.anomalies
    add column alert_seq bigint not null default nextval('ml.anomalies_alert_seq');
alter sequence ml.anomalies_alert_seq owned by ml.anomalies.alert_seq;
create index anomalies_by_alert_seq on ml.anomalies (alert_seq);

alter table ops.alert_deliveries
    add column kind     text not null default 'anomaly'
                        check (kind in ('anomaly', 'run_failure', 'check_failure', 'stale_data')),
    add column severity text;
create index alert_deliveries_due on ops.alert_deliveries (next_attempt_at)
    where status = 'pending';
