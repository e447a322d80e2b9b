with

page_views as (

    select * from {{ ref('fact_page_views') }}

),

calendar as (

    select distinct month_start from {{ ref('dim_datetime') }}

),

user_months as (

    -- an identified user active in a month, with the level of their last request that month
    select
        cast({{ dbt.date_trunc('month', 'event_date') }} as date) as activity_month,
        user_id,
        level,
        row_number() over (
            partition by cast({{ dbt.date_trunc('month', 'event_date') }} as date), user_id
            order by event_ts desc, page_view_key desc
        ) as recency
    from page_views
    where user_id is not null

),

monthly as (

    select
        activity_month,
        count(*) as active_users,
        sum(case when level = 'paid' then 1 else 0 end) as paid_users,
        sum(case when level = 'free' then 1 else 0 end) as free_users
    from user_months
    where recency = 1
    group by activity_month

),

final as (

    select
        calendar.month_start as activity_month,
        coalesce(monthly.active_users, 0) as active_users,
        coalesce(monthly.paid_users, 0) as paid_users,
        coalesce(monthly.free_users, 0) as free_users
    from calendar
    left join monthly
        on calendar.month_start = monthly.activity_month

)

select * from final
