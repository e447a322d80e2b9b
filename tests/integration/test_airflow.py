"""The DAGs run by Airflow itself (dag.test on a SQLite metadata DB) against the embedded
stack: the same DAG files as in the cluster, pod tasks as local processes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.helpers import BEATLYTICA, ROOT, cli_env, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def home(loaded_warehouse: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    copy = tmp_path / "home"
    shutil.copytree(
        loaded_warehouse["env"]["BEATLYTICA_HOME"],
        copy,
        ignore=shutil.ignore_patterns("kafka", "airflow"),
    )
    return {"BEATLYTICA_HOME": str(copy), "BEATLYTICA_TASK_RETRIES": "0"}


def test_hourly_then_daily_run_for_real(home: dict[str, str]) -> None:
    hourly = run_cli(
        "dag-run",
        "beatlytica_hourly",
        "--start",
        "2026-11-01T18:00:00",
        "--end",
        "2026-11-01T19:00:00",
        timeout=900,
        **home,
    )
    assert hourly.returncode == 0, hourly.stderr[-5000:]
    assert "beatlytica_hourly: success" in hourly.stdout
    for task in (
        "wait_for_lake",
        "load[0]",
        "load[3]",
        "dbt_build",
        "source_freshness",
        "reconcile",
    ):
        assert f"'{task}': 'success'" in hourly.stdout, task
    # nothing late before the interval: reload_late and the rebuild after it are skipped, and
    # the interval's own build runs all the same
    for task in ("reload_late", "dbt_build_late"):
        assert f"'{task}': 'skipped'" in hourly.stdout, task

    con = duckdb.connect(str(Path(home["BEATLYTICA_HOME"]) / "warehouse.duckdb"), read_only=True)
    try:
        hour = "event_ts >= '2026-11-01 18:00:00+00' and event_ts < '2026-11-01 19:00:00+00'"
        facts = con.execute(f"select count(*) from main.fact_streams where {hour}").fetchone()[0]
        raw = con.execute(
            f"select count(*) from raw.listen_events where {hour.replace('event_ts', 'ts')}"
        ).fetchone()[0]
    finally:
        con.close()
    assert facts == raw > 0

    daily = run_cli(
        "dag-run",
        "beatlytica_daily",
        "--start",
        "2026-11-01T00:00:00",
        "--end",
        "2026-11-02T00:00:00",
        timeout=900,
        **home,
    )
    assert daily.returncode == 0, daily.stderr[-5000:]
    docs = Path(home["BEATLYTICA_HOME"]) / "lake" / "docs" / "dbt"
    assert json.loads((docs / "manifest.json").read_text())["metadata"]["project_name"]
    assert (docs / "index.html").stat().st_size > 0

    # a layer that disagrees fails the reconciliation with the whole table of figures
    shutil.rmtree(Path(home["BEATLYTICA_HOME"]) / "lake" / "raw" / "auth_events")
    result = run_cli(
        "reconcile", "--start", "2026-11-01T00:00:00", "--end", "2026-11-02T00:00:00", **home
    )
    assert result.returncode == 2
    assert "lake, raw tables and facts disagree for auth_events" in result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:]}
    assert rows["auth_events"][1] == "0" and rows["auth_events"][-1] == "MISMATCH"
    assert rows["listen_events"][1] == rows["listen_events"][2] == rows["listen_events"][3]
    assert rows["listen_events"][-1] == "ok"


def test_reconcile_names_a_missing_layer(home: dict[str, str]) -> None:
    result = run_cli(
        "reconcile", "--start", "2026-11-01T00:00:00", "--end", "2026-11-02T00:00:00", **home
    )
    assert result.returncode == 2
    assert "no dbt model fact_streams in the warehouse; run dbt first" in result.stderr


def test_two_overlapping_runs_of_an_interval_leave_it_once(
    home: dict[str, str], tmp_path: Path
) -> None:
    """A backfill of an interval while its scheduled run is running: two Airflow runs at once,
    each with its own metadata DB and dbt target (as two pod tasks have their own files), one
    lake and one DuckDB warehouse. Both succeed, the warehouse's writers (loaders, dbt) taking
    turns, and the interval's facts hold each event once; reconcile agrees."""
    shared = Path(home["BEATLYTICA_HOME"])
    backfill = {
        **home,
        "BEATLYTICA_HOME": str(tmp_path / "backfill-home"),
        "BEATLYTICA_LAKE_URI": (shared / "lake").as_uri(),
        "BEATLYTICA_DUCKDB_PATH": str(shared / "warehouse.duckdb"),
    }
    interval = ("--start", "2026-11-01T18:00:00", "--end", "2026-11-01T19:00:00")
    runs = [
        subprocess.Popen(
            [str(BEATLYTICA), "dag-run", "beatlytica_hourly", *interval],
            env=cli_env(**env),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for env in (home, backfill)
    ]
    outputs = [run.communicate(timeout=1500) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, (out + err)[-6000:]
        assert "beatlytica_hourly: success" in out
    # they did overlap: a writer of one run waited for the other's (the runs' logs say so)
    logs = [Path(out.split("log: ")[1].strip()).read_text() for out, _ in outputs]
    assert any("waiting for the DuckDB warehouse" in log for log in logs)

    con = duckdb.connect(str(shared / "warehouse.duckdb"), read_only=True)
    try:
        hour = "event_ts >= '2026-11-01 18:00:00+00' and event_ts < '2026-11-01 19:00:00+00'"
        facts, ids = con.execute(
            f"select count(*), count(distinct stream_key) from main.fact_streams where {hour}"
        ).fetchone()
        raw, raw_ids = con.execute(
            "select count(*), count(distinct event_id) from raw.listen_events where "
            + hour.replace("event_ts", "ts")
        ).fetchone()
    finally:
        con.close()
    assert facts == ids == raw == raw_ids > 0
    reconcile = run_cli("reconcile", *interval, **home)
    assert reconcile.returncode == 0, reconcile.stdout + reconcile.stderr
