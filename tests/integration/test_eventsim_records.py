"""Records shaped as the real Eventsim writes them, through the whole embedded pipeline: Kafka
(no key, a trailing newline, a quoted user agent, `--tag`, mojibake in names, a field the model
does not know) -> `beatlytica stream` -> lake -> `beatlytica load` -> `beatlytica dbt build`.

Nothing is quarantined, the lake keeps `tag` and the unknown field, and the models repair what
can be repaired and count it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from confluent_kafka import Producer

from beatlytica.events import TOPIC_NAMES
from beatlytica.kafka_local import LocalKafka
from beatlytica.text_repair import repair_mojibake
from tests.helpers import run_cli
from tests.integration.test_stream import read_lake

pytestmark = pytest.mark.integration

HOUR_MS = int(datetime(2026, 11, 1, 5, tzinfo=UTC).timestamp() * 1000)
WINDOW = ("--start", "2026-11-01T05:00:00", "--end", "2026-11-01T06:00:00")
TAG = "eventsim-run-7"
#: Eventsim's user agents: most wrapped in literal quotes, some bare
QUOTED_AGENT = (
    '"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) '
    'Chrome/36.0.1985.143 Safari/537.36"'
)
BARE_AGENT = QUOTED_AGENT.strip('"')

#: (artist, song) as sent -> as the models must show them
SONGS = [
    (("elÃ¤mÃ¤ssÃ¤", "PÃ¤ivÃ¤ntasaus"), ("elämässä", "Päiväntasaus")),
    (("elämässä", "Päiväntasaus"), ("elämässä", "Päiväntasaus")),
    (("Sigur Rós", "Hoppípolla"), ("Sigur Rós", "Hoppípolla")),
    (("MotÃ¶rhead", "Ace Of Spades"), ("Motörhead", "Ace Of Spades")),
    (('Dr. "Dre" Young', "Still D.R.E."), ('Dr. "Dre" Young', "Still D.R.E.")),
    (("坂本龍一", "Merry Christmas Mr. Lawrence"), ("坂本龍一", "Merry Christmas Mr. Lawrence")),
]


def user(user_id: int, agent: str, *, registration_ms: int) -> dict[str, Any]:
    return {
        "city": "Tampa",
        "zip": "33614",
        "state": "FL",
        "userAgent": agent,
        "lon": -82.5,
        "lat": 28.0,
        "userId": user_id,
        "lastName": "JÃ¤rvinen" if user_id == 1 else "Smith",
        "firstName": "Anna",
        "gender": "F",
        "registration": registration_ms,
    }


def records() -> list[tuple[str, dict[str, Any]]]:
    """One hour of two users' events in Eventsim's field order, tag last."""
    out: list[tuple[str, dict[str, Any]]] = []
    users = [
        (1, QUOTED_AGENT, HOUR_MS - 86_400_000),
        # a new user whose registration Eventsim stamped after the session's first events
        (2, BARE_AGENT, HOUR_MS + 40 * 60_000),
    ]
    for user_id, agent, registration in users:
        details = user(user_id, agent, registration_ms=registration)
        for item, ((artist, song), _) in enumerate(SONGS):
            ts = HOUR_MS + (user_id * 100 + item) * 10_000
            common = {"ts": ts, "sessionId": user_id * 1000}
            listen = {
                "artist": artist,
                "song": song,
                "duration": 201.5,
                **common,
                "auth": "Logged In",
                "level": "paid",
                "itemInSession": item,
                **details,
                "tag": TAG,
            }
            page = {
                **common,
                "page": "NextSong",
                "auth": "Logged In",
                "method": "PUT",
                "status": 200,
                "level": "paid",
                "itemInSession": item,
                **details,
                "artist": artist,
                "song": song,
                "duration": 201.5,
                "tag": TAG,
            }
            out += [("listen_events", listen), ("page_view_events", page)]
    # a field this model does not know (a newer simulator's), kept in extra_fields
    extra = dict(out[0][1], itemInSession=99, ts=HOUR_MS + 3_000_000)
    extra["experiment"] = {"arm": "b", "ids": [3, 4]}
    out.append(("listen_events", extra))
    return out


def produce_as_eventsim(bootstrap: str, batch: list[tuple[str, dict[str, Any]]]) -> None:
    """As Eventsim's Kafka output does: no key, the JSON line with its newline."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for topic, payload in batch:
        producer.produce(topic, (json.dumps(payload, ensure_ascii=False) + "\n").encode())
    assert producer.flush(30) == 0


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_eventsim_records_flow_through_repaired_and_counted(
    kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    batch = records()
    produce_as_eventsim(kafka_broker.bootstrap_servers, batch)
    home = tmp_path / "home"
    env = {
        "BEATLYTICA_HOME": str(home),
        "BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "BEATLYTICA_DAG_START_DATE": "2026-11-01T00:00:00",
    }
    streamed = run_cli("stream", timeout=600, **env)
    assert streamed.returncode == 0, streamed.stderr[-3000:]

    # the lake: nothing quarantined, every event once, tag and the unknown field kept
    lake = (home / "lake").as_uri()
    for topic in TOPIC_NAMES:
        assert read_lake(lake, "quarantine", topic) == [], topic
    listens = read_lake(lake, "raw", "listen_events")
    assert len(listens) == sum(1 for t, _ in batch if t == "listen_events")
    assert {r["tag"] for r in listens} == {TAG}
    assert {r["user_agent"] for r in listens} == {QUOTED_AGENT, BARE_AGENT}  # as it came
    extras = [json.loads(r["extra_fields"]) for r in listens if r["extra_fields"]]
    assert extras == [{"experiment": {"arm": "b", "ids": [3, 4]}}]

    loaded = run_cli("load", *WINDOW, **env)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    built = run_cli("dbt", "build", timeout=900, **env)
    assert built.returncode == 0, built.stdout[-5000:]
    warehouse = home / "warehouse.duckdb"

    # one artist and one song per real name, spelled right (and each dimension's unknown member)
    artists = sorted(r[0] for r in query(warehouse, "select artist_name from main.dim_artists"))
    assert artists == sorted({shown[0] for _, shown in SONGS} | {"Unknown"})
    songs = sorted(query(warehouse, "select artist_name, song_title from main.dim_songs"))
    assert songs == sorted({shown for _, shown in SONGS} | {("Unknown", "Unknown")})
    # both spellings of a song are one song's streams
    streams = dict(
        query(
            warehouse,
            "select s.song_title, count(*) from main.fact_streams f "
            "join main.dim_songs s using (song_key) group by s.song_title",
        )
    )
    heard = [repair_mojibake(p["song"]) for t, p in batch if t == "listen_events"]
    assert streams["Päiväntasaus"] == heard.count("Päiväntasaus") == 5  # both spellings
    # the staging layer strips the quotes and says what it changed
    agents = query(warehouse, "select distinct user_agent from main.stg_listen_events")
    assert agents == [(BARE_AGENT,)]
    tags = query(warehouse, "select distinct tag from main.stg_listen_events")
    assert tags == [(TAG,)]
    listens_sent = [p for t, p in batch if t == "listen_events"]
    # and the data-quality mart counts what was repaired and what Eventsim got wrong
    counts = query(
        warehouse,
        "select events, artists_repaired, songs_repaired, names_repaired, user_agents_unquoted, "
        "registrations_after_event from main.mart_data_quality_daily "
        "where topic = 'listen_events'",
    )
    assert counts == [
        (
            len(listens_sent),
            sum(p["artist"] != repair_mojibake(p["artist"]) for p in listens_sent),
            sum(p["song"] != repair_mojibake(p["song"]) for p in listens_sent),
            sum(p["lastName"] != repair_mojibake(p["lastName"]) for p in listens_sent),
            sum(p["userAgent"] == QUOTED_AGENT for p in listens_sent),
            sum(p["registration"] > p["ts"] for p in listens_sent),
        )
    ]
    assert counts[0][1] and counts[0][5]  # the records do hold both kinds
