with

streams as (

    select * from {{ ref('fact_streams') }}

),

locations as (

    select * from {{ ref('dim_location') }}

),

state_days as (

    select
        streams.event_date as stream_date,
        locations.state,
        locations.state_name,
        locations.census_region,
        count(*) as streams,
        count(distinct streams.user_id) as listeners
    from streams
    inner join locations
        on streams.location_key = locations.location_key
    group by streams.event_date, locations.state, locations.state_name, locations.census_region

)

select * from state_days
