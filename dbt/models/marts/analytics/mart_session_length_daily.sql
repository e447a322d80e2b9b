with

sessions as (

    select * from {{ ref('fact_sessions') }}

),

calendar as (

    select distinct date_day from {{ ref('dim_datetime') }}

),

daily as (

    select
        session_date,
        count(*) as sessions,
        avg(session_length_s) as avg_session_length_s,
        avg(songs_played) as avg_songs_per_session,
        sum(songs_played) as songs_played
    from sessions
    group by session_date

),

final as (

    select
        calendar.date_day as session_date,
        coalesce(daily.sessions, 0) as sessions,
        daily.avg_session_length_s,
        daily.avg_session_length_s / 60.0 as avg_session_length_min,
        daily.avg_songs_per_session,
        coalesce(daily.songs_played, 0) as songs_played
    from calendar
    left join daily
        on calendar.date_day = daily.session_date

)

select * from final
