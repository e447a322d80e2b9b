with

users as (

    select * from {{ ref('dim_users') }}

),

current_users as (

    -- identified users in their current version
    select
        gender,
        level
    from users
    where is_current and user_key != {{ beatlytica.unknown_key() }}

),

split as (

    select
        gender,
        level,
        count(*) as users
    from current_users
    group by gender, level

),

final as (

    select
        gender,
        level,
        users,
        users * 1.0 / sum(users) over (partition by gender) as share_of_gender
    from split

)

select * from final
