"""Reconcile's count of the lake events no DAG interval will ever load, on a lake the real
Spark job wrote (the session's loaded warehouse)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from beatlytica.events import TOPIC_NAMES
from beatlytica.reconcile import Figures, lake_events, outside_intervals, render
from beatlytica.settings import Settings


def test_events_before_the_first_interval_are_counted(loaded_warehouse: dict[str, Any]) -> None:
    home = Path(loaded_warehouse["env"]["BEATLYTICA_HOME"])
    day = datetime(2026, 11, 1, tzinfo=UTC)
    first = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # inside an hour: that hour is split
    settings = Settings(home=home, dag_start_date=first.isoformat())
    for topic in TOPIC_NAMES:
        before = lake_events(settings, topic, day, first)
        assert before > 0, topic
        assert outside_intervals(settings, topic) == before, topic
        # from the first interval on, nothing is outside
        later = Settings(home=home, dag_start_date=day.isoformat())
        assert outside_intervals(later, topic) == 0, topic
    table = render([Figures("listen_events", 5, 5, 5, 0, outside=3)])
    assert table.splitlines()[1].split() == ["listen_events", "5", "5", "5", "0", "3", "ok"]
    assert "no run loads" in table
