{#- The rows of `query` (columns given as [name, type] pairs), written into the SQL as literal
    values when there are at most `max_rows` of them, else `query` itself.

    Incremental models join "what changed since the last run" (a handful of days or orders)
    to tables of millions of rows. Behind a subquery on a watermark the planner cannot see how
    few keys that is, guesses thousands, and hashes the whole fact table; given the keys as
    literal rows it knows their number and uses the indexes. A large set (a replaced file
    spanning years) stays a subquery, where hashing everything is the right plan anyway.
    Outside execution (parse, docs) the query is returned as is. The var inline_set_max_rows
    overrides every model's limit (0: never inline; the tests compare both paths). -#}
{% macro inline_small_set(query, columns, max_rows=2000) %}
    {%- if not execute -%}
        {{ return(query) }}
    {%- endif -%}
    {%- set max_rows = var('inline_set_max_rows', max_rows) | int -%}
    {%- set names = columns | map(attribute=0) | join(', ') -%}
    {%- set found = run_query('select ' ~ names ~ ' from (' ~ query ~ ') as candidate_keys limit '
                              ~ (max_rows + 1)) -%}
    {%- if found.rows | length > max_rows -%}
        {{ return(query) }}
    {%- endif -%}
    {%- set literal_rows = [] -%}
    {%- for row in found.rows -%}
        {%- set cells = [] -%}
        {%- for column in columns -%}
            {%- set value = row[loop.index0] -%}
            {%- do cells.append('null' if value is none else
                                "'" ~ (value | string | replace("'", "''")) ~ "'::" ~ column[1]) -%}
        {%- endfor -%}
        {%- do literal_rows.append('(' ~ cells | join(', ') ~ ')') -%}
    {%- endfor -%}
    {%- if literal_rows -%}
        {{ return('select * from (values ' ~ literal_rows | join(', ') ~ ') as keys(' ~ names ~ ')') }}
    {%- endif -%}
    {#- nothing changed: no rows, of the right types -#}
    {%- set typed = [] -%}
    {%- for column in columns -%}
        {%- do typed.append('null::' ~ column[1] ~ ' as ' ~ column[0]) -%}
    {%- endfor -%}
    {{ return('select ' ~ typed | join(', ') ~ ' where false') }}
{% endmacro %}
