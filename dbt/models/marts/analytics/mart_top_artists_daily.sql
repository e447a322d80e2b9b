with

streams as (

    select * from {{ ref('fact_streams') }}

),

artists as (

    select * from {{ ref('dim_artists') }}

),

artist_days as (

    select
        event_date,
        artist_key,
        count(*) as streams,
        count(distinct user_id) as listeners,
        count(distinct song_key) as songs_played
    from streams
    group by event_date, artist_key

),

ranked as (

    select
        artist_days.event_date as stream_date,
        row_number() over (
            partition by artist_days.event_date
            order by artist_days.streams desc, artists.artist_name asc
        ) as artist_rank,
        artist_days.artist_key,
        artists.artist_name,
        artist_days.streams,
        artist_days.listeners,
        artist_days.songs_played
    from artist_days
    inner join artists
        on artist_days.artist_key = artists.artist_key

),

final as (

    select * from ranked
    where artist_rank <= {{ var('top_n') }}

)

select * from final
