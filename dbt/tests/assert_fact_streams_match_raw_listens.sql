{#-
  Every listen of the loaded interval is in fact_streams exactly once: the rows of fact_streams
  with event_ts in the interval (vars data_interval_start / data_interval_end; everything
  without them) equal the distinct event_ids of raw.listen_events in the same interval.
  Returns a row (fails) when the two counts differ.
-#}

with

raw_listens as (

    select count(distinct event_id) as raw_listens
    from {{ source('raw', 'listen_events') }}
    where {{ beatlytica.in_data_interval('ts') }}

),

streams as (

    select count(*) as streams
    from {{ ref('fact_streams') }}
    where {{ beatlytica.in_data_interval('event_ts') }}

),

compared as (

    select
        raw_listens.raw_listens,
        streams.streams
    from raw_listens
    cross join streams

)

select * from compared
where raw_listens != streams
