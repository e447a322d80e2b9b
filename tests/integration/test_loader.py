"""`beatlytica load` into DuckDB for real, from the lake the real Spark job wrote."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from beatlytica.events import TOPIC_NAMES
from tests.helpers import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def home(loaded_warehouse: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """A private copy of the loaded stack's lake and warehouse."""
    source = Path(loaded_warehouse["env"]["BEATLYTICA_HOME"])
    copy = tmp_path / "home"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("kafka"))
    return {
        **loaded_warehouse,
        "env": {**loaded_warehouse["env"], "BEATLYTICA_HOME": str(copy)},
        "duckdb_path": copy / "warehouse.duckdb",
        "lake": copy / "lake",
    }


def table_state(path: Path, topic: str) -> tuple[int, int, list[str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        total, distinct = con.execute(
            f"select count(*), count(distinct event_id) from raw.{topic}"
        ).fetchone()
        ids = [r[0] for r in con.execute(f"select event_id from raw.{topic} order by 1").fetchall()]
    finally:
        con.close()
    return total, distinct, ids


def test_every_produced_event_is_loaded_once(loaded_warehouse: dict[str, Any]) -> None:
    for topic in TOPIC_NAMES:
        total, distinct, _ = table_state(loaded_warehouse["duckdb_path"], topic)
        assert total == distinct == loaded_warehouse["produced"][topic], topic


def test_reloading_and_overlapping_intervals_duplicate_nothing(home: dict[str, Any]) -> None:
    before = {t: table_state(home["duckdb_path"], t) for t in TOPIC_NAMES}
    for start, end in [
        ("2026-11-01T00:00:00", "2026-11-02T00:00:00"),
        ("2026-11-01T05:00:00", "2026-11-01T09:00:00"),
        ("2026-11-01T07:30:00", "2026-11-01T12:00:00"),
    ]:
        result = run_cli("load", "--start", start, "--end", end, **home["env"])
        assert result.returncode == 0, result.stderr
    assert {t: table_state(home["duckdb_path"], t) for t in TOPIC_NAMES} == before


def test_the_report_counts_rows_per_topic(home: dict[str, Any]) -> None:
    import json

    result = run_cli(
        "load",
        "--start",
        "2026-11-01T18:00:00",
        "--end",
        "2026-11-01T19:00:00",
        "--topic",
        "listen_events",
        **home["env"],
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    con = duckdb.connect(str(home["duckdb_path"]), read_only=True)
    expected = con.execute(
        "select count(*) from raw.listen_events where ts >= '2026-11-01 18:00:00+00' "
        "and ts < '2026-11-01 19:00:00+00'"
    ).fetchone()[0]
    assert report == {
        "listen_events": {"files": report["listen_events"]["files"], "rows": expected}
    }
    assert expected > 0 and report["listen_events"]["files"] > 0


def test_files_of_failed_batches_are_never_loaded(home: dict[str, Any]) -> None:
    """A Parquet file in the partition folder that the commit log does not name (a killed
    batch's leftover) is not read."""
    before = table_state(home["duckdb_path"], "listen_events")
    hour = next((home["lake"] / "raw" / "listen_events").glob("event_date=*/event_hour=10"))
    committed = next(hour.glob("*.parquet"))
    shutil.copy(committed, hour / "part-99999-orphan-of-a-killed-batch.snappy.parquet")
    result = run_cli(
        "load", "--start", "2026-11-01T00:00:00", "--end", "2026-11-02T00:00:00", **home["env"]
    )
    assert result.returncode == 0, result.stderr
    assert table_state(home["duckdb_path"], "listen_events") == before


def test_an_interval_without_committed_data_is_an_error_with_require_data(
    home: dict[str, Any],
) -> None:
    args = ("load", "--start", "2026-12-01T00:00:00", "--end", "2026-12-01T01:00:00")
    result = run_cli(*args, "--require-data", **home["env"])
    assert result.returncode == 2
    assert (
        "no committed lake data for listen_events, page_view_events, auth_events, "
        "status_change_events in [2026-12-01T00:00:00+00:00" in result.stderr
    )
    # without the flag an empty interval is fine: it holds no rows
    assert run_cli(*args, **home["env"]).returncode == 0


def test_an_unreachable_warehouse_is_a_clear_error(home: dict[str, Any]) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(home['duckdb_path'])!r}); "
            "print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        result = run_cli(
            "load",
            "--start",
            "2026-11-01T00:00:00",
            "--end",
            "2026-11-01T01:00:00",
            **home["env"],
            BEATLYTICA_DUCKDB_LOCK_TIMEOUT_SECONDS="3",
        )
        waited = time.monotonic() - started
    finally:
        holder.kill()
    assert result.returncode == 2
    # it waited for the writer (BEATLYTICA_DUCKDB_LOCK_TIMEOUT_SECONDS), then named it
    assert "waiting for the DuckDB warehouse" in result.stderr
    assert waited >= 3
    assert (
        f"cannot open the DuckDB warehouse {home['duckdb_path']} after waiting 3 s" in result.stderr
    )
    assert f"PID {holder.pid}" in result.stderr


def test_an_interval_that_ends_before_it_starts_is_refused(home: dict[str, Any]) -> None:
    result = run_cli(
        "load", "--start", "2026-11-01T02:00:00", "--end", "2026-11-01T01:00:00", **home["env"]
    )
    assert result.returncode == 2 and "is not after" in result.stderr
