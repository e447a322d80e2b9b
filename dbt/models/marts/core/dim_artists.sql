with

songs as (

    select * from {{ ref('dim_songs') }}

),

artists as (

    select
        artist_key,
        artist_name,
        count(*) as songs
    from songs
    where song_key != {{ beatlytica.unknown_key() }}
    group by artist_key, artist_name

),

known_members as (

    select
        -- ids
        artist_key,

        -- attributes
        artist_name,
        songs
    from artists

),

unknown_member as (

    select
        -- ids
        {{ beatlytica.unknown_key() }} as artist_key,

        -- attributes
        'Unknown' as artist_name,
        0 as songs

),

final as (

    select * from known_members
    union all
    select * from unknown_member

)

select * from final
