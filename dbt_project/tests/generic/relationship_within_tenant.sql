{% test relationship_within_tenant(model, column_name, to, field) %}
{#- Like `relationships`, but keys are only unique within a tenant. -#}
select child.tenant_id, child.{{ column_name }}
from (select * from {{ model }}) as child
left join {{ to }} as parent
    on parent.tenant_id = child.tenant_id
   and parent.{{ field }} = child.{{ column_name }}
where child.{{ column_name }} is not null
  and parent.{{ field }} is null
{% endtest %}
