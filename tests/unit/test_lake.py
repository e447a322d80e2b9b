"""Reading the lake through the file sink's commit log, never a bare folder listing."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from beatlytica.errors import BeatlyticaError
from beatlytica.lake import (
    Partition,
    committed_files,
    files_in_interval,
    partition_of,
    raw_table_uri,
)


def _write_log(table: Path, name: str, files: list[str], action: str = "add") -> None:
    log = table / "_spark_metadata"
    log.mkdir(parents=True, exist_ok=True)
    lines = ["v1"] + [
        json.dumps({"path": f"file:{table / f}", "size": 1, "isDir": False, "action": action})
        for f in files
    ]
    (log / name).write_text("\n".join(lines))


def test_only_files_in_the_commit_log_are_read(tmp_path: Path) -> None:
    table = tmp_path / "raw" / "listen_events"
    part = "event_date=2026-11-01/event_hour=05"
    for name in ("a.parquet", "b.parquet", "orphan.parquet"):
        (table / part).mkdir(parents=True, exist_ok=True)
        (table / part / name).write_bytes(b"x")
    _write_log(table, "0", [f"{part}/a.parquet"])
    _write_log(table, "1", [f"{part}/b.parquet"])
    (table / "_spark_metadata" / ".2.abc.tmp").write_text("v1\n{half")  # a write in progress
    files = committed_files(table.as_uri())
    assert files == [f"file://{table}/{part}/a.parquet", f"file://{table}/{part}/b.parquet"]


def test_compacted_logs_replace_the_batches_before_them(tmp_path: Path) -> None:
    table = tmp_path / "t"
    _write_log(table, "8", ["old.parquet"])
    _write_log(table, "9.compact", ["old.parquet", "x.parquet"])
    _write_log(table, "10", ["y.parquet"])
    _write_log(table, "11", ["x.parquet"], action="delete")
    assert committed_files(table.as_uri()) == [
        f"file://{table}/old.parquet",
        f"file://{table}/y.parquet",
    ]


def test_a_table_without_a_log_has_nothing_committed(tmp_path: Path) -> None:
    (tmp_path / "t" / "event_date=2026-11-01").mkdir(parents=True)
    assert committed_files((tmp_path / "t").as_uri()) == []


def test_a_corrupt_log_is_named(tmp_path: Path) -> None:
    (tmp_path / "t" / "_spark_metadata").mkdir(parents=True)
    (tmp_path / "t" / "_spark_metadata" / "0").write_text('{"path": "x"}')
    with pytest.raises(BeatlyticaError, match="not a Spark file sink log"):
        committed_files((tmp_path / "t").as_uri())


def test_partitions_and_intervals() -> None:
    uri = "gs://bucket/lake/raw/listen_events/event_date=2026-11-01/event_hour=5/part-0.parquet"
    assert partition_of(uri) == Partition(date(2026, 11, 1), 5)
    assert partition_of("gs://bucket/lake/raw/listen_events/part-0.parquet") is None
    files = [uri.replace("event_hour=5", f"event_hour={h}") for h in range(24)]
    start = datetime(2026, 11, 1, 5, tzinfo=UTC)
    end = datetime(2026, 11, 1, 7, 30, tzinfo=UTC)
    chosen = files_in_interval(files, start, end)
    assert [partition_of(f).event_hour for f in chosen] == [5, 6, 7]


def test_lake_paths() -> None:
    assert raw_table_uri("gs://b/lake/", "auth_events") == "gs://b/lake/raw/auth_events"
