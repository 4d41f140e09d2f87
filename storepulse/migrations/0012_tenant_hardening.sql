-- Around row-level security: what a tenant's role could do to the platform without reading
-- a single row of another tenant (SECURITY.md).

-- Loads serialise on a row of this table instead of an advisory lock: any role may take any
-- advisory lock (and see held keys in pg_locks), so a tenant could stall another's loads;
-- tenants cannot read, let alone lock, rows of ops tables.
create table ops.load_locks (
    tenant_id text not null,
    source    text not null,
    file_name text not null,
    primary key (tenant_id, source, file_name)
);

-- Isolation is re-applied after every dbt build of a mart. ALTER TABLE and CREATE POLICY
-- wait for an exclusive lock, which a tenant's open transaction on the mart would hold off
-- for ever: change only what is missing, and wait for a lock no longer than lock_timeout.
-- The policy evaluates the tenant once per query ((select ...) is an init plan) rather than
-- once per row.
create or replace function ops.apply_tenant_isolation(target regclass) returns void
    language plpgsql
    set search_path = pg_catalog, ops
as $$
begin
    perform set_config('lock_timeout', '10s', true);
    if not exists (select 1 from pg_class
                   where oid = target and relrowsecurity and relforcerowsecurity) then
        execute format('alter table %s enable row level security', target);
        execute format('alter table %s force row level security', target);
    end if;
    if not exists (select 1 from pg_policy
                   where polrelid = target and polname = 'tenant_rows'
                     and pg_get_expr(polqual, polrelid) like '%SELECT %current_tenant()%') then
        execute format('drop policy if exists tenant_rows on %s', target);
        execute format('create policy tenant_rows on %s for select to storepulse_tenants '
                       'using (tenant_id = (select ops.current_tenant()))', target);
    end if;
    if not exists (select 1 from pg_policy
                   where polrelid = target and polname = 'platform_rows') then
        execute format('create policy platform_rows on %s to storepulse_platform '
                       'using (true) with check (true)', target);
    end if;
    if not has_table_privilege('storepulse_tenants', target, 'select') then
        execute format('grant select on %s to storepulse_tenants', target);
    end if;
end
$$;
revoke all on function ops.apply_tenant_isolation(regclass) from public;

do $$
declare
    target regclass;
begin
    for target in
        select c.oid::regclass from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname in ('marts', 'ml') and c.relkind in ('r', 'p') and c.relrowsecurity
    loop
        perform ops.apply_tenant_isolation(target);
    end loop;
end
$$;

-- Limits on every tenant login: a runaway or idle session cannot hold locks, connections or
-- disk. statement_timeout, idle_in_transaction_session_timeout and work_mem are defaults a
-- session may change with SET (only native SQL could send one: SECURITY.md);
-- temp_file_limit can be set only by a superuser, so it is a real limit where StorePulse
-- runs as one (docker-compose, the embedded server).
create function ops.limit_tenant_role(login text) returns void
    language plpgsql
    set search_path = pg_catalog
as $$
begin
    execute format('alter role %I connection limit 10', login);
    execute format('alter role %I set statement_timeout = %L', login, '60s');
    execute format('alter role %I set idle_in_transaction_session_timeout = %L', login, '60s');
    execute format('alter role %I set work_mem = %L', login, '32MB');
    if (select rolsuper from pg_roles where rolname = current_user) then
        execute format('alter role %I set temp_file_limit = %L', login, '1GB');
    end if;
end
$$;
revoke all on function ops.limit_tenant_role(text) from public;

select ops.limit_tenant_role(role_name) from ops.tenant_roles
where exists (select 1 from pg_roles where rolname = role_name);

-- Only the platform's own roles connect to its database; large objects (which belong to their
-- creator and would outlive a tenant's erasure) cannot be created; table sizes are not
-- readable. Revoking from PUBLIC on built-in functions needs their owner, a superuser.
do $$
begin
    execute format('revoke connect on database %I from public', current_database());
    execute format('grant connect on database %I to storepulse_tenants, storepulse_platform',
                   current_database());
    if (select rolsuper from pg_roles where rolname = current_user) then
        revoke execute on function lo_create(oid), lo_creat(integer), lo_from_bytea(oid, bytea),
            pg_relation_size(regclass), pg_relation_size(regclass, text),
            pg_total_relation_size(regclass), pg_table_size(regclass),
            pg_indexes_size(regclass)
            from public;
        grant execute on function pg_relation_size(regclass), pg_relation_size(regclass, text),
            pg_total_relation_size(regclass), pg_table_size(regclass),
            pg_indexes_size(regclass)
            to storepulse_platform;
        revoke select on pg_stat_user_tables, pg_stat_all_tables, pg_statio_user_tables,
            pg_statio_all_tables, pg_stat_xact_user_tables, pg_stat_xact_all_tables
            from public;
        grant select on pg_stat_user_tables, pg_stat_all_tables, pg_statio_user_tables,
            pg_statio_all_tables, pg_stat_xact_user_tables, pg_stat_xact_all_tables
            to storepulse_platform;
    end if;
end
$$;
