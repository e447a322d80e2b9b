with

page_views as (

    select * from {{ ref('fact_page_views') }}

),

calendar as (

    select distinct date_day from {{ ref('dim_datetime') }}

),

user_days as (

    -- an identified user active on a day, with the level of their last request that day
    select
        event_date,
        user_id,
        level,
        row_number() over (
            partition by event_date, user_id order by event_ts desc, page_view_key desc
        ) as recency
    from page_views
    where user_id is not null

),

daily as (

    select
        event_date,
        count(*) as active_users,
        sum(case when level = 'paid' then 1 else 0 end) as paid_users,
        sum(case when level = 'free' then 1 else 0 end) as free_users
    from user_days
    where recency = 1
    group by event_date

),

final as (

    select
        calendar.date_day as activity_date,
        coalesce(daily.active_users, 0) as active_users,
        coalesce(daily.paid_users, 0) as paid_users,
        coalesce(daily.free_users, 0) as free_users
    from calendar
    left join daily
        on calendar.date_day = daily.event_date

)

select * from final
