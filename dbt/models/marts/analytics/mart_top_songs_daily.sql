with

streams as (

    select * from {{ ref('fact_streams') }}

),

songs as (

    select * from {{ ref('dim_songs') }}

),

song_days as (

    select
        event_date,
        song_key,
        count(*) as streams,
        count(distinct user_id) as listeners
    from streams
    group by event_date, song_key

),

ranked as (

    select
        song_days.event_date as stream_date,
        row_number() over (
            partition by song_days.event_date
            order by song_days.streams desc, songs.artist_name asc, songs.song_title asc
        ) as song_rank,
        song_days.song_key,
        songs.song_title,
        songs.artist_key,
        songs.artist_name,
        song_days.streams,
        song_days.listeners
    from song_days
    inner join songs
        on song_days.song_key = songs.song_key

),

final as (

    select * from ranked
    where song_rank <= {{ var('top_n') }}

)

select * from final
