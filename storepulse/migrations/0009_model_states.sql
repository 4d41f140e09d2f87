-- The fitted parameters of each series' champion (Prophet's k, m, delta, beta, sigma_obs), so
-- the next day's refit starts its optimizer from yesterday's optimum instead of from scratch.
-- Replaced with the tenant's forecasts, in the same transaction.
create table ml.model_states (
    tenant_id       text not null,
    store_id        text not null,
    metric          text not null,
    model_name      text not null,
    model_version   text not null,
    params          jsonb not null,
    fitted_through  date not null,
    run_id          text not null,
    fitted_at       timestamptz not null default now(),
    primary key (tenant_id, store_id, metric)
);
select ops.apply_tenant_isolation('ml.model_states');
