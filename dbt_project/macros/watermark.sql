{#- The batch watermark of an incremental model: the latest batch_loaded_at in `relation`
    ('-infinity' when empty). Rows loaded after it are what the run has to process. As a
    literal (see inline_value) the planner can estimate how few rows lie beyond it and use the
    batch index; behind a subquery it assumes a third of the table. -#}
{% macro watermark(relation) %}
    {{ return(inline_value("select coalesce(max(batch_loaded_at), '-infinity') from "
                           ~ relation, 'timestamptz')) }}
{% endmacro %}

{#- Incremental models look up their watermark on every run, and the tests of the latest batch
    filter on it; an index makes both a lookup instead of a scan of the whole table. -#}
{% macro watermark_index() %}
create index if not exists {{ this.name }}_batch on {{ this }} (batch_loaded_at)
{% endmacro %}
