-- JIT compilation costs 0.2-1 s per large query plan; the platform's queries (dbt models,
-- incremental batches, dashboards) are short enough that it never pays back. New sessions of
-- this database start with it off.
do $$
begin
    execute format('alter database %I set jit = off', current_database());
end
$$;
