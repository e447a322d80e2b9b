"""A lake the real way, for the benchmarks: generator -> local Kafka -> the Spark job."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from beatlytica.events import TOPIC_NAMES
from beatlytica.generator.runner import run as generate
from beatlytica.generator.simulation import Simulation, SimulationConfig
from beatlytica.generator.sinks import KafkaSink
from beatlytica.kafka_local import LocalKafka, free_port
from beatlytica.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class Backlog:
    """Simulated events waiting in a fresh local broker, and the job's settings to read them."""

    settings: Settings
    events: int
    generate_s: float
    start: datetime
    end: datetime


@dataclass
class Lake:
    settings: Settings
    events: int
    generate_s: float
    stream_s: float
    start: datetime
    end: datetime


@contextmanager
def backlog(tmp: Path, users: int, days: float) -> Iterator[Backlog]:
    """Produce ``users`` x ``days`` into a fresh broker (3 partitions per topic); the settings
    point the job at it and at the lake ``tmp/home/lake``. The broker stops on exit."""
    end = START + timedelta(days=days)
    broker = LocalKafka(tmp / "kafka", ROOT / ".cache/jars/kafka", free_port())
    broker.start({t: 3 for t in TOPIC_NAMES})
    try:
        sink = KafkaSink({"bootstrap.servers": broker.bootstrap_servers}, TOPIC_NAMES, 15)
        produced = generate(
            Simulation(SimulationConfig(users, START, end, seed=1)),
            sink,
            TOPIC_NAMES,
            progress=False,
        )
        assert not produced.report.total_failed, produced.report
        os.environ["BEATLYTICA_LOG_LEVEL"] = "WARNING"
        settings = Settings(
            home=tmp / "home",
            kafka_bootstrap_servers=broker.bootstrap_servers,
            jars_dir=ROOT / ".cache/jars",
            dbt_project_dir=ROOT / "dbt",
        )
        yield Backlog(settings, produced.events, produced.seconds, START, end)
    finally:
        broker.stop()


@contextmanager
def streamed_lake(tmp: Path, users: int, days: float, master: str = "local[2]") -> Iterator[Lake]:
    """Produce ``users`` x ``days`` into a fresh broker and stream it into ``tmp/home/lake``."""
    with backlog(tmp, users, days) as waiting:
        from spark_jobs.stream_events import run as stream

        started = time.perf_counter()
        assert stream(waiting.settings, master) == 0
        stream_s = time.perf_counter() - started
    yield Lake(
        waiting.settings, waiting.events, waiting.generate_s, stream_s, waiting.start, waiting.end
    )
