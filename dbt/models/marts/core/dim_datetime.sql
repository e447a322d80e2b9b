with

events as (

    select * from {{ ref('int_events_unioned') }}

),

bounds as (

    -- whole UTC days from the first event to the last: the data's own range
    select
        {{ dbt.date_trunc('day', 'min(event_ts)') }} as first_hour,
        cast(
            {{ dbt.dateadd('hour', 23, dbt.date_trunc('day', 'max(event_ts)')) }}
            as {{ beatlytica.type_timestamp_tz() }}
        ) as last_hour
    from events

),

hours as (

    {{ beatlytica.hour_spine('bounds', 'first_hour', 'last_hour') }}

),

dated as (

    select
        datetime_hour,
        cast(datetime_hour as date) as date_day
    from hours

),

with_weekday as (

    select
        datetime_hour,
        date_day,
        {{ beatlytica.iso_day_of_week('date_day') }} as day_of_week
    from dated

),

final as (

    select
        -- ids
        {{ beatlytica.datetime_key('datetime_hour') }} as datetime_key,

        -- the hour
        datetime_hour,
        cast(extract(hour from datetime_hour) as {{ dbt.type_int() }}) as hour_of_day,

        -- its day
        date_day,
        day_of_week,
        case day_of_week
            when 1 then 'Monday'
            when 2 then 'Tuesday'
            when 3 then 'Wednesday'
            when 4 then 'Thursday'
            when 5 then 'Friday'
            when 6 then 'Saturday'
            else 'Sunday'
        end as day_name,
        day_of_week in (6, 7) as is_weekend,

        -- its month and year
        cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start,
        cast(extract(month from date_day) as {{ dbt.type_int() }}) as month_of_year,
        cast(extract(year from date_day) as {{ dbt.type_int() }}) as year
    from with_weekday

)

select * from final
