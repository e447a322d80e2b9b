{{ config(**beatlytica.incremental_by_day('event_date')) }}

{#- incremental by day like the facts (macros/incremental.sql): repaired once per event -#}

with

source as (

    select * from {{ source('raw', 'listen_events') }}
    where {{ beatlytica.in_data_interval_days('event_date') }}

),

renamed as (

    select
        -- ids
        event_id,
        cast(session_id as {{ dbt.type_bigint() }}) as session_id,
        cast(item_in_session as {{ dbt.type_int() }}) as item_in_session,
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,

        -- song
        artist as artist_name,
        song as song_title,
        duration as duration_s,

        -- user state
        auth,
        level,

        -- user identity (null unless auth is Logged In or Cancelled)
        first_name,
        last_name,
        gender,
        registration,

        -- location and device
        cast(zip as {{ dbt.type_string() }}) as zip,
        city,
        state,
        lat,
        lon,
        user_agent,

        -- what arrived beyond the model, kept by the lake
        tag,
        extra_fields,

        -- timestamps
        ts as event_ts,
        event_date,
        cast(event_hour as {{ dbt.type_int() }}) as event_hour,

        -- lake metadata
        kafka_topic,
        cast(kafka_partition as {{ dbt.type_int() }}) as kafka_partition,
        cast(kafka_offset as {{ dbt.type_bigint() }}) as kafka_offset,
        kafka_timestamp as kafka_ts,
        loaded_at

    from source

),

repaired as (

    -- Eventsim's text defects (dbt/macros/text_repair.sql): double-encoded UTF-8 read back
    -- once, one pair of literal quotes around the user agent stripped, each flagged
    {{ beatlytica.repair_eventsim_text('renamed', songs=true) }}

)

select * from repaired
