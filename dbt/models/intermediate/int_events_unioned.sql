with

{#- one import CTE per event topic (beatlytica.lake_topics(), from the event model) #}
{%- for topic in beatlytica.lake_topics() %}

    {{ topic }} as (

        select * from {{ ref('stg_' ~ topic) }}

    ),
{%- endfor %}

unioned as (
    {% for topic in beatlytica.lake_topics() %}
        select
            -- ids
            event_id,
            '{{ topic }}' as topic,
            session_id,
            item_in_session,
            user_id,

            -- what happened
            {% if topic == 'page_view_events' -%}
                page,
            {%- elif topic == 'listen_events' -%}
                'NextSong' as page,
            {%- else -%}
                cast(null as {{ dbt.type_string() }}) as page,
            {%- endif %}
            {% if topic == 'auth_events' -%}
                cast(null as {{ dbt.type_string() }}) as auth,
            {%- else -%}
                auth,
            {%- endif %}
            level,
            {{ 'true' if topic == 'status_change_events' else 'false' }} as is_status_change,
            {% if topic in ('listen_events', 'page_view_events') -%}
                artist_name,
                song_title,
                duration_s,
            {%- else -%}
                cast(null as {{ dbt.type_string() }}) as artist_name,
                cast(null as {{ dbt.type_string() }}) as song_title,
                cast(null as {{ dbt.type_float() }}) as duration_s,
            {%- endif %}

            -- user identity
            first_name,
            last_name,
            gender,
            registration,

            -- location and device
            zip,
            city,
            state,
            lat,
            lon,
            user_agent,

            -- timestamps
            event_ts,
            event_date

        from {{ topic }}
        {% if not loop.last %}
            union all
        {% endif %}
    {%- endfor %}
)

select * from unioned
