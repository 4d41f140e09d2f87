{% test unique_combination_of_columns(model, combination_of_columns) %}
{#- Fails with every key that appears more than once. (dbt_utils has this; we keep the project
    free of package downloads so it installs offline.) -#}
select {{ combination_of_columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}
