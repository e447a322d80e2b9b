{#-
  Keys of the star schema.

  surrogate_key(fields): md5 (32 hex characters) of the fields cast to strings, joined by '|',
  a null written as '_null_' (the dbt_utils recipe, without the package).
  unknown_key(): the key of every dimension's unknown member, '-1': it can never equal an md5.
-#}

{% macro surrogate_key(fields) -%}
    {%- set parts = [] -%}
    {%- for field in fields -%}
        {%- do parts.append("coalesce(cast(" ~ field ~ " as " ~ dbt.type_string() ~ "), '_null_')") -%}
        {%- if not loop.last -%}{%- do parts.append("'|'") -%}{%- endif -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(parts)) }}
{%- endmacro %}


{% macro unknown_key() -%}
    '-1'
{%- endmacro %}


{#- the natural key of dim_location: where an event comes from -#}
{% macro location_key(relation_alias=none) -%}
    {%- set prefix = relation_alias ~ '.' if relation_alias else '' -%}
    {{ beatlytica.surrogate_key([
        prefix ~ 'zip', prefix ~ 'city', prefix ~ 'state', prefix ~ 'lat', prefix ~ 'lon'
    ]) }}
{%- endmacro %}


{#- songs are named by artist and title; artists by name -#}
{% macro song_key(artist_column, title_column) -%}
    {{ beatlytica.surrogate_key([artist_column, title_column]) }}
{%- endmacro %}


{% macro artist_key(artist_column) -%}
    {{ beatlytica.surrogate_key([artist_column]) }}
{%- endmacro %}


{#- dim_datetime's key: the UTC hour of a timestamp as the integer yyyymmddhh -#}
{% macro datetime_key(timestamp_column) -%}
    cast(
        extract(year from {{ timestamp_column }}) * 1000000
        + extract(month from {{ timestamp_column }}) * 10000
        + extract(day from {{ timestamp_column }}) * 100
        + extract(hour from {{ timestamp_column }})
        as {{ dbt.type_bigint() }}
    )
{%- endmacro %}
