"""When an interval is complete (the lake sensor's rule) and which loaded intervals received
late events since (load manifests against the commit log). The real stream, loader and DuckDB:
tests/integration/test_late_data.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from beatlytica.completeness import completeness
from beatlytica.lake import load_manifest_uri, progress_uri, raw_table_uri, write_json
from beatlytica.loader import grid, late_intervals
from beatlytica.settings import Settings
from tests.unit.test_lake import _write_log

TOPICS = ("listen_events", "auth_events")


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(
        lake_uri=(tmp_path / "lake").as_uri(),
        topics=TOPICS,
        dag_start_date="2026-11-01T00:00:00",
        **values,
    )


def commit(s: Settings, topic: str, batch: int, hours: list[int], day: int = 1) -> list[str]:
    """A committed batch of one file per event hour; returns the files' URIs."""
    table = Path(raw_table_uri(s.lake, topic).removeprefix("file://"))
    names = [f"event_date=2026-11-{day:02}/event_hour={h:02}/part-{batch}.parquet" for h in hours]
    _write_log(table, str(batch), names)
    return [f"file://{table}/{name}" for name in names]


def test_the_grid_is_the_dags_intervals_inside_the_window(tmp_path: Path) -> None:
    hourly = settings(tmp_path)
    assert grid(hourly, at(5), at(8)) == [(at(5), at(6)), (at(6), at(7)), (at(7), at(8))]
    # a window that does not start on the grid: only whole intervals inside it
    assert grid(hourly, at(5, 30), at(8)) == [(at(6), at(7)), (at(7), at(8))]
    # nothing before the DAGs' first interval
    assert grid(hourly, datetime(2026, 10, 31, 22, tzinfo=UTC), at(1)) == [(at(0), at(1))]
    daily = settings(tmp_path, interval_minutes=1440)
    assert grid(daily, at(0), at(0, day=3)) == [(at(0), at(0, day=2)), (at(0, day=2), at(0, day=3))]


def test_an_interval_is_complete_once_the_stream_is_past_it_in_event_time(tmp_path: Path) -> None:
    s = settings(tmp_path, interval_grace_minutes=10)
    commit(s, "listen_events", 0, [5, 6, 7])
    # [06:00, 07:00) is due at 07:10: events of 07:00 are not enough
    found = completeness(s, at(7))
    assert not found.complete
    assert "not past 2026-11-01 07:10" in found.reason
    assert "listen_events (read all of Kafka at never)" in found.reason
    commit(s, "auth_events", 1, [8])
    found = completeness(s, at(7))
    assert found.complete and found.reason.startswith("auth_events has committed events of")
    assert completeness(s, at(6)).complete  # 07:00 >= 06:10


def test_or_once_every_topic_read_all_of_kafka_after_it(tmp_path: Path) -> None:
    """History streamed at once, or a quiet hour: no later events, but the stream has read
    everything there was after the interval's end plus the grace period."""
    s = settings(tmp_path, interval_grace_minutes=10)
    commit(s, "listen_events", 0, [6])
    write_json(progress_uri(s.lake, "listen_events"), {"read_all_before": "2026-11-01T07:30:00Z"})
    found = completeness(s, at(7))
    assert not found.complete and "auth_events (read all of Kafka at never)" in found.reason
    write_json(progress_uri(s.lake, "auth_events"), {"read_all_before": "2026-11-01T07:05:00Z"})
    found = completeness(s, at(7))
    assert not found.complete and "auth_events (read all of Kafka at 2026-11-01 07:05:00)" in (
        found.reason
    )
    write_json(progress_uri(s.lake, "auth_events"), {"read_all_before": "2026-11-01T07:10:00Z"})
    found = completeness(s, at(7))
    assert found.complete and found.reason == "every topic read all of Kafka after 2026-11-01 07:10"


def loaded(s: Settings, topic: str, start: datetime, end: datetime, files: list[str]) -> None:
    """The manifest the loader writes after loading an interval."""
    write_json(load_manifest_uri(s.lake, topic, start, end), {"files": files, "rows": 1})


def test_a_loaded_interval_with_new_committed_files_is_late(tmp_path: Path) -> None:
    s = settings(tmp_path)
    first = commit(s, "listen_events", 0, [5, 6])
    loaded(s, "listen_events", at(5), at(6), first[:1])
    loaded(s, "listen_events", at(6), at(7), first[1:])
    assert late_intervals(s, TOPICS, at(0), at(8)) == []
    # a late event of 05:xx, and one of 07:xx whose interval is not loaded yet (its own run's)
    late = commit(s, "listen_events", 1, [5, 7])
    (found,) = late_intervals(s, TOPICS, at(0), at(8))
    assert (found.topic, found.start, found.end) == ("listen_events", at(5), at(6))
    assert found.added == (late[0],) and found.removed == ()
    # outside the window: not looked at
    assert late_intervals(s, TOPICS, at(6), at(8)) == []


def test_a_file_gone_from_the_lake_makes_its_interval_late_too(tmp_path: Path) -> None:
    """`beatlytica lake repair-file --drop` takes a file out of the commit log: the raw table
    still holds its rows until the interval is loaded again."""
    s = settings(tmp_path)
    files = commit(s, "auth_events", 0, [5])
    loaded(s, "auth_events", at(5), at(6), [*files, files[0].replace("part-0", "part-9")])
    (found,) = late_intervals(s, ("auth_events",), at(5), at(6))
    assert found.added == () and found.removed == (files[0].replace("part-0", "part-9"),)
