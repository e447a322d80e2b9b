"""The DAGs run by Airflow itself (dag.test on a SQLite metadata DB) against the embedded
stack: the same DAG files as in the cluster, pod tasks as local processes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.helpers import run_cli

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
