with

streams as (

    select * from {{ ref('fact_streams') }}

),

calendar as (

    select distinct date_day from {{ ref('dim_datetime') }}

),

daily as (

    select
        event_date,
        count(*) as streams,
        sum(case when level = 'paid' then 1 else 0 end) as paid_streams,
        sum(case when level = 'free' then 1 else 0 end) as free_streams,
        count(distinct user_id) as listeners,
        sum(duration_s) / 3600.0 as listening_hours
    from streams
    group by event_date

),

final as (

    select
        calendar.date_day as stream_date,
        coalesce(daily.streams, 0) as streams,
        coalesce(daily.paid_streams, 0) as paid_streams,
        coalesce(daily.free_streams, 0) as free_streams,
        coalesce(daily.listeners, 0) as listeners,
        coalesce(daily.listening_hours, 0) as listening_hours
    from calendar
    left join daily
        on calendar.date_day = daily.event_date

)

select * from final
