-- Schemas for every layer and the raw / ml / ops tables of ARCHITECTURE.md.
create schema if not exists raw;
create schema if not exists staging;
create schema if not exists intermediate;
create schema if not exists marts;
create schema if not exists ml;
create schema if not exists ops;

create table ops.tenants (
    tenant_id            text primary key check (tenant_id ~ '^[a-z][a-z0-9_]{1,40}$'),
    name                 text not null,
    timezone             text not null default 'UTC',
    currency             text not null default 'USD' check (currency ~ '^[A-Z]{3}$'),
    country_code         text not null default 'US' check (country_code ~ '^[A-Z]{2}$'),
    created_at           timestamptz not null default now()
);

create table ops.tenant_roles (
    role_name  text primary key,
    tenant_id  text not null references ops.tenants (tenant_id) on delete cascade
);

create table ops.audit_log (
    audit_id       bigserial primary key,
    at             timestamptz not null default now(),
    actor          text not null default current_user,
    action         text not null,
    tenant_id      text,
    details        jsonb not null default '{}'::jsonb,
    before_counts  jsonb,
    after_counts   jsonb
);

create table raw.ingest_files (
    file_id           bigserial primary key,
    tenant_id         text not null,
    source            text not null,
    target            text not null default 'sales_lines',
    file_name         text not null,
    path              text not null,
    sha256            text not null,
    bytes             bigint not null,
    version           integer not null default 1,
    rows_read         bigint not null default 0,
    rows_loaded       bigint not null default 0,
    rows_quarantined  bigint not null default 0,
    -- loading: a transaction is in flight; loaded: current version; superseded: a newer
    -- version of the same file name replaced it; rejected: file-level problem, nothing loaded.
    status            text not null check (status in ('loaded', 'superseded', 'rejected')),
    error             text,
    superseded_by     bigint references raw.ingest_files (file_id),
    loaded_at         timestamptz not null default now()
);
-- Exactly once: a given content is loaded at most once per tenant and source.
create unique index ingest_files_once on raw.ingest_files (tenant_id, source, sha256)
    where status in ('loaded', 'superseded');
create index ingest_files_by_name on raw.ingest_files (tenant_id, source, file_name);

create table raw.sales_lines (
    tenant_id       text not null,
    store_id        text not null,
    order_id        text not null,
    line_number     integer not null,
    ordered_at      timestamptz not null,
    product_id      text not null,
    product_name    text,
    quantity        numeric not null,
    unit_price      numeric not null,
    currency        text not null,
    customer_id     text,
    country         text,
    channel         text,
    is_return       boolean not null,
    source_file_id  bigint not null,
    source_line     bigint not null
);
create index sales_lines_by_file on raw.sales_lines (source_file_id);

create table raw.stores (
    tenant_id       text not null,
    store_id        text not null,
    store_name      text,
    city            text,
    country         text,
    opened_on       date,
    source_file_id  bigint not null,
    source_line     bigint not null
);
create index stores_by_file on raw.stores (source_file_id);

create table raw.products (
    tenant_id       text not null,
    product_id      text not null,
    product_name    text,
    category        text,
    list_price      numeric,
    source_file_id  bigint not null,
    source_line     bigint not null
);
create index products_by_file on raw.products (source_file_id);

create table raw.customers (
    tenant_id       text not null,
    customer_id     text not null,
    first_seen_on   date,
    country         text,
    source_file_id  bigint not null,
    source_line     bigint not null
);
create index customers_by_file on raw.customers (source_file_id);

create table raw.quarantine (
    quarantine_id  bigserial primary key,
    file_id        bigint not null references raw.ingest_files (file_id),
    tenant_id      text not null,
    line_number    bigint not null,
    field          text,
    reason         text not null,
    raw_text       text not null,
    quarantined_at timestamptz not null default now()
);
create index quarantine_by_file on raw.quarantine (file_id);

create table ml.forecasts (
    tenant_id        text not null,
    store_id         text not null,
    metric           text not null,
    ds               date not null,
    yhat             double precision not null,
    yhat_lower_80    double precision,
    yhat_upper_80    double precision,
    yhat_lower_95    double precision,
    yhat_upper_95    double precision,
    is_closed_day    boolean not null default false,
    model_name       text not null,
    model_version    text not null,
    champion_reason  text not null,
    run_id           text not null,
    created_at       timestamptz not null default now(),
    primary key (tenant_id, store_id, metric, ds)
);

create table ml.forecast_backtests (
    tenant_id    text not null,
    store_id     text not null,
    metric       text not null,
    model_name   text not null,
    fold         integer not null,
    cutoff       date not null,
    horizon_days integer not null,
    mape         double precision,
    wape         double precision,
    smape        double precision,
    mase         double precision,
    coverage_80  double precision,
    coverage_95  double precision,
    run_id       text not null,
    created_at   timestamptz not null default now(),
    primary key (tenant_id, store_id, metric, model_name, fold)
);

create table ml.anomalies (
    tenant_id     text not null,
    anomaly_id    text not null,
    store_id      text not null,
    day           date not null,
    kpi           text not null,
    detector      text not null,
    actual        double precision,
    expected      double precision,
    lower_bound   double precision,
    upper_bound   double precision,
    score         double precision,
    severity      text not null check (severity in ('low', 'medium', 'high', 'critical')),
    explanation   text not null,
    run_id        text not null,
    detected_at   timestamptz not null default now(),
    primary key (tenant_id, anomaly_id)
);

create table ops.quality_results (
    result_id    bigserial primary key,
    run_id       text not null,
    tenant_id    text not null,
    suite        text not null,
    expectation  text not null,
    severity     text not null check (severity in ('error', 'warn')),
    success      boolean not null,
    observed     jsonb,
    checked_at   timestamptz not null default now()
);

create table ops.alert_deliveries (
    delivery_id     bigserial primary key,
    tenant_id       text not null,
    anomaly_id      text,
    channel         text not null check (channel in ('email', 'sms')),
    recipient       text not null,
    status          text not null default 'pending'
                    check (status in ('pending', 'sent', 'failed', 'not_configured', 'suppressed')),
    attempts        integer not null default 0,
    last_error      text,
    next_attempt_at timestamptz not null default now(),
    sent_at         timestamptz,
    message_id      text,
    payload         jsonb not null default '{}'::jsonb,
    created_at      timestamptz not null default now(),
    unique (tenant_id, anomaly_id, channel, recipient)
);
