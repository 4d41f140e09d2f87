-- Ids numbered across all tenants leak the others' volumes through the gaps in a tenant's own
-- rows (ml.anomalies.alert_seq, the alert sensor's cursor; fct_sales_lines.source_file_id,
-- the load ledger's id). Tenants get SELECT on every other column instead of the table.
create table ops.platform_columns (
    column_name text primary key,
    reason      text not null
);
insert into ops.platform_columns values
    ('alert_seq', 'one sequence for every tenant''s anomalies (the alert sensor''s cursor)'),
    ('source_file_id', 'the load ledger''s id, shared by every tenant''s files');

create or replace function ops.apply_tenant_isolation(target regclass) returns void
    language plpgsql
    set search_path = pg_catalog, ops
as $$
declare
    visible text;
    hides_columns boolean;
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
    select exists (select 1 from pg_attribute a join ops.platform_columns p
                   on p.column_name = a.attname
                   where a.attrelid = target and a.attnum > 0 and not a.attisdropped)
        into hides_columns;
    if not hides_columns then
        if not has_table_privilege('storepulse_tenants', target, 'select') then
            execute format('grant select on %s to storepulse_tenants', target);
        end if;
        return;
    end if;
    if has_table_privilege('storepulse_tenants', target, 'select') then
        execute format('revoke select on %s from storepulse_tenants', target);
    end if;
    for visible in
        select a.attname from pg_attribute a
        where a.attrelid = target and a.attnum > 0 and not a.attisdropped
          and a.attname not in (select column_name from ops.platform_columns)
          and not has_column_privilege('storepulse_tenants', target, a.attnum, 'select')
    loop
        execute format('grant select (%I) on %s to storepulse_tenants', visible, target);
    end loop;
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
