{{ config(**beatlytica.incremental_by_day(
    'event_date', cluster_by=['song_key', 'artist_key', 'user_key']
)) }}

{#-
  One row per song played. Incremental by UTC day: a run with the vars data_interval_start /
  data_interval_end rebuilds the days the interval touches (insert_overwrite of day partitions
  on BigQuery, delete+insert of those days on DuckDB); without them it rebuilds every day.
-#}

with

listen_events as (

    select * from {{ ref('stg_listen_events') }}
    where {{ beatlytica.in_data_interval_days('event_date') }}

),

users as (

    select * from {{ ref('dim_users') }}

),

streams as (

    select
        -- ids
        listen_events.event_id as stream_key,
        coalesce(users.user_key, {{ beatlytica.unknown_key() }}) as user_key,
        {{ beatlytica.song_key('listen_events.artist_name', 'listen_events.song_title') }}
            as song_key,
        {{ beatlytica.artist_key('listen_events.artist_name') }} as artist_key,
        {{ beatlytica.location_key('listen_events') }} as location_key,
        {{ beatlytica.datetime_key('listen_events.event_ts') }} as datetime_key,

        -- degenerate dimensions
        listen_events.user_id,
        listen_events.session_id,
        listen_events.item_in_session,
        listen_events.level,
        listen_events.auth,

        -- measures
        listen_events.duration_s,

        -- timestamps
        listen_events.event_ts,
        listen_events.event_date

    from listen_events
    -- the user's version valid at the event (guests and logged-out visitors: unknown member)
    left join users
        on
            listen_events.user_id = users.user_id
            and listen_events.event_ts >= users.valid_from
            and listen_events.event_ts < coalesce(
                users.valid_to, {{ beatlytica.timestamp_literal('9999-12-31T00:00:00+00:00') }}
            )

)

select * from streams
