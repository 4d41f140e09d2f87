{#- The single value `query` returns, written into the SQL as a literal of `type` (looked up
    when the model or test runs), for the same reason: a bound compared with a literal lets
    the planner use its statistics and indexes. Outside execution: the query as a subquery. -#}
{% macro inline_value(query, type) %}
    {%- if not execute -%}
        {{ return('(' ~ query ~ ')') }}
    {%- endif -%}
    {%- set value = run_query('select (' ~ query ~ ')::text').columns[0].values()[0] -%}
    {{ return('null::' ~ type if value is none else "'" ~ (value | replace("'", "''")) ~ "'::" ~ type) }}
{% endmacro %}
