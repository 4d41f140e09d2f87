-- pg_roles is readable by every role, so a tenant could list the others from role names that
-- contain their slugs. Tenant logins are now the prefix and a random token; existing ones
-- are renamed (ops.tenant_roles maps them; the next dashboards sync updates Metabase's
-- connections, and passwords survive the rename under SCRAM, PostgreSQL's default).
do $$
declare
    mapped record;
    renamed text;
begin
    for mapped in
        select t.role_name, t.tenant_id from ops.tenant_roles t
        join pg_roles r on r.rolname = t.role_name
        where t.role_name like '%' || t.tenant_id
    loop
        renamed := left(mapped.role_name, length(mapped.role_name) - length(mapped.tenant_id))
                   || substr(md5(random()::text || clock_timestamp()::text), 1, 12);
        execute format('alter role %I rename to %I', mapped.role_name, renamed);
        update ops.tenant_roles set role_name = renamed where role_name = mapped.role_name;
    end loop;
end
$$;
