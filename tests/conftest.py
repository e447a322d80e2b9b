"""Shared fixtures: a generated dataset, and one real Kafka broker per test session."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from beatlytica.events import TOPIC_NAMES
from beatlytica.generator.simulation import Simulation, SimulationConfig

ROOT = Path(__file__).resolve().parents[1]
JARS = ROOT / ".cache" / "jars"
SHARED = Path(os.environ.get("BEATLYTICA_SHARED_DIR", ROOT.parent / "shared"))

#: the reference dataset of the generator tests: two simulated days
SAMPLE = SimulationConfig(
    users=1500,
    start=datetime(2026, 11, 1, tzinfo=UTC),
    end=datetime(2026, 11, 3, tzinfo=UTC),
    seed=7,
)


def simulate(config: SimulationConfig) -> list[tuple[str, int, str]]:
    return list(Simulation(config))


@pytest.fixture(scope="session")
def sample_lines() -> list[tuple[str, int, str]]:
    return simulate(SAMPLE)


@pytest.fixture(scope="session")
def sample_events(sample_lines: list[tuple[str, int, str]]) -> dict[str, list[dict[str, Any]]]:
    """The sample, parsed, per topic, in emission order."""
    events: dict[str, list[dict[str, Any]]] = {t: [] for t in TOPIC_NAMES}
    for topic, _, line in sample_lines:
        events[topic].append(json.loads(line))
    return events


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Kafka 4.x broker (KRaft) on a free port, with the four topics, 3 partitions each."""
    from beatlytica.kafka_local import LocalKafka, free_port

    broker = LocalKafka(tmp_path_factory.mktemp("kafka"), JARS / "kafka", free_port())
    broker.start({t: 3 for t in TOPIC_NAMES})
    try:
        yield broker
    finally:
        broker.stop()
