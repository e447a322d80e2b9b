with

streams as (

    select * from {{ ref('fact_streams') }}

),

hours as (

    select * from {{ ref('dim_datetime') }}

),

hourly as (

    select
        datetime_key,
        count(*) as streams,
        sum(case when level = 'paid' then 1 else 0 end) as paid_streams,
        sum(case when level = 'free' then 1 else 0 end) as free_streams,
        count(distinct user_id) as listeners
    from streams
    group by datetime_key

),

final as (

    select
        hours.datetime_key,
        hours.datetime_hour as stream_hour,
        hours.date_day as stream_date,
        hours.hour_of_day,
        hours.is_weekend,
        coalesce(hourly.streams, 0) as streams,
        coalesce(hourly.paid_streams, 0) as paid_streams,
        coalesce(hourly.free_streams, 0) as free_streams,
        coalesce(hourly.listeners, 0) as listeners
    from hours
    left join hourly
        on hours.datetime_key = hourly.datetime_key

)

select * from final
