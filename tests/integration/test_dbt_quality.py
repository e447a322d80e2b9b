"""The dbt project on raw rows with Eventsim's known defects, written into the loader's own raw
tables: double-encoded UTF-8 ("mojibake") artists, titles, names and places, user agents
wrapped in literal quotes, events stamped before their user's registration, and a level change
without a status change event. The star schema holds every artist, song, place and browser
once, repaired; mart_data_quality_daily counts each defect; the data-quality tests warn.

The BigQuery rendering of the repair macros runs on the BigQuery emulator (goccy's, built once
per machine by `make bigquery-emulator`) and gives the same results as the Python reference,
hence as DuckDB."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.helpers import ROOT, serving
from tests.unit.test_dbt_project import TOPICS, dbt_env, run_dbt
from tests.unit.test_text_repair import INLINE, VALUES, compile_for_bigquery, python_results

#: goccy/bigquery-emulator, built into the cache by `make bigquery-emulator` (the Makefile's path)
BIGQUERY_EMULATOR = Path(
    subprocess.run(
        ["make", "-s", "--no-print-directory", "print-BIGQUERY_EMULATOR"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout.strip()
)

pytestmark = pytest.mark.integration

DAY = datetime(2026, 11, 1, tzinfo=UTC)
QUOTED_AGENT = '"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko)"'
AGENT = "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko)"
#: user 7 registered at 10:00:05, but Eventsim stamps its first requests before that
REGISTRATION = DAY + timedelta(hours=10, seconds=5)
JOSE = {"first_name": "JosÃ©", "last_name": "GarcÃ\u00ada", "city": "EspaÃ±ola"}
JOSE_REPAIRED = {"first_name": "José", "last_name": "García", "city": "Española"}
#: the data-quality tests that must warn here, and how many rows each finds
WARNINGS = {
    "stg_listen_events_registration_not_after_the_event": 0,
    "stg_page_view_events_registration_not_after_the_event": 1,
    "stg_auth_events_registration_not_after_the_event": 1,
    "stg_status_change_events_registration_not_after_the_event": 0,
    "assert_level_changes_have_a_status_change": 1,
}


class RawEvents:
    """Rows for the raw tables, with every required column filled in."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {topic: [] for topic in TOPICS}

    def add(self, topic: str, minute: float, **values: Any) -> None:
        ts = DAY + timedelta(hours=10, minutes=minute)
        number = sum(len(rows) for rows in self.rows.values())
        row = {
            "event_id": f"{number:032x}",
            "kafka_topic": topic,
            "kafka_partition": 0,
            "kafka_offset": number,
            "kafka_timestamp": ts,
            "ts": ts,
            "session_id": 100,
            "page": "NextSong",
            "auth": "Logged In",
            "method": "PUT",
            "status": 200,
            "level": "free",
            "item_in_session": number,
            "zip": "87532",
            "city": "Española",
            "state": "NM",
            "lat": 35.99,
            "lon": -106.07,
            "user_agent": AGENT,
            "user_id": 7,
            "first_name": "José",
            "last_name": "García",
            "gender": "M",
            "registration": REGISTRATION,
            "event_date": ts.date(),
            "event_hour": ts.hour,
            "loaded_at": ts + timedelta(minutes=5),
            **values,
        }
        if row["user_id"] is None:
            row.update(first_name=None, last_name=None, gender=None, registration=None)
        self.rows[topic].append(row)

    def song(self, minute: float, artist: str, song: str, **values: Any) -> None:
        """A song played: its listen and its NextSong page view."""
        for topic in ("listen_events", "page_view_events"):
            self.add(topic, minute, artist=artist, song=song, duration=200.0, **values)

    def write(self, database: Path) -> None:
        from beatlytica.warehouse.duckdb_backend import create_table_sql

        with duckdb.connect(str(database)) as con:
            con.execute("create schema raw")
            for topic, rows in self.rows.items():
                con.execute(create_table_sql("raw", topic))
                columns = [
                    c
                    for (c,) in con.execute(
                        "select column_name from information_schema.columns "
                        "where table_schema = 'raw' and table_name = ? order by ordinal_position",
                        [topic],
                    ).fetchall()
                ]
                for row in rows:
                    present = [c for c in columns if c in row]
                    con.execute(
                        f"insert into raw.{topic} ({', '.join(present)}) "
                        f"values ({', '.join('?' for _ in present)})",
                        [row[c] for c in present],
                    )


def defective_day() -> RawEvents:
    """One morning of user 7 (identified, names and place sometimes double-encoded, user agent
    sometimes quoted, the first requests before the registration), a guest, and user 8 whose
    level changes without a status change."""
    raw = RawEvents()
    # user 7 logs in (auth event and page view) 5 seconds before the registration
    raw.add("auth_events", 0, success=True, user_agent=QUOTED_AGENT, **JOSE)
    raw.add("page_view_events", 0, page="Home", method="GET", user_agent=QUOTED_AGENT, **JOSE)
    # the same songs, double-encoded and right, the user agent quoted and bare
    raw.song(1, "BeyoncÃ©", "Halo", user_agent=QUOTED_AGENT, **JOSE)
    raw.song(5, "Beyoncé", "Halo")
    raw.song(9, "Juha Tapio", "TÃ¤ssÃ¤ elÃ¤mÃ¤ssÃ¤", user_agent=QUOTED_AGENT)
    raw.song(13, "Juha Tapio", "Tässä elämässä")
    raw.song(17, "Björk", "Jóga", user_agent=QUOTED_AGENT)  # legitimately non-ASCII
    raw.song(21, "Ã\u0093lafur Arnalds", "Saman")
    # user 7 upgrades, as Eventsim writes it: the status change carries the level before
    raw.add("page_view_events", 25, page="Submit Upgrade", user_agent=QUOTED_AGENT)
    raw.add("status_change_events", 25, page="Submit Upgrade", user_agent=QUOTED_AGENT)
    raw.song(26, "Ólafur Arnalds", "Saman", level="paid")
    # a guest in another session and place
    guest = {"user_id": None, "auth": "Guest", "session_id": 200, "zip": "10001"}
    guest |= {"city": "New York", "state": "NY", "lat": 40.75, "lon": -73.99}
    raw.song(2, "MotÃ¶rhead", "Ace Of Spades", **guest)
    raw.song(6, "Motörhead", "Ace Of Spades", user_agent=f'"{AGENT} Firefox"', **guest)
    # user 8: free, then paid with no Submit Upgrade in between
    user8 = {"user_id": 8, "session_id": 300, "first_name": "Ann", "last_name": "Lee"}
    user8 |= {"gender": "F", "registration": DAY - timedelta(days=30)}
    raw.song(3, "Sigur Rós", "Hoppípolla", **user8)
    raw.song(30, "Sigur Rós", "Hoppípolla", **{**user8, "level": "paid"})
    return raw


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The defective day in the loader's raw tables, built with `dbt build` (no vars)."""
    work = tmp_path_factory.mktemp("dbt-quality")
    database = work / "warehouse.duckdb"
    raw = defective_day()
    raw.write(database)
    env = dbt_env(BEATLYTICA_DUCKDB_PATH=str(database))
    result = run_dbt("build", work=work, env=env, timeout=900)
    run_results = json.loads((work / "target" / "run_results.json").read_text())
    return {"database": database, "raw": raw, "output": result.stdout, "results": run_results}


def query(warehouse: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse["database"]), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(sql).fetchall()


def test_every_artist_and_song_is_in_the_dimensions_once_repaired(
    warehouse: dict[str, Any],
) -> None:
    artists = query(warehouse, "select artist_name, songs from main.dim_artists order by 1")
    assert artists == [
        ("Beyoncé", 1),
        ("Björk", 1),
        ("Juha Tapio", 1),
        ("Motörhead", 1),
        ("Sigur Rós", 1),
        ("Unknown", 0),
        ("Ólafur Arnalds", 1),
    ]
    songs = query(warehouse, "select artist_name, song_title from main.dim_songs order by 1, 2")
    assert songs == [
        ("Beyoncé", "Halo"),
        ("Björk", "Jóga"),
        ("Juha Tapio", "Tässä elämässä"),
        ("Motörhead", "Ace Of Spades"),
        ("Sigur Rós", "Hoppípolla"),
        ("Unknown", "Unknown"),
        ("Ólafur Arnalds", "Saman"),
    ]
    # both spellings of a song are streams of the one song
    streams = query(
        warehouse,
        "select s.artist_name, s.song_title, count(*) from main.fact_streams f "
        "join main.dim_songs s using (song_key) group by all order by 1, 2",
    )
    assert streams == [
        ("Beyoncé", "Halo", 2),
        ("Björk", "Jóga", 1),
        ("Juha Tapio", "Tässä elämässä", 2),
        ("Motörhead", "Ace Of Spades", 2),
        ("Sigur Rós", "Hoppípolla", 2),
        ("Ólafur Arnalds", "Saman", 2),
    ]


def test_names_places_and_user_agents_are_repaired_everywhere(
    warehouse: dict[str, Any],
) -> None:
    users = query(
        warehouse,
        "select first_name, last_name from main.dim_users where user_id = 7 group by all",
    )
    assert users == [(JOSE_REPAIRED["first_name"], JOSE_REPAIRED["last_name"])]
    assert query(warehouse, "select distinct city from main.dim_location order by 1") == [
        ("Española",),
        ("New York",),
    ]
    # one browser is one user agent, bare, in every topic and in the sessions
    agents = query(warehouse, "select distinct user_agent from main.int_events_unioned order by 1")
    assert agents == [(AGENT,), (f"{AGENT} Firefox",)]
    sessions = query(warehouse, "select session_id, user_agent from main.int_sessions order by 1")
    assert sessions == [(100, AGENT), (200, AGENT), (300, AGENT)]


def test_the_data_quality_mart_counts_each_defect_per_day_and_topic(
    warehouse: dict[str, Any],
) -> None:
    rows = query(
        warehouse,
        """
        select topic, events, artists_repaired, songs_repaired, names_repaired,
            locations_repaired, user_agents_unquoted, registrations_after_event
        from main.mart_data_quality_daily
        where event_date = date '2026-11-01'
        order by topic
        """,
    )
    assert rows == [
        ("auth_events", 1, 0, 0, 1, 1, 1, 1),
        ("listen_events", 11, 3, 1, 1, 1, 4, 0),
        ("page_view_events", 13, 3, 1, 2, 2, 6, 1),
        ("status_change_events", 1, 0, 0, 0, 0, 1, 0),
    ]
    days = query(warehouse, "select distinct event_date from main.mart_data_quality_daily")
    assert days == [(DAY.date(),)]


def test_the_data_quality_tests_warn_and_fail_nothing(warehouse: dict[str, Any]) -> None:
    everything = warehouse["results"]["results"]
    statuses = {r["status"] for r in everything}
    assert statuses <= {"success", "pass", "warn"}, statuses
    results = {
        r["unique_id"].split(".")[2]: r for r in everything if r["unique_id"].startswith("test.")
    }
    for name, failures in WARNINGS.items():
        result = results[name]
        assert result["failures"] == failures, (name, result["failures"])
        assert result["status"] == ("warn" if failures else "pass"), (name, result["status"])
    warned = {name for name, r in results.items() if r["status"] == "warn"}
    assert warned == {name for name, failures in WARNINGS.items() if failures}


@pytest.fixture(scope="module")
def bigquery_emulator() -> Iterator[Any]:
    """goccy/bigquery-emulator on free ports, in memory; yields a client of it."""
    if not BIGQUERY_EMULATOR.is_file():
        pytest.skip(
            f"no BigQuery emulator at {BIGQUERY_EMULATOR}: `make bigquery-emulator` builds it "
            "(about 25 minutes once per machine)"
        )
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    from beatlytica.kafka_local import free_port

    port, grpc_port = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [
        str(BIGQUERY_EMULATOR),
        "--project=test-project",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--grpc-port={grpc_port}",
        "--log-level=warn",
    ]
    with serving(command, f"{endpoint}/bigquery/v2/projects/test-project/datasets"):
        yield bigquery.Client(
            project="test-project",
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=endpoint),
        )


def bigquery_string(value: str | None) -> str:
    """A BigQuery expression of exactly ``value``, whatever characters it holds."""
    if value is None:
        return "cast(null as string)"
    return f"code_points_to_string([{', '.join(str(ord(c)) for c in value)}])"


def test_the_bigquery_macros_give_the_python_results_on_the_emulator(
    bigquery_emulator: Any, tmp_path: Path
) -> None:
    compiled = compile_for_bigquery(INLINE, tmp_path)
    # the emulator drops NUL characters from strings (BigQuery keeps them): no such value here
    values = [value for value in VALUES if value is None or "\x00" not in value]
    rows = ", ".join(
        f"struct({index} as id, {bigquery_string(value)} as value)"
        for index, value in enumerate(values)
    )
    sql = f"with text_repair_input as (select * from unnest([{rows}]))\n{compiled}\norder by id"
    result = [tuple(row.values()) for row in bigquery_emulator.query(sql).result()]
    expected = python_results(values)
    assert len(result) == len(expected)
    different = [
        (values[got[0]], got[1:], want[1:])
        for got, want in zip(result, expected, strict=True)
        if got != want
    ]
    assert not different, "value, BigQuery, Python:\n" + "\n".join(map(repr, different))
