{#-
    A score from 1 to `buckets` by rank within `partition_by`: ceil(buckets x rank / count).
    rank() gives tied rows the lowest position of their group, so a large tie at the bottom
    (the many customers who bought once) scores low instead of sharing the tie's top
    cumulative share, as ceil(buckets x cume_dist) would.
-#}
{% macro rank_score(buckets, order_by, partition_by='tenant_id') -%}
    ceil({{ buckets }} * (rank() over (partition by {{ partition_by }} order by {{ order_by }}))::numeric
        / count(*) over (partition by {{ partition_by }}))::int
{%- endmacro %}
