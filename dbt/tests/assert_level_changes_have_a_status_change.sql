{{ config(severity='warn') }}

{#-
  In Eventsim a user's level changes only through a Submit Upgrade / Submit Downgrade request,
  which writes a status change event at the instant of the change; dim_users starts a version
  there. A version that starts anywhere else is a change that no status change event explains
  (the event was lost, or the level flipped on its own): dim_users still catches it at the
  first event showing the new level, and mart_conversions_daily counts it, but it is a
  combination Eventsim should not produce. A warning, one row per such version.
-#}

with

users as (

    select * from {{ ref('dim_users') }}

),

status_change_events as (

    select * from {{ ref('stg_status_change_events') }}

),

changes as (

    -- every version after a user's first is a change of level, effective at valid_from
    select
        user_key,
        user_id,
        level,
        valid_from
    from users
    where user_key != {{ beatlytica.unknown_key() }} and version_number > 1

),

unexplained as (

    select changes.*
    from changes
    left join status_change_events
        on
            changes.user_id = status_change_events.user_id
            and changes.valid_from = status_change_events.event_ts
    where status_change_events.event_id is null

)

select * from unexplained
