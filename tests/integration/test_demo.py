"""`beatlytica demo` on a small window: every stage that exists, twice, same figures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from beatlytica.kafka_local import free_port
from tests.helpers import run_cli

pytestmark = pytest.mark.integration


def test_demo_runs_end_to_end_and_reruns_identically(tmp_path: Path) -> None:
    env = {
        "BEATLYTICA_HOME": str(tmp_path / "home"),
        "BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
    }
    args = ("demo", "--users", "200", "--days", "0.5")
    outputs = []
    for _ in range(2):
        result = run_cli(*args, timeout=600, **env)
        assert result.returncode == 0, result.stdout + result.stderr[-3000:]
        table = re.findall(
            r"^\s+(\w+_events)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)$", result.stdout, re.M
        )
        assert len(table) == 4, result.stdout
        for _topic, produced, in_lake, quarantined in table:
            assert produced == in_lake and quarantined == "0"
        outputs.append(table)
    assert outputs[0] == outputs[1]
    # the demo stopped the broker it started
    assert not (tmp_path / "home" / "kafka" / "broker.pid").exists()
