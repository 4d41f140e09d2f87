-- An anomaly on a day long before the tenant's latest judged day is history, not news: the
-- first load of two years of exports, or a weekly rescan that finds something on an old day,
-- would otherwise page the on-call person about last spring. Such anomalies stay in
-- ml.anomalies and the dashboards; their outbox rows are written as 'suppressed', never sent.
alter table ops.alert_rules
    add column recent_days integer not null default 7 check (recent_days > 0);
