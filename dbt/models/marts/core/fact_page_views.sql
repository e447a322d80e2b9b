{{ config(**beatlytica.incremental_by_day('event_date', cluster_by=['page', 'user_key'])) }}

{#-
  One row per page request, NextSong included. Incremental by UTC day, as fact_streams.
-#}

with

page_view_events as (

    select * from {{ ref('stg_page_view_events') }}
    where {{ beatlytica.in_data_interval_days('event_date') }}

),

users as (

    select * from {{ ref('dim_users') }}

),

page_views as (

    select
        -- ids
        page_view_events.event_id as page_view_key,
        coalesce(users.user_key, {{ beatlytica.unknown_key() }}) as user_key,
        case
            when page_view_events.song_title is null then {{ beatlytica.unknown_key() }}
            else {{ beatlytica.song_key(
                'page_view_events.artist_name', 'page_view_events.song_title'
            ) }}
        end as song_key,
        case
            when page_view_events.artist_name is null then {{ beatlytica.unknown_key() }}
            else {{ beatlytica.artist_key('page_view_events.artist_name') }}
        end as artist_key,
        {{ beatlytica.location_key('page_view_events') }} as location_key,
        {{ beatlytica.datetime_key('page_view_events.event_ts') }} as datetime_key,

        -- degenerate dimensions
        page_view_events.user_id,
        page_view_events.session_id,
        page_view_events.item_in_session,
        page_view_events.page,
        page_view_events.method,
        page_view_events.http_status,
        page_view_events.level,
        page_view_events.auth,

        -- timestamps
        page_view_events.event_ts,
        page_view_events.event_date

    from page_view_events
    -- the user's version valid at the event (guests and logged-out visitors: unknown member)
    left join users
        on
            page_view_events.user_id = users.user_id
            and page_view_events.event_ts >= users.valid_from
            and page_view_events.event_ts < coalesce(
                users.valid_to, {{ beatlytica.timestamp_literal('9999-12-31T00:00:00+00:00') }}
            )

)

select * from page_views
