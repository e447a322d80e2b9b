{#-
  The data interval of a run, from the vars `data_interval_start` / `data_interval_end` that
  Airflow passes (ISO 8601, end exclusive, a naive timestamp is UTC). Both or neither: without
  them a run processes everything.
-#}

{% macro data_interval() -%}
    {%- set raw_start = var('data_interval_start', none) -%}
    {%- set raw_end = var('data_interval_end', none) -%}
    {%- if raw_start is none and raw_end is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if raw_start is none or raw_end is none -%}
        {{ exceptions.raise_compiler_error(
            "vars data_interval_start and data_interval_end go together, found start="
            ~ raw_start ~ " end=" ~ raw_end) }}
    {%- endif -%}
    {%- set start = beatlytica.parse_utc_timestamp(raw_start, 'data_interval_start') -%}
    {%- set end = beatlytica.parse_utc_timestamp(raw_end, 'data_interval_end') -%}
    {%- if start >= end -%}
        {{ exceptions.raise_compiler_error(
            "data_interval_start must be before data_interval_end, found "
            ~ start.isoformat() ~ " >= " ~ end.isoformat()) }}
    {%- endif -%}
    {%- set dt = modules.datetime -%}
    {#- the UTC days the interval touches: [first_day, end_day) -#}
    {%- set first_day = start.date() -%}
    {%- set end_day = (end - dt.timedelta(microseconds=1)).date() + dt.timedelta(days=1) -%}
    {{ return({
        'start': start.isoformat(),
        'end': end.isoformat(),
        'first_day': first_day.isoformat(),
        'end_day': end_day.isoformat(),
    }) }}
{%- endmacro %}


{#- the UTC days ('YYYY-MM-DD') the interval touches, in order; none without an interval -#}
{% macro data_interval_days() -%}
    {%- set interval = beatlytica.data_interval() -%}
    {%- if interval is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set dt = modules.datetime -%}
    {%- set first = dt.date.fromisoformat(interval.first_day) -%}
    {%- set count = (dt.date.fromisoformat(interval.end_day) - first).days -%}
    {%- set days = [] -%}
    {%- for offset in range(count) -%}
        {%- do days.append((first + dt.timedelta(days=offset)).isoformat()) -%}
    {%- endfor -%}
    {{ return(days) }}
{%- endmacro %}


{#- a var as an aware UTC datetime; YAML may already have parsed it into a datetime -#}
{% macro parse_utc_timestamp(value, name) -%}
    {%- set dt = modules.datetime -%}
    {%- if value is string -%}
        {%- set text = value.strip() -%}
        {%- if text.endswith('Z') -%}{%- set text = text[:-1] ~ '+00:00' -%}{%- endif -%}
        {%- set parsed = none -%}
        {%- set attempt = modules.re.match(
            '^\\d{4}-\\d{2}-\\d{2}([T ]\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,6})?)?)?([+-]\\d{2}:\\d{2})?$', text) -%}
        {%- if attempt is none -%}
            {{ exceptions.raise_compiler_error(
                "var " ~ name ~ " must be an ISO 8601 timestamp, found '" ~ value ~ "'") }}
        {%- endif -%}
        {%- set parsed = dt.datetime.fromisoformat(text) -%}
    {%- elif value is not none and value.year is defined and value.hour is defined -%}
        {%- set parsed = value -%}
    {%- elif value is not none and value.year is defined -%}
        {%- set parsed = dt.datetime(value.year, value.month, value.day) -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "var " ~ name ~ " must be an ISO 8601 timestamp, found " ~ value) }}
    {%- endif -%}
    {%- if parsed.tzinfo is none -%}
        {%- set parsed = parsed.replace(tzinfo=modules.pytz.utc) -%}
    {%- endif -%}
    {{ return(parsed.astimezone(modules.pytz.utc)) }}
{%- endmacro %}


{#- a predicate: the date column lies on a UTC day the interval touches (true without vars) -#}
{% macro in_data_interval_days(date_column) -%}
    {%- set interval = beatlytica.data_interval() -%}
    {%- if interval is none -%}
        1 = 1
    {%- else -%}
        {{ date_column }} >= date '{{ interval.first_day }}'
        and {{ date_column }} < date '{{ interval.end_day }}'
    {%- endif -%}
{%- endmacro %}


{#- a predicate: the timestamp column lies in [start, end) of the interval (true without vars) -#}
{% macro in_data_interval(timestamp_column) -%}
    {%- set interval = beatlytica.data_interval() -%}
    {%- if interval is none -%}
        1 = 1
    {%- else -%}
        {{ timestamp_column }} >= {{ beatlytica.timestamp_literal(interval.start) }}
        and {{ timestamp_column }} < {{ beatlytica.timestamp_literal(interval.end) }}
    {%- endif -%}
{%- endmacro %}
