with

events as (

    select * from {{ ref('int_events_unioned') }}

),

session_activity as (

    select
        session_id,

        -- who: a session belongs to at most one user; a guest who registers or a visitor who
        -- logs in becomes identified part-way through
        max(user_id) as user_id,
        min(case when user_id is not null then event_ts end) as first_identified_ts,

        -- when
        min(event_ts) as session_start_ts,
        max(event_ts) as session_end_ts,

        -- how much
        sum(case when topic = 'page_view_events' then 1 else 0 end) as page_views,
        sum(case when topic = 'listen_events' then 1 else 0 end) as songs_played,
        sum(case when topic = 'listen_events' then duration_s else 0 end) as listening_s,
        max(case when page = 'Cancellation Confirmation' then 1 else 0 end) as churned

    from events
    group by session_id

),

first_requests as (

    -- the first page request of each session: where it came from and in what state
    select
        session_id,
        auth,
        level,
        zip,
        city,
        state,
        lat,
        lon,
        user_agent,
        row_number() over (
            partition by session_id order by event_ts, item_in_session, event_id
        ) as request_number
    from events
    where topic = 'page_view_events'

),

sessions as (

    select
        -- ids
        session_activity.session_id,
        session_activity.user_id,

        -- state at the start
        first_requests.auth as first_auth,
        first_requests.level as first_level,

        -- location and device of the session
        first_requests.zip,
        first_requests.city,
        first_requests.state,
        first_requests.lat,
        first_requests.lon,
        first_requests.user_agent,

        -- timestamps
        session_activity.session_start_ts,
        session_activity.session_end_ts,
        session_activity.first_identified_ts,
        cast(session_activity.session_start_ts as date) as session_date,

        -- measures
        {{ dbt.datediff(
            'session_activity.session_start_ts', 'session_activity.session_end_ts', 'second'
        ) }} as session_length_s,
        session_activity.page_views,
        session_activity.songs_played,
        session_activity.listening_s,
        session_activity.churned = 1 as is_churn_session

    from session_activity
    left join first_requests
        on
            session_activity.session_id = first_requests.session_id
            and first_requests.request_number = 1

)

select * from sessions
