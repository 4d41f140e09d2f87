-- Tenant isolation in the database itself (ARCHITECTURE.md, "Tenant isolation").
--
-- Two group roles (cluster-wide, created once): storepulse_tenants, whose members are the
-- tenants' login roles, and storepulse_platform, the role that loads, models and forecasts.
-- Tenants may read marts and ml only, and only their own rows: row-level security is enabled
-- and forced on every table there, comparing tenant_id with ops.current_tenant().
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'storepulse_tenants') then
        create role storepulse_tenants nologin;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'storepulse_platform') then
        create role storepulse_platform nologin;
    end if;
end
$$;
grant storepulse_platform to current_user;

-- Which tenant the logged-in role belongs to. SECURITY DEFINER so tenant roles need no access
-- to ops; it reads session_user, the authenticated login, because inside a security definer
-- function current_user is the owner, and a user cannot change session_user with SET or
-- SET ROLE. A fixed search_path keeps the function from resolving objects a caller planted.
create function ops.current_tenant() returns text
    language sql stable security definer
    set search_path = pg_catalog, ops
as $$
    select tenant_id from ops.tenant_roles where role_name = session_user
$$;
revoke all on function ops.current_tenant() from public;
grant execute on function ops.current_tenant() to storepulse_tenants;

-- Nothing but marts and ml is visible to tenants.
revoke all on schema raw, staging, intermediate, ops from public;
revoke create on schema public from public;
grant usage on schema ops to storepulse_tenants;  -- to call ops.current_tenant() only
grant usage on schema marts, ml to storepulse_tenants;
do $$
begin
    execute format('revoke temporary on database %I from public', current_database());
    execute format('grant connect on database %I to storepulse_tenants', current_database());
end
$$;

-- Row-level security on a table (marts get it from dbt's post-hook, ml.* here).
create function ops.apply_tenant_isolation(target regclass) returns void
    language plpgsql
as $$
begin
    execute format('alter table %s enable row level security', target);
    execute format('alter table %s force row level security', target);
    execute format('drop policy if exists tenant_rows on %s', target);
    execute format('create policy tenant_rows on %s for select to storepulse_tenants '
                   'using (tenant_id = ops.current_tenant())', target);
    execute format('drop policy if exists platform_rows on %s', target);
    execute format('create policy platform_rows on %s to storepulse_platform '
                   'using (true) with check (true)', target);
    execute format('grant select on %s to storepulse_tenants', target);
end
$$;
revoke all on function ops.apply_tenant_isolation(regclass) from public;

select ops.apply_tenant_isolation('ml.forecasts');
select ops.apply_tenant_isolation('ml.forecast_backtests');
select ops.apply_tenant_isolation('ml.anomalies');
