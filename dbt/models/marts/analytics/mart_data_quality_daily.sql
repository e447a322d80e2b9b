{{ config(**beatlytica.incremental_by_day('event_date', cluster_by=['topic'])) }}

{#-
  What staging repaired and what it let through, per UTC day and topic. It reads the staging
  views (the raw tables), not the facts, so it is incremental by day like the facts: a run with
  the vars data_interval_start / data_interval_end replaces the days the interval touches, one
  without them every day.
-#}

with

{#- one import CTE per event topic (beatlytica.lake_topics(), from the event model) #}
{%- for topic in beatlytica.lake_topics() %}

    {{ topic }} as (

        select * from {{ ref('stg_' ~ topic) }}
        where {{ beatlytica.in_data_interval_days('event_date') }}

    ),
{%- endfor %}

checked as (
    {% for topic in beatlytica.lake_topics() %}
        select
            event_date,
            '{{ topic }}' as topic,
            {% if topic in ('listen_events', 'page_view_events') -%}
                is_artist_repaired,
                is_song_repaired,
            {%- else -%}
                false as is_artist_repaired,
                false as is_song_repaired,
            {%- endif %}
            is_name_repaired,
            is_location_repaired,
            is_user_agent_unquoted,
            coalesce(registration > event_ts, false) as is_registration_after_event
        from {{ topic }}
        {% if not loop.last %}
            union all
        {% endif %}
    {%- endfor %}
),

daily as (

    select
        -- grain
        event_date,
        topic,

        -- measures
        count(*) as events,
        sum(case when is_artist_repaired then 1 else 0 end) as artists_repaired,
        sum(case when is_song_repaired then 1 else 0 end) as songs_repaired,
        sum(case when is_name_repaired then 1 else 0 end) as names_repaired,
        sum(case when is_location_repaired then 1 else 0 end) as locations_repaired,
        sum(case when is_user_agent_unquoted then 1 else 0 end) as user_agents_unquoted,
        sum(case when is_registration_after_event then 1 else 0 end) as registrations_after_event
    from checked
    group by event_date, topic

)

select * from daily
