"""`beatlytica demo`: the embedded pipeline end to end on one machine.

Stages run in the order data flows. Each stage that exists runs for real; the summary says
which stages are not built yet. Everything the demo starts is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from beatlytica.errors import BeatlyticaError
from beatlytica.settings import Settings, get_settings

log = logging.getLogger(__name__)

NOT_BUILT_YET = (
    "Spark Structured Streaming to the Parquet lake",
    "loader and DuckDB warehouse",
    "dbt star schema and marts",
    "Airflow DAG run locally",
    "dashboard",
)


@dataclass(frozen=True)
class DemoConfig:
    users: int = 3000
    days: float = 2.0
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    seed: int = 42

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


@contextlib.contextmanager
def local_kafka(settings: Settings) -> Iterator[str]:
    """The local broker for the demo's lifetime; one that was already running is left running."""
    from beatlytica import kafka_local

    broker = kafka_local.from_settings()
    started_here = broker.pid() is None
    topics = {t: settings.kafka_partitions for t in settings.topics}
    broker.start(topics)
    # the demo replays a fixed window: fresh topics keep a rerun's figures identical
    broker.reset_topics(topics)
    try:
        yield broker.bootstrap_servers
    finally:
        if started_here:
            broker.stop()


def generate_into_kafka(settings: Settings, config: DemoConfig) -> dict[str, int]:
    from beatlytica.generator.runner import run
    from beatlytica.generator.simulation import Simulation, SimulationConfig
    from beatlytica.generator.sinks import KafkaSink

    simulation = Simulation(SimulationConfig(config.users, config.start, config.end, config.seed))
    sink = KafkaSink(
        settings.kafka_client_config(), settings.topics, settings.kafka_connect_timeout_s
    )
    result = run(simulation, sink, settings.topics)
    if result.report.total_failed:
        raise BeatlyticaError(f"{result.report.total_failed} events were not delivered")
    return dict(result.produced)


def run_demo(config: DemoConfig) -> None:
    settings = get_settings()
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    print(f"Beatlytica demo: {config.users} users, {config.days:g} simulated days from "
          f"{config.start:%Y-%m-%d}; state in {settings.home_dir}")  # fmt: skip
    with local_kafka(settings) as bootstrap:
        print(f"[1/2] Kafka broker up on {bootstrap}")
        counts = generate_into_kafka(settings, config)
        print("[2/2] events produced to Kafka:")
        for topic, n in sorted(counts.items()):
            print(f"      {topic:<22} {n:>9,}")
    print("Not built yet: " + "; ".join(NOT_BUILT_YET) + ".")
