{#-
  The few places where DuckDB and BigQuery differ, dispatched by adapter (`default__` is
  DuckDB's and standard SQL; `bigquery__` overrides). Models never branch on the target.
-#}

{#- an absolute point in time: DuckDB's timestamptz, BigQuery's TIMESTAMP -#}
{% macro type_timestamp_tz() -%}
    {{ return(adapter.dispatch('type_timestamp_tz', 'beatlytica')()) }}
{%- endmacro %}

{% macro default__type_timestamp_tz() -%}
    {{ return('timestamp with time zone') }}
{%- endmacro %}

{% macro bigquery__type_timestamp_tz() -%}
    {{ return('timestamp') }}
{%- endmacro %}


{#- a timestamp literal from an ISO 8601 string with a UTC offset -#}
{% macro timestamp_literal(iso_string) -%}
    {{ return(adapter.dispatch('timestamp_literal', 'beatlytica')(iso_string)) }}
{%- endmacro %}

{% macro default__timestamp_literal(iso_string) -%}
    cast('{{ iso_string }}' as {{ beatlytica.type_timestamp_tz() }})
{%- endmacro %}

{% macro bigquery__timestamp_literal(iso_string) -%}
    timestamp '{{ iso_string }}'
{%- endmacro %}


{#- ISO day of week of a date: 1 = Monday … 7 = Sunday -#}
{% macro iso_day_of_week(date_expression) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'beatlytica')(date_expression)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(date_expression) -%}
    cast(extract(isodow from {{ date_expression }}) as {{ dbt.type_int() }})
{%- endmacro %}

{% macro bigquery__iso_day_of_week(date_expression) -%}
    {#- BigQuery's dayofweek is 1 = Sunday … 7 = Saturday -#}
    mod(extract(dayofweek from {{ date_expression }}) + 5, 7) + 1
{%- endmacro %}


{#-
  hour_spine(bounds, start_column, end_column): a select of one row per hour, column
  `datetime_hour`, from start_column to end_column inclusive, both timestamps of the single-row
  relation (or CTE) `bounds`. No rows when the bounds are null.
-#}
{% macro hour_spine(bounds, start_column, end_column) -%}
    {{ return(adapter.dispatch('hour_spine', 'beatlytica')(bounds, start_column, end_column)) }}
{%- endmacro %}

{% macro default__hour_spine(bounds, start_column, end_column) -%}
    select unnest(generate_series({{ start_column }}, {{ end_column }}, interval 1 hour)) as datetime_hour
    from {{ bounds }}
{%- endmacro %}

{% macro bigquery__hour_spine(bounds, start_column, end_column) -%}
    select datetime_hour
    from {{ bounds }}
    cross join unnest(generate_timestamp_array({{ start_column }}, {{ end_column }}, interval 1 hour)) as datetime_hour
{%- endmacro %}
