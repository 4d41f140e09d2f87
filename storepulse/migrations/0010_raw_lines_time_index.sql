-- Exports arrive roughly in time order and raw lines are only appended, so ordered_at follows
-- the table's physical order closely. A BRIN index lets "lines since day D" (the dbt test that
-- reconciles each recomputed day with raw) skip the history instead of scanning all of it.
create index sales_lines_by_time on raw.sales_lines using brin (ordered_at)
    with (pages_per_range = 32);
