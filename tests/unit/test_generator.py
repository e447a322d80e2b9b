"""The generator against the model and against Eventsim's behaviour."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from beatlytica.events import IDENTIFIED_AUTH_STATES, TOPIC_NAMES, partition_key
from beatlytica.generator import simulation as sim
from beatlytica.generator.catalog import catalogue
from beatlytica.schemas import json_schema
from tests.conftest import SAMPLE, simulate

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
    songs = catalogue().songs
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
    ],
)
def test_bad_configuration_is_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(SAMPLE, **change)
