{#- Land models in the schema their folder names (staging, intermediate, marts), not in
    "<target>_<custom>": the schemas are part of the platform's contract (ARCHITECTURE.md). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
