{#-
  Repairs of Eventsim's text fields, dispatched like cross_database.sql (`default__` is DuckDB's,
  `bigquery__` overrides). src/beatlytica/text_repair.py is the Python reference of the same
  rules; tests/unit/test_text_repair.py runs it and the DuckDB rendering on the same values and
  compares, tests/integration/test_dbt_quality.py does the same with the BigQuery rendering on
  the BigQuery emulator.

  * Mojibake: UTF-8 bytes read as Latin-1, e.g. 'elÃ¤mÃ¤ssÃ¤' for 'elämässä', 'BeyoncÃ©' for
    'Beyoncé'. A value is repaired when it consists only of code points below 256, at least
    one of them 0x80 or above, its code points taken as bytes are valid UTF-8, and the repair
    round-trips (the repaired text as UTF-8 bytes, read as Latin-1, is the value again). Any
    other value is left as it is: ASCII, legitimate Latin-1 text ('Björk', 'Sigur Rós': ö or ó
    alone is no valid UTF-8), anything above U+00FF (CJK, emoji), null.
  * Quotes: Eventsim writes most user agents wrapped in one pair of literal double quotes.

    repair_mojibake(expression)   the repaired text, else the value unchanged (null stays null)
    was_mojibake(expression)      true when repair_mojibake changes the value (never null)
    unquote(expression)           the value without one pair of wrapping quotes, else unchanged
    was_quoted(expression)        true when unquote changes the value (never null)
-#}

{% macro repair_mojibake(expression) -%}
    coalesce({{ beatlytica.mojibake_repaired(expression) }}, {{ expression }})
{%- endmacro %}


{% macro was_mojibake(expression) -%}
    ({{ beatlytica.mojibake_repaired(expression) }} is not null)
{%- endmacro %}


{#- the repaired text when the value is mojibake, else null -#}
{% macro mojibake_repaired(expression) -%}
    {{ return(adapter.dispatch('mojibake_repaired', 'beatlytica')(expression)) }}
{%- endmacro %}

{% macro default__mojibake_repaired(expression) -%}
    {#- DuckDB: the code points as bytes, decoded as UTF-8. With every code point below 256,
        the value's UTF-8 is ASCII bytes and pairs C2 xx (U+0080-U+00BF: byte xx) or C3 xx
        (U+00C0-U+00FF: byte xx + 0x40). A blob cast to text shows printable ASCII as itself
        and every other byte (control characters and the backslash included) as a \xNN escape,
        so each pair is an aligned escape pair that plain replacements turn into one escape,
        with no per-character lambda. The new escapes are first written with chr(1), which
        never appears in that text (it is shown escaped), so no replacement matches what an
        earlier one wrote; the last one turns chr(1) into \x. decode() fails on anything but
        valid UTF-8 (truncated or overlong sequences, surrogates, code points past U+10FFFF)
        and try() turns the failure into null; a strict decode returns exactly the code points
        the bytes encode, so the round trip holds by construction. Most values are ASCII: more
        bytes than characters is checked first, the regex only then. -#}
    case
        when strlen({{ expression }}) > length({{ expression }})
            and regexp_full_match({{ expression }}, '[\x{00}-\x{ff}]*')
            then try(decode(cast(replace(
                replace(replace(replace(replace(replace(
                    cast(encode({{ expression }}) as {{ dbt.type_string() }}),
                    '\xC2\x', chr(1)),
                    '\xC3\x8', chr(1) || 'C'),
                    '\xC3\x9', chr(1) || 'D'),
                    '\xC3\xA', chr(1) || 'E'),
                    '\xC3\xB', chr(1) || 'F'),
                chr(1), '\x') as blob)))
    end
{%- endmacro %}

{% macro bigquery__mojibake_repaired(expression) -%}
    {#- BigQuery: the code points as bytes, decoded as UTF-8. safe_convert_bytes_to_string
        replaces invalid sequences with U+FFFD instead of failing, so validity is the round
        trip: the decoded text's own UTF-8 bytes are the bytes it was decoded from. The range
        is checked by a regex, not left to code_points_to_bytes (an error past 255, null with
        safe.), which the BigQuery emulator instead truncates to the low byte. -#}
    {%- set latin1_bytes = 'safe.code_points_to_bytes(to_code_points(' ~ expression ~ '))' -%}
    case
        when regexp_contains({{ expression }}, r'[\x{80}-\x{ff}]')
            and not regexp_contains({{ expression }}, r'[^\x{00}-\x{ff}]')
            and cast(safe_convert_bytes_to_string({{ latin1_bytes }}) as bytes) = {{ latin1_bytes }}
            then safe_convert_bytes_to_string({{ latin1_bytes }})
    end
{%- endmacro %}


{% macro unquote(expression) -%}
    case
        when {{ beatlytica.is_quoted(expression) }}
            then {{ beatlytica.strip_first_and_last_character(expression) }}
        else {{ expression }}
    end
{%- endmacro %}


{% macro was_quoted(expression) -%}
    coalesce({{ beatlytica.is_quoted(expression) }}, false)
{%- endmacro %}


{#- starts and ends with a double quote, 2 characters at least (a lone '"' is no pair): the
    same SQL on both adapters; null for null -#}
{% macro is_quoted(expression) -%}
    (
        starts_with({{ expression }}, '"')
        and ends_with({{ expression }}, '"')
        and length({{ expression }}) >= 2
    )
{%- endmacro %}


{#- the text without its first and last character (which unquote has checked are quotes) -#}
{% macro strip_first_and_last_character(expression) -%}
    {{ return(adapter.dispatch('strip_first_and_last_character', 'beatlytica')(expression)) }}
{%- endmacro %}

{% macro default__strip_first_and_last_character(expression) -%}
    substr({{ expression }}, 2, length({{ expression }}) - 2)
{%- endmacro %}

{% macro bigquery__strip_first_and_last_character(expression) -%}
    {#- substr(…, 2, length(…) - 2) would do on BigQuery too; the regex (s: `.` matches line
        breaks) keeps the emulator's results true as well, whose substr counts bytes -#}
    regexp_extract({{ expression }}, r'(?s)^.(.*).$')
{%- endmacro %}


{#-
  repair_eventsim_text(relation, songs=false): the rows of `relation` (a staging model's
  `renamed` CTE) with Eventsim's text defects repaired and flagged, the same in every staging
  model: names, places and the user agent always, artist and title when `songs`.
-#}
{% macro repair_eventsim_text(relation, songs=false) -%}
    {%- set texts = (['artist_name', 'song_title'] if songs else [])
        + ['first_name', 'last_name', 'city', 'state'] -%}
    select
        * replace (
            {%- for column in texts %}
            {{ beatlytica.repair_mojibake(column) }} as {{ column }},
            {%- endfor %}
            {{ beatlytica.unquote('user_agent') }} as user_agent
        ),

        -- what was repaired
        {%- if songs %}
        {{ beatlytica.was_mojibake('artist_name') }} as is_artist_repaired,
        {{ beatlytica.was_mojibake('song_title') }} as is_song_repaired,
        {%- endif %}
        (
            {{ beatlytica.was_mojibake('first_name') }}
            or {{ beatlytica.was_mojibake('last_name') }}
        ) as is_name_repaired,
        (
            {{ beatlytica.was_mojibake('city') }}
            or {{ beatlytica.was_mojibake('state') }}
        ) as is_location_repaired,
        {{ beatlytica.was_quoted('user_agent') }} as is_user_agent_unquoted

    from {{ relation }}
{%- endmacro %}
