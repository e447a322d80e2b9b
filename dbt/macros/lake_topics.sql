{#- generated from src/beatlytica/events.py by `beatlytica codegen`; do not edit -#}
{% macro lake_topics() %}
    {#- the event topics: each has a raw table (source lake) and a stg_<topic> model -#}
    {{ return(['listen_events', 'page_view_events', 'auth_events', 'status_change_events']) }}
{% endmacro %}
