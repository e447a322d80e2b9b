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
class Lake:
    settings: Settings
    events: int
    generate_s: float
    stream_s: float
    start: datetime
    end: datetime


@contextmanager
def streamed_lake(tmp: Path, users: int, days: float, master: str = "local[2]") -> Iterator[Lake]:
    """Produce ``users`` x ``days`` into a fresh broker and stream it into ``tmp/home/lake``."""
    end = START + timedelta(days=days)
    broker = LocalKafka(tmp / "kafka", ROOT / ".cache/jars/kafka", free_port())
    broker.start({t: 3 for t in TOPIC_NAMES})
    try:
        sink = KafkaSink({"bootstrap.servers": broker.bootstrap_servers}, TOPIC_NAMES, 15)
        produced = generate(Simulation(SimulationConfig(users, START, end, seed=1)), sink,
                            TOPIC_NAMES, progress=False)  # fmt: skip
        assert not produced.report.total_failed, produced.report
        os.environ["BEATLYTICA_LOG_LEVEL"] = "WARNING"
        settings = Settings(
            home=tmp / "home",
            kafka_bootstrap_servers=broker.bootstrap_servers,
            jars_dir=ROOT / ".cache/jars",
            dbt_project_dir=ROOT / "dbt",
        )
        from spark_jobs.stream_events import run as stream

        started = time.perf_counter()
        assert stream(settings, master) == 0
        stream_s = time.perf_counter() - started
    finally:
        broker.stop()
    yield Lake(settings, produced.events, produced.seconds, stream_s, START, end)
