"""The generator against the model and against Eventsim's behaviour."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from beatlytica.events import IDENTIFIED_AUTH_STATES, TOPIC_NAMES, partition_key
from beatlytica.generator import simulation as sim
from beatlytica.generator.catalog import Catalogue, Song, catalogue, mojibake
from beatlytica.generator.population import USER_AGENTS
from beatlytica.schemas import json_schema
from beatlytica.settings import Settings
from tests.conftest import SAMPLE, simulate
from tests.helpers import run_cli

Events = dict[str, list[dict[str, Any]]]


@pytest.mark.parametrize("topic", TOPIC_NAMES)
def test_every_event_conforms_to_the_strict_json_schema(sample_events: Events, topic: str) -> None:
    validator = jsonschema.Draft202012Validator(json_schema(topic, strict=True))
    assert sample_events[topic], f"no {topic} generated"
    for event in sample_events[topic]:
        errors = sorted(validator.iter_errors(event), key=str)
        assert not errors, f"{topic}: {errors[0].message} in {event}"


def test_the_schema_rejects_what_eventsim_never_writes() -> None:
    validator = jsonschema.Draft202012Validator(json_schema("listen_events"))
    good = json.loads(
        next(
            line
            for t, _, line in simulate(replace(SAMPLE, users=50))
            if t == "listen_events" and '"userId"' in line
        )
    )
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "ts": "yesterday"})
    assert not validator.is_valid({**good, "auth": "Guest"})  # a guest with a userId
    assert not validator.is_valid({k: v for k, v in good.items() if k != "lastName"})
    assert not validator.is_valid({k: v for k, v in good.items() if k != "sessionId"})


def test_keys_are_user_id_or_session_id(sample_lines: list[tuple[str, int, str]]) -> None:
    for _, key, line in sample_lines:
        assert str(key).encode() == partition_key(json.loads(line))


def test_events_come_in_time_order(sample_events: Events) -> None:
    for topic, evs in sample_events.items():
        stamps = [e["ts"] for e in evs]
        assert stamps == sorted(stamps), topic
        assert SAMPLE.start.timestamp() * 1000 <= stamps[0]
        assert stamps[-1] < SAMPLE.end.timestamp() * 1000


def test_sessions_advance(sample_events: Events) -> None:
    """Within a session ts never goes back and itemInSession strictly increases."""
    by_session: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in sample_events["page_view_events"]:
        by_session[e["sessionId"]].append(e)
    assert len(by_session) > 1000
    for session in by_session.values():
        items = [e["itemInSession"] for e in session]
        assert items == list(range(len(items)))
        stamps = [e["ts"] for e in session]
        assert stamps == sorted(stamps)


def test_user_id_present_exactly_when_identified(sample_events: Events) -> None:
    seen_auth: Counter[str] = Counter()
    for topic in ("listen_events", "page_view_events", "status_change_events"):
        for e in sample_events[topic]:
            seen_auth[e["auth"]] += 1
            assert ("userId" in e) == (e["auth"] in IDENTIFIED_AUTH_STATES), e
    assert set(seen_auth) == {"Guest", "Logged In", "Logged Out", "Cancelled"}
    for e in sample_events["auth_events"]:
        assert ("userId" in e) == e["success"]


def _page_views_at(events: Events) -> dict[tuple[int, int], dict[str, Any]]:
    return {(e["sessionId"], e["itemInSession"]): e for e in events["page_view_events"]}


def test_status_changes_follow_submit_pages_only(sample_events: Events) -> None:
    views = _page_views_at(sample_events)
    submits = [
        e
        for e in sample_events["page_view_events"]
        if e["page"] in ("Submit Upgrade", "Submit Downgrade")
    ]
    changes = sample_events["status_change_events"]
    assert changes and len(changes) == len(submits)
    for change in changes:
        view = views[(change["sessionId"], change["itemInSession"])]
        assert view["page"] in ("Submit Upgrade", "Submit Downgrade")
        assert view["ts"] == change["ts"] and view["userId"] == change["userId"]
        # Eventsim writes the level before the change
        assert change["level"] == ("free" if view["page"] == "Submit Upgrade" else "paid")
        after = views.get((change["sessionId"], change["itemInSession"] + 1))
        if after is not None:
            assert after["level"] == ("paid" if change["level"] == "free" else "free")


def test_listens_are_next_song_page_views(sample_events: Events) -> None:
    views = _page_views_at(sample_events)
    listens = sample_events["listen_events"]
    assert len(listens) == sum(1 for v in views.values() if v["page"] == "NextSong")
    for listen in listens:
        view = views[(listen["sessionId"], listen["itemInSession"])]
        assert view["page"] == "NextSong"
        for field in ("ts", "artist", "song", "duration", "auth", "level"):
            assert view[field] == listen[field]


def test_auth_events_follow_login_pages(sample_events: Events) -> None:
    views = _page_views_at(sample_events)
    assert sample_events["auth_events"]
    for auth in sample_events["auth_events"]:
        before = views[(auth["sessionId"], auth["itemInSession"] - 1)]
        assert before["page"] == "Login"
        after = views[(auth["sessionId"], auth["itemInSession"])]
        assert auth["success"] == (after["auth"] == "Logged In")
    failures = [a for a in sample_events["auth_events"] if not a["success"]]
    assert 0 < len(failures) < len(sample_events["auth_events"]) / 5


def test_no_events_after_cancellation(sample_events: Events) -> None:
    cancelled_at = {
        e["userId"]: e["ts"]
        for e in sample_events["page_view_events"]
        if e["page"] == "Cancellation Confirmation"
    }
    assert cancelled_at, "two days of 1500 users should include churn"
    for topic in TOPIC_NAMES:
        for e in sample_events[topic]:
            if e.get("userId") in cancelled_at:
                assert e["ts"] <= cancelled_at[e["userId"]], (topic, e)


def test_level_gates_upgrade_and_downgrade(sample_events: Events) -> None:
    for e in sample_events["page_view_events"]:
        if e["page"] in ("Upgrade", "Submit Upgrade"):
            assert e["level"] == "free"
        if e["page"] in ("Downgrade", "Submit Downgrade"):
            assert e["level"] == "paid"


def test_every_eventsim_page_appears(sample_events: Events) -> None:
    from beatlytica.events import PAGES

    seen = {e["page"] for e in sample_events["page_view_events"]}
    assert seen == set(PAGES)


def test_registrations_identify_guests(sample_events: Events) -> None:
    views = _page_views_at(sample_events)
    registrations = [
        e for e in sample_events["page_view_events"] if e["page"] == "Submit Registration"
    ]
    assert registrations
    for reg in registrations:
        before = views[(reg["sessionId"], reg["itemInSession"] - 1)]
        assert before["page"] == "Register" and before["auth"] == "Guest"
        assert reg["auth"] == "Logged In" and reg["registration"] == reg["ts"]


def test_same_seed_same_events() -> None:
    small = replace(SAMPLE, users=200)
    assert simulate(small) == simulate(small)
    assert simulate(small) != simulate(replace(small, seed=8))


def test_instances_never_share_ids() -> None:
    small = replace(SAMPLE, users=200)
    ids = []
    for instance in (0, 1):
        evs = [json.loads(line) for _, _, line in simulate(replace(small, instance=instance))]
        ids.append(({e["sessionId"] for e in evs}, {e.get("userId") for e in evs} - {None}))
    assert not ids[0][0] & ids[1][0]
    assert not ids[0][1] & ids[1][1]


def test_song_popularity_is_zipf_like(sample_events: Events) -> None:
    songs = catalogue().with_mojibake(SAMPLE.mojibake_song_share).songs  # the names as played
    plays = Counter((e["artist"], e["song"]) for e in sample_events["listen_events"])
    total = sum(plays.values())
    top = {(s.artist, s.title) for s in songs[:250]}
    observed = sum(n for key, n in plays.items() if key in top) / total
    expected = sum(catalogue().weight(s.rank) for s in songs[:250])
    assert observed == pytest.approx(expected, abs=0.03)
    assert observed > 0.35  # the top 1% of songs take over a third of the plays
    assert plays.most_common(1)[0][0] == (songs[0].artist, songs[0].title)


def test_activity_follows_the_daily_cycle(sample_events: Events) -> None:
    by_hour = Counter((e["ts"] // sim.MS_PER_HOUR) % 24 for e in sample_events["listen_events"])
    evening = sum(by_hour[h] for h in (18, 19, 20, 21)) / 4
    night = sum(by_hour[h] for h in (2, 3, 4, 5)) / 4
    assert evening > 3 * night


def test_activity_curves() -> None:
    assert sum(sim.HOURLY_ACTIVITY) == pytest.approx(24)
    assert sum(sim.WEEKLY_ACTIVITY) == pytest.approx(7)
    saturday_evening = int(datetime(2026, 11, 7, 19, tzinfo=UTC).timestamp() * 1000)
    wednesday_evening = saturday_evening - 3 * sim.MS_PER_DAY
    assert sim.activity(saturday_evening) < sim.activity(wednesday_evening)


def test_catalogue_is_stable_and_plausible() -> None:
    songs = catalogue().songs
    assert len(songs) == 25_000
    assert len({s.artist for s in songs}) > 1500
    durations = sorted(s.duration for s in songs)
    assert durations[0] >= 60 and durations[-1] <= 900
    assert 200 < durations[len(durations) // 2] < 260  # a typical song is about four minutes


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"users": 0}, "users must be at least 1"),
        ({"end": SAMPLE.start}, "must be after start"),
        ({"instance": -1}, "instance must be"),
        ({"quoted_user_agent_share": 1.5}, "quoted_user_agent_share must be in"),
        ({"mojibake_song_share": -0.1}, "mojibake_song_share must be in"),
    ],
)
def test_bad_configuration_is_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(SAMPLE, **change)


# --- Eventsim's quirks ------------------------------------------------------------------------


def _parse(lines: list[tuple[str, int, str]]) -> Events:
    events: Events = {t: [] for t in TOPIC_NAMES}
    for topic, _, line in lines:
        events[topic].append(json.loads(line))
    return events


def test_eventsim_quirks_are_on_by_default_and_the_settings_agree() -> None:
    """SimulationConfig (tests, benchmarks, the demo) and the settings (the CLI) default alike."""
    defaults = {name: f.default for name, f in Settings.model_fields.items()}
    assert SAMPLE.quoted_user_agent_share == defaults["generator_quoted_user_agent_share"] == 0.73
    assert SAMPLE.mojibake_song_share == defaults["generator_mojibake_song_share"] > 0
    assert SAMPLE.tag is None and defaults["generator_tag"] is None


@pytest.mark.parametrize("share", [0.73, 0.3])
def test_the_share_of_users_with_a_quoted_agent_follows_the_setting(share: float) -> None:
    users = sim.Simulation(replace(SAMPLE, users=20_000, quoted_user_agent_share=share)).users
    quoted = [u.person.user_agent.startswith('"') for u in users]
    assert sum(quoted) / len(quoted) == pytest.approx(share, abs=0.015)


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_no_or_every_agent_is_quoted_at_the_bounds(share: float) -> None:
    events = _parse(simulate(replace(SAMPLE, users=100, quoted_user_agent_share=share)))
    agents = {e["userAgent"] for evs in events.values() for e in evs}
    assert agents
    if share:
        assert all(a.startswith('"') and a.endswith('"') for a in agents)
        assert {a[1:-1] for a in agents} <= set(USER_AGENTS)
    else:
        assert agents <= set(USER_AGENTS)


def test_a_quoted_agent_is_one_pair_of_literal_quotes_around_a_real_agent(
    sample_lines: list[tuple[str, int, str]],
) -> None:
    quoted = [line for t, _, line in sample_lines if '"userAgent":"\\"' in line]
    assert quoted
    for line in quoted[:1000]:
        agent = json.loads(line)["userAgent"]
        assert agent[0] == agent[-1] == '"' and agent[1:-1] in USER_AGENTS


def test_every_event_of_a_user_has_the_same_agent(sample_events: Events) -> None:
    """The quoting belongs to the user: one agent per userId and per session, the user's own."""
    users = {u.person.user_id: u.person for u in sim.Simulation(SAMPLE).users}
    by_user: dict[int, set[str]] = defaultdict(set)
    by_session: dict[int, set[str]] = defaultdict(set)
    for evs in sample_events.values():
        for e in evs:
            by_session[e["sessionId"]].add(e["userAgent"])
            if "userId" in e:
                by_user[e["userId"]].add(e["userAgent"])
    assert all(len(agents) == 1 for agents in by_session.values())
    assert by_user and all(agents == {users[u].user_agent} for u, agents in by_user.items())
    quoted = Counter(next(iter(agents)).startswith('"') for agents in by_user.values())
    assert quoted[True] and quoted[False]


def _non_ascii(song: Song) -> bool:
    return not (song.artist.isascii() and song.title.isascii())


def test_the_catalogue_has_enough_non_ascii_artists_and_titles() -> None:
    songs = catalogue().songs
    assert sum(map(_non_ascii, songs)) / len(songs) > 0.1
    artists = {s.artist for s in songs if not s.artist.isascii()}
    assert len(artists) > 200
    text = "".join(artists)
    for letter in "äöåøæéñíðþüß":  # Nordic, German, French, Spanish, Icelandic
        assert letter in text, letter
    assert any("\u3040" <= c <= "\u9fff" for c in text), "no Japanese artist"


def test_the_catalogue_is_the_same_on_every_build() -> None:
    rebuilt = catalogue.__wrapped__()
    assert rebuilt.songs == catalogue().songs


def test_mojibake_is_the_utf8_bytes_read_as_latin1() -> None:
    assert mojibake("elämässä") == "elÃ¤mÃ¤ssÃ¤"
    assert mojibake("The Velvet Satellites") == "The Velvet Satellites"
    played = catalogue().with_mojibake(0.5).songs
    garbled = [(s, p) for s, p in zip(catalogue().songs, played, strict=True) if p is not s]
    assert garbled
    for clean, as_played in garbled:
        assert as_played.artist == clean.artist.encode("utf-8").decode("latin-1")
        assert as_played.title == clean.title.encode("utf-8").decode("latin-1")
        assert _non_ascii(clean) and clean.mojibake_draw < 0.5
        assert json.loads(f"{{{as_played.json}}}") == {
            "artist": as_played.artist,
            "song": as_played.title,
            "duration": clean.duration,
        }


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_no_or_every_non_ascii_song_is_garbled_at_the_bounds(share: float) -> None:
    for clean, played in zip(
        catalogue().songs, catalogue().with_mojibake(share).songs, strict=True
    ):
        assert (played is not clean) == (share == 1.0 and _non_ascii(clean))


def _garbled_weight(played: Catalogue) -> float:
    return sum(
        played.weight(p.rank)
        for s, p in zip(catalogue().songs, played.songs, strict=True)
        if p is not s
    )


def test_the_default_share_garbles_five_percent_of_listens(sample_events: Events) -> None:
    """Eventsim's figure: about 5% of listens carry double-encoded artist and title."""
    played = catalogue().with_mojibake(SAMPLE.mojibake_song_share)
    expected = _garbled_weight(played)
    assert expected == pytest.approx(0.05, abs=0.005)
    clean = {(s.artist, s.title) for s in catalogue().songs}
    garbled = {
        (p.artist, p.title): s
        for s, p in zip(catalogue().songs, played.songs, strict=True)
        if p is not s
    }
    listens = sample_events["listen_events"]
    n_garbled = 0
    for e in listens:
        pair = (e["artist"], e["song"])
        if pair not in clean:
            song = garbled[pair]  # every other spelling is the mojibake of a catalogue song
            assert pair == (mojibake(song.artist), mojibake(song.title))
            n_garbled += 1
    assert n_garbled / len(listens) == pytest.approx(expected, abs=0.01)


def test_the_share_setting_moves_the_garbled_listens() -> None:
    few = _garbled_weight(catalogue().with_mojibake(0.1))
    many = _garbled_weight(catalogue().with_mojibake(0.9))
    assert 0 < few < 0.05 < many
    events = _parse(simulate(replace(SAMPLE, users=300, mojibake_song_share=0.0)))
    clean = {(s.artist, s.title) for s in catalogue().songs}
    assert {(e["artist"], e["song"]) for e in events["listen_events"]} <= clean


def test_an_artist_appears_under_both_spellings(sample_events: Events) -> None:
    artists = {e["artist"] for e in sample_events["listen_events"]}
    both = {a for a in artists if not a.isascii() and mojibake(a) in artists}
    assert len(both) >= 5, both


def _check_tags(events: Events, tag: str | None) -> None:
    for topic, evs in events.items():
        assert evs, topic
        for e in evs:
            if tag is None or "userId" not in e:
                assert "tag" not in e, e
            else:
                assert e["tag"] == tag, e
                keys = list(e)  # Eventsim writes the tag right after the user details
                assert keys[keys.index("registration") + 1] == "tag", keys


def test_tag_follows_the_user_details_on_every_identified_event_of_every_topic() -> None:
    """Eventsim writes --tag with the user details: on every event of an identified user
    (auth Logged In or Cancelled, a successful login), on no anonymous one."""
    tag = 'run "7" – naïve'
    events = _parse(simulate(replace(SAMPLE, users=400, tag=tag)))
    _check_tags(events, tag)
    for topic, evs in events.items():
        assert any("tag" in e for e in evs), topic
        validator = jsonschema.Draft202012Validator(json_schema(topic, strict=True))
        for e in evs:
            errors = sorted(validator.iter_errors(e), key=str)
            assert not errors, f"{topic}: {errors[0].message} in {e}"


def test_no_tag_means_no_tag_field(sample_events: Events) -> None:
    _check_tags(sample_events, None)
    assert _parse(simulate(replace(SAMPLE, users=100, tag=""))) == _parse(
        simulate(replace(SAMPLE, users=100))
    )


def test_the_command_takes_the_quirks_from_settings_and_the_tag_option(tmp_path: Path) -> None:
    window = ("--start", "2026-11-01T00:00:00", "--end", "2026-11-01T12:00:00", "--seed", "3")
    env = {
        "BEATLYTICA_GENERATOR_QUOTED_USER_AGENT_SHARE": "0",
        "BEATLYTICA_GENERATOR_MOJIBAKE_SONG_SHARE": "1",
        "BEATLYTICA_GENERATOR_TAG": "from-settings",
    }
    runs = {"settings": (), "option": ("--tag", "from-option")}
    for name, extra in runs.items():
        out = tmp_path / name
        args = ("generate", "--sink", "files", "--out", str(out), "--users", "200", *window)
        result = run_cli(*args, *extra, **env)
        assert result.returncode == 0, result.stderr
        events = {
            t: [json.loads(x) for x in (out / f"{t}.jsonl").read_text("utf-8").splitlines()]
            for t in TOPIC_NAMES
        }
        _check_tags(
            {t: evs for t, evs in events.items() if evs},
            "from-option" if extra else "from-settings",
        )
        assert not any(e["userAgent"].startswith('"') for evs in events.values() for e in evs)
        listened = {(e["artist"], e["song"]) for e in events["listen_events"]}
        clean = {(s.artist, s.title) for s in catalogue().songs if _non_ascii(s)}
        assert listened and not listened & clean  # share 1: every non-ASCII song garbled
