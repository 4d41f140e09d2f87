-- Raw rows are only ever appended, file by file, so source_file_id grows with the physical
-- order of the table. A BRIN index answers "rows of file N" as well as a btree here, and
-- costs almost nothing to maintain during COPY (measured: COPY of the UCI export 1.29 s with
-- the btree, 1.05 s with BRIN).
drop index raw.sales_lines_by_file;
create index sales_lines_by_file on raw.sales_lines using brin (source_file_id)
    with (pages_per_range = 32);
