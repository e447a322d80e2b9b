{#-
  Type-2 slowly changing dimension of users over their subscription level.

  A user's level history is read from every topic. Each identified request observes the level
  in force at its ts; a status change observes, at its ts, first the level before the change
  (its own `level`) and then the level after it, so the change takes effect at the status
  change's ts. A version starts wherever an observation differs from the one before it, so a
  change without a status change event is still caught, at the first event showing the new
  level. Validity is [valid_from, valid_to) in timestamps, so any number of changes a day
  work; the current version has valid_to null. The first version is back-dated to the
  registration: the first level seen is the best knowledge of the time before, and the keys
  stay stable when earlier intervals arrive later. Empty versions (a user first seen at the
  instant of a change, with no earlier registration) are dropped.

  Guests and logged-out visitors are one unknown member: user_key '-1' (never an md5), user_id
  -1 (real ids are positive).
-#}

with

events as (

    select * from {{ ref('int_events_unioned') }}

),

identified_events as (

    select * from events
    where user_id is not null

),

level_observations as (

    -- every identified event observes the level it carries (a status change: the one before)
    select
        user_id,
        event_id,
        event_ts as observed_at,
        level,
        0 as observation_order
    from identified_events

    union all

    -- a status change also observes, at its instant but after it, the level it changes to
    select
        user_id,
        event_id,
        event_ts as observed_at,
        case level when 'free' then 'paid' when 'paid' then 'free' end as level,
        1 as observation_order
    from identified_events
    where is_status_change

),

level_sequence as (

    select
        user_id,
        observed_at,
        observation_order,
        level,
        lag(level) over (
            partition by user_id order by observed_at, observation_order, event_id
        ) as previous_level
    from level_observations

),

level_changes as (

    -- a user's first observation and every change of level after it
    select
        user_id,
        level,
        observed_at as changed_at,
        observation_order
    from level_sequence
    where previous_level is null or previous_level != level

),

versions as (

    select
        user_id,
        level,
        changed_at,
        lead(changed_at) over (
            partition by user_id order by changed_at, observation_order
        ) as valid_to,
        row_number() over (
            partition by user_id order by changed_at, observation_order
        ) as change_number
    from level_changes

),

latest_identity as (

    -- identity attributes are type 1: the latest seen
    select
        user_id,
        first_name,
        last_name,
        gender,
        registration,
        row_number() over (
            partition by user_id order by event_ts desc, event_id desc
        ) as recency
    from identified_events

),

backdated_versions as (

    select
        versions.user_id,
        versions.level,
        case
            when
                versions.change_number = 1
                and latest_identity.registration is not null
                and latest_identity.registration < versions.changed_at
                then latest_identity.registration
            else versions.changed_at
        end as valid_from,
        versions.valid_to,
        latest_identity.first_name,
        latest_identity.last_name,
        latest_identity.gender,
        latest_identity.registration
    from versions
    inner join latest_identity
        on
            versions.user_id = latest_identity.user_id
            and latest_identity.recency = 1

),

user_versions as (

    -- a user first seen at the instant of a change has an empty first version unless it
    -- could be back-dated; an empty version is dropped (its neighbours still meet)
    select
        *,
        row_number() over (partition by user_id order by valid_from) as version_number
    from backdated_versions
    where valid_to is null or valid_to > valid_from

),

known_members as (

    select
        -- ids
        {{ beatlytica.surrogate_key(['user_id', 'valid_from']) }} as user_key,
        user_id,

        -- the tracked attribute and its validity
        level,
        valid_from,
        valid_to,
        valid_to is null as is_current,
        version_number,

        -- descriptive attributes
        first_name,
        last_name,
        gender,
        registration
    from user_versions

),

unknown_member as (

    select
        -- ids
        {{ beatlytica.unknown_key() }} as user_key,
        cast(-1 as {{ dbt.type_bigint() }}) as user_id,

        -- the tracked attribute and its validity
        cast(null as {{ dbt.type_string() }}) as level,
        {{ beatlytica.timestamp_literal('1970-01-01T00:00:00+00:00') }} as valid_from,
        cast(null as {{ beatlytica.type_timestamp_tz() }}) as valid_to,
        true as is_current,
        1 as version_number,

        -- descriptive attributes
        'Unknown' as first_name,
        'Unknown' as last_name,
        cast(null as {{ dbt.type_string() }}) as gender,
        cast(null as {{ beatlytica.type_timestamp_tz() }}) as registration

),

final as (

    select * from known_members
    union all
    select * from unknown_member

)

select * from final
