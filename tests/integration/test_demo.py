"""`make demo`'s command on a small window: every stage, twice, the same figures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from beatlytica.kafka_local import free_port
from tests.helpers import run_cli

pytestmark = pytest.mark.integration


def test_demo_runs_end_to_end_and_reruns_identically(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        "BEATLYTICA_HOME": str(home),
        "BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
    }
    args = ("demo", "--users", "200", "--days", "1")
    outputs = []
    for _ in range(2):
        result = run_cli(*args, timeout=900, **env)
        assert result.returncode == 0, result.stdout + result.stderr[-3000:]
        events = re.findall(
            r"^\s+(\w+_events)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)$", result.stdout, re.M
        )
        assert len(events) == 4, result.stdout
        for _topic, produced, in_lake, quarantined, warehouse in events:
            assert produced == in_lake == warehouse and quarantined == "0"
        marts = dict(
            re.findall(r"^\s+((?:mart|fact|dim)_\w+)\s+([\d,]+) rows$", result.stdout, re.M)
        )
        assert marts["fact_streams"] == events[0][1]  # every listen reached the star schema
        assert {"mart_daily_streams", "mart_top_songs_daily", "dim_users"} <= set(marts)
        assert "beatlytica_hourly 1/1" in result.stdout and "beatlytica_daily 1/1" in result.stdout
        outputs.append((events, marts, result.stdout.split("Top songs")[1].split("Dashboard")[0]))
    assert outputs[0] == outputs[1]
    assert (home / "dashboard" / "index.html").exists()
    assert (home / "lake" / "docs" / "dbt" / "index.html").exists()
    # the demo stopped the broker it started
    assert not (home / "kafka" / "broker.pid").exists()
