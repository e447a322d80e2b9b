with

events as (

    select * from {{ ref('int_events_unioned') }}

),

us_states as (

    select * from {{ ref('us_states') }}

),

places as (

    -- Eventsim scatters the users of a city around it: a location is one point
    select distinct
        zip,
        city,
        state,
        lat,
        lon
    from events

),

final as (

    select
        -- ids
        {{ beatlytica.location_key('places') }} as location_key,

        -- attributes
        places.zip,
        places.city,
        places.state,
        us_states.state_name,
        us_states.census_region,
        places.lat,
        places.lon
    from places
    left join us_states
        on places.state = us_states.state_code

)

select * from final
