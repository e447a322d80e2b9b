"""The dbt project on a warehouse the real pipeline filled (generator -> Kafka -> Spark -> lake
-> loader -> DuckDB): the build passes, the star schema and marts hold the real figures, and a
rerun of one hour of the window changes nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.integration

DBT = Path(sys.executable).parent / "dbt"
PROJECT = ROOT / "dbt"

FACTS_AND_DIMENSIONS = (
    "fact_streams",
    "fact_page_views",
    "fact_sessions",
    "dim_users",
    "dim_songs",
    "dim_artists",
    "dim_location",
    "dim_datetime",
)
MARTS = (
    "mart_daily_streams",
    "mart_hourly_streams",
    "mart_top_songs_daily",
    "mart_top_artists_daily",
    "mart_active_users_daily",
    "mart_active_users_monthly",
    "mart_conversions_daily",
    "mart_churn_daily",
    "mart_streams_by_state",
    "mart_session_length_daily",
    "mart_level_by_gender",
    "mart_data_quality_daily",
)


def run_dbt(*args: str, warehouse: dict[str, Any], timeout: float = 900) -> str:
    """`dbt <args>` on the copied warehouse, target and logs in the test's folder; its output."""
    work: Path = warehouse["work"]
    command = [
        str(DBT),
        *args,
        "--project-dir",
        str(PROJECT),
        "--profiles-dir",
        str(PROJECT),
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=warehouse["env"], cwd=ROOT
    )
    assert result.returncode == 0, f"dbt {' '.join(args)} failed:\n{result.stdout[-8000:]}"
    return result.stdout


def query(warehouse: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse["duckdb_path"]), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(sql).fetchall()


def scalar(warehouse: dict[str, Any], sql: str) -> Any:
    return query(warehouse, sql)[0][0]


def snapshot(warehouse: dict[str, Any]) -> dict[str, Any]:
    """Row counts of every fact, dimension and mart, and the marts' headline sums."""
    state: dict[str, Any] = {
        name: scalar(warehouse, f"select count(*) from main.{name}")
        for name in (*FACTS_AND_DIMENSIONS, *MARTS)
    }
    state["distinct_streams"] = scalar(
        warehouse, "select count(distinct stream_key) from main.fact_streams"
    )
    state["daily_streams"] = scalar(warehouse, "select sum(streams) from main.mart_daily_streams")
    state["user_keys"] = scalar(
        warehouse, "select string_agg(user_key, ',' order by user_key) from main.dim_users"
    )
    return state


@pytest.fixture(scope="module")
def warehouse(
    loaded_warehouse: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A private copy of the loaded warehouse, built once with `dbt build` (no vars)."""
    work = tmp_path_factory.mktemp("dbt")
    source: Path = loaded_warehouse["duckdb_path"]
    copy = work / "warehouse.duckdb"
    shutil.copyfile(source, copy)
    wal = source.with_name(source.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEATLYTICA_", "DBT_"))}
    env.update(loaded_warehouse["env"])
    env.update(BEATLYTICA_DUCKDB_PATH=str(copy), DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    built = {**loaded_warehouse, "duckdb_path": copy, "work": work, "env": env}
    output = run_dbt("build", warehouse=built)
    assert "ERROR=0" in output and "SKIP=0" in output, output[-3000:]
    return built


def test_fact_streams_holds_every_produced_listen_once(warehouse: dict[str, Any]) -> None:
    produced = warehouse["produced"]["listen_events"]
    assert produced > 1000
    assert scalar(warehouse, "select count(*) from main.fact_streams") == produced
    assert scalar(warehouse, "select count(distinct stream_key) from main.fact_streams") == produced
    assert (
        scalar(warehouse, "select count(*) from main.fact_page_views")
        == warehouse["produced"]["page_view_events"]
    )


def test_dim_users_has_one_current_version_per_user_and_one_unknown_member(
    warehouse: dict[str, Any],
) -> None:
    identified = scalar(
        warehouse,
        """
        select count(distinct user_id) from (
            select user_id from raw.listen_events union all
            select user_id from raw.page_view_events union all
            select user_id from raw.auth_events union all
            select user_id from raw.status_change_events
        ) where user_id is not null
        """,
    )
    assert identified > 100
    current = query(
        warehouse,
        "select count(*), count(distinct user_id) from main.dim_users "
        "where is_current and user_key != '-1'",
    )[0]
    assert current == (identified, identified)
    unknown = query(warehouse, "select user_key, user_id from main.dim_users where user_id < 0")
    assert unknown == [("-1", -1)]
    assert scalar(warehouse, "select min(user_id) from main.dim_users where user_key != '-1'") > 0


def test_dim_users_versions_never_overlap_and_follow_status_changes(
    warehouse: dict[str, Any],
) -> None:
    overlaps = scalar(
        warehouse,
        """
        select count(*)
        from main.dim_users a
        join main.dim_users b
            on a.user_id = b.user_id and a.user_key != b.user_key
        where a.valid_from < coalesce(b.valid_to, timestamptz '9999-12-31')
            and b.valid_from < coalesce(a.valid_to, timestamptz '9999-12-31')
        """,
    )
    assert overlaps == 0
    # every status change starts a version at its ts, at the level it changes to
    status_changes = scalar(warehouse, "select count(*) from raw.status_change_events")
    matched = scalar(
        warehouse,
        """
        select count(*)
        from raw.status_change_events s
        join main.dim_users u
            on s.user_id = u.user_id and s.ts = u.valid_from and s.level != u.level
        """,
    )
    assert status_changes > 0
    assert matched == status_changes
    versions = scalar(warehouse, "select count(*) from main.dim_users where user_key != '-1'")
    current = scalar(warehouse, "select count(*) from main.dim_users where is_current")
    assert versions - (current - 1) == status_changes


def test_facts_point_at_the_user_version_valid_at_the_event(warehouse: dict[str, Any]) -> None:
    rows = query(
        warehouse,
        """
        select
            count(*) filter (where f.user_id is not null and u.user_id is distinct from f.user_id),
            count(*) filter (where f.user_id is null and f.user_key != '-1'),
            count(*) filter (
                where f.user_id is not null
                and not (f.event_ts >= u.valid_from
                         and f.event_ts < coalesce(u.valid_to, timestamptz '9999-12-31'))
            ),
            -- only a Submit Upgrade/Downgrade request, at the instant of its change, still
            -- shows the level before it
            count(*) filter (
                where f.user_id is not null and f.level != u.level
                and f.page not in ('Submit Upgrade', 'Submit Downgrade')
            )
        from main.fact_page_views f
        join main.dim_users u on f.user_key = u.user_key
        """,
    )
    assert rows == [(0, 0, 0, 0)]


def test_marts_are_non_empty_and_agree_with_the_facts(warehouse: dict[str, Any]) -> None:
    for mart in MARTS:
        assert scalar(warehouse, f"select count(*) from main.{mart}") > 0, mart
    streams = scalar(warehouse, "select count(*) from main.fact_streams")
    for mart in ("mart_daily_streams", "mart_hourly_streams", "mart_streams_by_state"):
        assert scalar(warehouse, f"select sum(streams) from main.{mart}") == streams, mart
    assert scalar(warehouse, "select count(*) from main.mart_daily_streams") >= 1
    # the top song of a day is the most played song of that day
    assert (
        query(
            warehouse,
            """
        select t.stream_date, t.streams
        from main.mart_top_songs_daily t
        where t.song_rank = 1
        except
        select event_date, max(n) from (
            select event_date, song_key, count(*) as n from main.fact_streams group by all
        ) group by event_date
        """,
        )
        == []
    )
    assert scalar(warehouse, "select max(song_rank) from main.mart_top_songs_daily") <= 10
    # conversions and churn match the raw events
    upgrades, downgrades = query(
        warehouse, "select sum(upgrades), sum(downgrades) from main.mart_conversions_daily"
    )[0]
    raw_changes = query(
        warehouse,
        "select count(*) filter (where level = 'free'), count(*) filter (where level = 'paid') "
        "from raw.status_change_events",
    )[0]
    assert (upgrades, downgrades) == raw_changes
    assert scalar(warehouse, "select sum(churned_users) from main.mart_churn_daily") == scalar(
        warehouse,
        "select count(distinct user_id) from raw.page_view_events "
        "where page = 'Cancellation Confirmation'",
    )
    # sessions, active users and the level split
    sessions = scalar(warehouse, "select count(distinct session_id) from raw.page_view_events")
    assert scalar(warehouse, "select count(*) from main.fact_sessions") == sessions
    assert scalar(warehouse, "select sum(sessions) from main.mart_session_length_daily") == sessions
    assert (
        scalar(warehouse, "select min(avg_session_length_s) from main.mart_session_length_daily")
        > 0
    )
    daily_max = scalar(warehouse, "select max(active_users) from main.mart_active_users_daily")
    monthly = scalar(warehouse, "select max(active_users) from main.mart_active_users_monthly")
    assert 0 < daily_max <= monthly
    assert scalar(warehouse, "select sum(users) from main.mart_level_by_gender") == scalar(
        warehouse, "select count(*) from main.dim_users where is_current and user_key != '-1'"
    )


def test_dim_datetime_covers_the_data_range(warehouse: dict[str, Any]) -> None:
    first, last = query(
        warehouse,
        "select min(ts), max(ts) from ("
        "select ts from raw.listen_events union all select ts from raw.page_view_events)",
    )[0]
    low, high, hours = query(
        warehouse, "select min(datetime_hour), max(datetime_hour), count(*) from main.dim_datetime"
    )[0]
    assert low <= first and last < high + timedelta(hours=1)
    assert hours % 24 == 0


def test_source_freshness_and_docs_generate(warehouse: dict[str, Any]) -> None:
    run_dbt("source", "freshness", warehouse=warehouse)
    sources = json.loads((warehouse["work"] / "target" / "sources.json").read_text())
    assert {r["status"] for r in sources["results"]} == {"pass"}
    assert len(sources["results"]) == 4
    run_dbt("docs", "generate", warehouse=warehouse)
    catalog = json.loads((warehouse["work"] / "target" / "catalog.json").read_text())
    built = {node["metadata"]["name"] for node in catalog["nodes"].values()}
    assert {*FACTS_AND_DIMENSIONS, *MARTS} <= built


def test_reruns_for_the_whole_window_and_for_one_hour_never_duplicate(
    warehouse: dict[str, Any],
) -> None:
    before = snapshot(warehouse)
    run_dbt("build", warehouse=warehouse)
    assert snapshot(warehouse) == before
    start = datetime.fromisoformat(warehouse["window"][0]) + timedelta(hours=10)
    one_hour = {
        "data_interval_start": f"{start.isoformat()}+00:00",
        "data_interval_end": f"{(start + timedelta(hours=1)).isoformat()}+00:00",
    }
    output = run_dbt("build", "--vars", json.dumps(one_hour), warehouse=warehouse)
    assert "assert_fact_streams_match_raw_listens" in output
    assert snapshot(warehouse) == before
    assert before["distinct_streams"] == before["fact_streams"] == before["daily_streams"]


def test_mart_figures_equal_figures_computed_from_the_raw_events(
    warehouse: dict[str, Any],
) -> None:
    """Streams per day, daily active users and the top song, recomputed in Python from the
    generator's own events (same seed), agree with the marts."""
    from collections import Counter, defaultdict
    from datetime import UTC, datetime

    from beatlytica.text_repair import repair_mojibake
    from tests.conftest import WAREHOUSE_SAMPLE, simulate

    def day(ts: int) -> str:
        return datetime.fromtimestamp(ts / 1000, UTC).date().isoformat()

    streams: Counter[str] = Counter()
    songs: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    active: dict[str, set[int]] = defaultdict(set)
    for topic, _, line in simulate(WAREHOUSE_SAMPLE):
        event = json.loads(line)
        if topic == "listen_events":
            streams[day(event["ts"])] += 1
            # staging reads double-encoded UTF-8 back: both spellings are one song
            song = (repair_mojibake(event["song"]), repair_mojibake(event["artist"]))
            songs[day(event["ts"])][song] += 1
        elif topic == "page_view_events" and "userId" in event:
            active[day(event["ts"])].add(event["userId"])

    marts = {
        str(d): n
        for d, n in query(warehouse, "select stream_date, streams from main.mart_daily_streams")
    }
    assert marts == dict(streams)
    dau = {
        str(d): n
        for d, n in query(
            warehouse, "select activity_date, active_users from main.mart_active_users_daily"
        )
    }
    assert dau == {d: len(users) for d, users in active.items()}
    for stream_date, title, artist, plays in query(
        warehouse,
        "select stream_date, song_title, artist_name, streams "
        "from main.mart_top_songs_daily where song_rank = 1",
    ):
        best = max(songs[str(stream_date)].values())
        assert plays == best and songs[str(stream_date)][(title, artist)] == best


def test_data_quality_mart_equals_the_python_reference_on_the_raw_events(
    warehouse: dict[str, Any],
) -> None:
    """Every raw event is counted once per day and topic, and each repair as often as the
    Python reference of the macros (beatlytica.text_repair) finds it in the raw values."""
    from collections import Counter

    from beatlytica.dashboard.data import DATA_QUALITY_COLUMNS
    from beatlytica.text_repair import repair_mojibake, unquote

    def mojibake(*values: str | None) -> bool:
        return any(repair_mojibake(v) != v for v in values)

    expected: dict[tuple[str, str], Counter[str]] = {}
    for topic in ("listen_events", "page_view_events", "auth_events", "status_change_events"):
        songs = "artist, song" if topic in ("listen_events", "page_view_events") else "null, null"
        rows = query(
            warehouse,
            f"select distinct on (event_id) event_date, {songs}, first_name, last_name, city, "
            f"state, user_agent, coalesce(registration > ts, false) from raw.{topic}",
        )
        for day, artist, song, first, last, city, state, agent, registered_later in rows:
            counts = expected.setdefault((str(day), topic), Counter())
            counts["events"] += 1
            counts["artists_repaired"] += mojibake(artist)
            counts["songs_repaired"] += mojibake(song)
            counts["names_repaired"] += mojibake(first, last)
            counts["locations_repaired"] += mojibake(city, state)
            counts["user_agents_unquoted"] += unquote(agent) != agent
            counts["registrations_after_event"] += registered_later
    measures = list(DATA_QUALITY_COLUMNS)  # the mart's measures, as the dashboard shows them
    mart = {
        (str(row[0]), row[1]): dict(zip(measures, row[2:], strict=True))
        for row in query(
            warehouse,
            f"select event_date, topic, {', '.join(measures)} from main.mart_data_quality_daily",
        )
    }
    assert mart == {key: {m: counts[m] for m in measures} for key, counts in expected.items()}
