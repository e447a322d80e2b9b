with

page_views as (

    select * from {{ ref('fact_page_views') }}

),

calendar as (

    select distinct date_day from {{ ref('dim_datetime') }}

),

cancellations as (

    select
        event_date,
        user_id,
        level
    from page_views
    where page = 'Cancellation Confirmation'

),

daily as (

    select
        event_date,
        count(distinct user_id) as churned_users,
        count(distinct case when level = 'paid' then user_id end) as churned_paid_users,
        count(distinct case when level = 'free' then user_id end) as churned_free_users
    from cancellations
    group by event_date

),

final as (

    select
        calendar.date_day as churn_date,
        coalesce(daily.churned_users, 0) as churned_users,
        coalesce(daily.churned_paid_users, 0) as churned_paid_users,
        coalesce(daily.churned_free_users, 0) as churned_free_users
    from calendar
    left join daily
        on calendar.date_day = daily.event_date

)

select * from final
