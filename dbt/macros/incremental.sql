{#-
  Incremental facts are replaced one UTC day partition at a time, on both adapters:

  * BigQuery: `insert_overwrite` on a table partitioned by day (and clustered), so a rerun
    rewrites exactly the day partitions it selected;
  * DuckDB: `delete+insert` keyed on the day column, which deletes those days and inserts them
    again: the same semantics without partitions.

  A model selects whole days (`in_data_interval_days`), so replacing a day never loses the part
  of it that lies outside the Airflow interval, and a rerun of any interval never duplicates.
  Usage: {{ config(**beatlytica.incremental_by_day('event_date', cluster_by=[...])) }}
-#}

{% macro incremental_by_day(date_column, cluster_by=none) -%}
    {{ return(adapter.dispatch('incremental_by_day', 'beatlytica')(date_column, cluster_by)) }}
{%- endmacro %}

{% macro default__incremental_by_day(date_column, cluster_by) -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'delete+insert',
        'unique_key': date_column,
        'on_schema_change': 'fail',
    }) }}
{%- endmacro %}

{% macro bigquery__incremental_by_day(date_column, cluster_by) -%}
    {%- set config = {
        'materialized': 'incremental',
        'incremental_strategy': 'insert_overwrite',
        'partition_by': {'field': date_column, 'data_type': 'date', 'granularity': 'day'},
        'cluster_by': cluster_by,
        'on_schema_change': 'fail',
    } -%}
    {#- with an interval, its days are static partitions: replaced even when they come out
        empty, and no scan to discover them -#}
    {%- set days = beatlytica.data_interval_days() -%}
    {%- if days is not none -%}
        {%- set partitions = [] -%}
        {%- for day in days -%}{%- do partitions.append("date '" ~ day ~ "'") -%}{%- endfor -%}
        {%- do config.update({'partitions': partitions}) -%}
    {%- endif -%}
    {{ return(config) }}
{%- endmacro %}
