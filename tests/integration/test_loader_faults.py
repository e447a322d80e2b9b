"""The loader under faults, on the real lake and DuckDB: killed (SIGKILL) in the middle of a
load, each topic's interval is all there or not at all, and the rerun completes it; two loaders
of the same interval at once give the rows of one (the second waits for DuckDB's single writer
instead of failing)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from beatlytica.events import TOPIC_NAMES
from beatlytica.reconcile import lake_fingerprint
from beatlytica.settings import Settings
from tests.helpers import BEATLYTICA, ROOT, cli_env, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh(loaded_warehouse: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The fixture's lake with an empty warehouse of our own."""
    env = {
        **loaded_warehouse["env"],
        "BEATLYTICA_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
    }
    start, end = (datetime.fromisoformat(t).replace(tzinfo=UTC) for t in loaded_warehouse["window"])
    settings = Settings(home=Path(env["BEATLYTICA_HOME"]))
    lake = {t: lake_fingerprint(settings, t, start, end) for t in TOPIC_NAMES}
    assert all(rows > 0 for rows, _ in lake.values())
    return {"env": env, "window": loaded_warehouse["window"], "lake": lake, "tmp": tmp_path}


def raw_rows(path: str, window: tuple[str, str]) -> dict[str, int]:
    con = duckdb.connect(path, read_only=True)
    try:
        out = {}
        for topic in TOPIC_NAMES:
            tables = con.execute(
                "select count(*) from information_schema.tables "
                "where table_schema = 'raw' and table_name = ?",
                [topic],
            ).fetchone()
            if not tables or not tables[0]:
                out[topic] = 0
                continue
            between = "ts >= ?::timestamptz and ts < ?::timestamptz"
            row = con.execute(
                f"select count(*) from raw.{topic} where {between}", list(window)
            ).fetchone()
            out[topic] = int(row[0]) if row else 0
        return out
    finally:
        con.close()


def start_load(fresh: dict[str, Any], log: Path) -> subprocess.Popen[bytes]:
    start, end = fresh["window"]
    with log.open("w") as stderr:
        return subprocess.Popen(
            [str(BEATLYTICA), "load", "--start", start, "--end", end],
            env=cli_env(**fresh["env"]),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )


def test_a_loader_killed_mid_load_leaves_no_partial_interval(fresh: dict[str, Any]) -> None:
    log = fresh["tmp"] / "load.log"
    process = start_load(fresh, log)
    deadline = time.monotonic() + 300
    while '"message": "loaded"' not in log.read_text():
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no topic loaded in time"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL

    expected = {t: rows for t, (rows, _) in fresh["lake"].items()}
    after_kill = raw_rows(fresh["env"]["BEATLYTICA_DUCKDB_PATH"], fresh["window"])
    whole = [t for t in TOPIC_NAMES if after_kill[t] == expected[t]]
    assert whole, after_kill  # the topic the log said was loaded
    assert all(after_kill[t] in (0, expected[t]) for t in TOPIC_NAMES), (after_kill, expected)

    rerun = run_cli(
        "load", "--start", fresh["window"][0], "--end", fresh["window"][1], **fresh["env"]
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert raw_rows(fresh["env"]["BEATLYTICA_DUCKDB_PATH"], fresh["window"]) == expected


def test_two_loaders_at_once_give_the_rows_of_one(fresh: dict[str, Any]) -> None:
    logs = [fresh["tmp"] / f"load-{n}.log" for n in (1, 2)]
    processes = [start_load(fresh, log) for log in logs]
    codes = [p.wait(timeout=600) for p in processes]
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]
    waited = [log for log in logs if "waiting for the DuckDB warehouse" in log.read_text()]
    assert waited, "neither loader met the other"
    expected = {t: rows for t, (rows, _) in fresh["lake"].items()}
    assert raw_rows(fresh["env"]["BEATLYTICA_DUCKDB_PATH"], fresh["window"]) == expected
