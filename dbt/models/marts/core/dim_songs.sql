with

listen_events as (

    select * from {{ ref('stg_listen_events') }}

),

page_view_events as (

    select * from {{ ref('stg_page_view_events') }}

),

played_songs as (

    select
        artist_name,
        song_title,
        duration_s
    from listen_events
    union all
    -- a NextSong page view names the same song as its listen; a page view whose listen is
    -- missing still finds its song
    select
        artist_name,
        song_title,
        duration_s
    from page_view_events
    where page = 'NextSong' and song_title is not null

),

songs as (

    select
        artist_name,
        song_title,
        max(duration_s) as duration_s
    from played_songs
    group by artist_name, song_title

),

known_members as (

    select
        -- ids
        {{ beatlytica.song_key('artist_name', 'song_title') }} as song_key,
        {{ beatlytica.artist_key('artist_name') }} as artist_key,

        -- attributes
        song_title,
        artist_name,
        duration_s
    from songs

),

unknown_member as (

    select
        -- ids
        {{ beatlytica.unknown_key() }} as song_key,
        {{ beatlytica.unknown_key() }} as artist_key,

        -- attributes
        'Unknown' as song_title,
        'Unknown' as artist_name,
        cast(null as {{ dbt.type_float() }}) as duration_s

),

final as (

    select * from known_members
    union all
    select * from unknown_member

)

select * from final
