{#-
  One row per session. A table rebuilt on every run: a session can span interval and day
  boundaries, so it is recomputed from all its events rather than patched.
-#}

with

sessions as (

    select * from {{ ref('int_sessions') }}

),

users as (

    select * from {{ ref('dim_users') }}

),

final as (

    select
        -- ids
        {{ beatlytica.surrogate_key(['sessions.session_id']) }} as session_key,
        sessions.session_id,
        coalesce(users.user_key, {{ beatlytica.unknown_key() }}) as user_key,
        {{ beatlytica.location_key('sessions') }} as location_key,
        {{ beatlytica.datetime_key('sessions.session_start_ts') }} as datetime_key,

        -- degenerate dimensions
        sessions.user_id,
        sessions.first_auth,
        sessions.first_level,

        -- timestamps
        sessions.session_start_ts,
        sessions.session_end_ts,
        sessions.session_date,

        -- measures
        sessions.session_length_s,
        sessions.page_views,
        sessions.songs_played,
        sessions.listening_s,
        sessions.is_churn_session

    from sessions
    -- the user's version valid when the session first identified them
    left join users
        on
            sessions.user_id = users.user_id
            and sessions.first_identified_ts >= users.valid_from
            and sessions.first_identified_ts < coalesce(
                users.valid_to, {{ beatlytica.timestamp_literal('9999-12-31T00:00:00+00:00') }}
            )

)

select * from final
