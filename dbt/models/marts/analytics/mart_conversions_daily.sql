with

users as (

    select * from {{ ref('dim_users') }}

),

calendar as (

    select distinct date_day from {{ ref('dim_datetime') }}

),

level_changes as (

    -- every version after a user's first is a change of level, effective at valid_from
    select
        cast(valid_from as date) as change_date,
        level
    from users
    where user_key != {{ beatlytica.unknown_key() }} and version_number > 1

),

daily as (

    select
        change_date,
        sum(case when level = 'paid' then 1 else 0 end) as upgrades,
        sum(case when level = 'free' then 1 else 0 end) as downgrades
    from level_changes
    group by change_date

),

final as (

    select
        calendar.date_day as change_date,
        coalesce(daily.upgrades, 0) as upgrades,
        coalesce(daily.downgrades, 0) as downgrades,
        coalesce(daily.upgrades, 0) - coalesce(daily.downgrades, 0) as net_upgrades
    from calendar
    left join daily
        on calendar.date_day = daily.change_date

)

select * from final
