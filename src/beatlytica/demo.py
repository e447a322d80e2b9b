"""`beatlytica demo`: the embedded pipeline end to end on one machine.

Stages run in the order data flows. Each stage that exists runs for real; the summary says
which stages are not built yet. Everything the demo starts is stopped on exit, Ctrl-C included,
and a rerun starts from fresh topics and an empty lake, so it reproduces the same figures.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

from beatlytica.errors import BeatlyticaError
from beatlytica.settings import Settings, get_settings

log = logging.getLogger(__name__)

NOT_BUILT_YET = (
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
    """The local broker for the demo's lifetime, with empty topics; a broker that was already
    running is left running."""
    from beatlytica import kafka_local

    broker = kafka_local.from_settings()
    started_here = broker.pid() is None
    topics = {t: settings.kafka_partitions for t in settings.topics}
    broker.start(topics)
    try:
        broker.reset_topics(topics)
        yield broker.bootstrap_servers
    finally:
        if started_here:
            broker.stop()


def reset_local_lake(settings: Settings) -> None:
    """Fresh topics mean fresh offsets: the lake and its checkpoints go with them."""
    lake = urlparse(settings.lake)
    if lake.scheme != "file":
        raise BeatlyticaError(
            f"the demo writes a local lake; BEATLYTICA_LAKE_URI is {settings.lake}"
        )
    shutil.rmtree(lake.path, ignore_errors=True)


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


def stream_to_lake(settings: Settings) -> None:
    from spark_jobs.stream_events import run

    if settings.stream_trigger != "availableNow":
        settings = settings.model_copy(update={"stream_trigger": "availableNow"})
    if run(settings, "local[2]") != 0:
        raise BeatlyticaError("the streaming job failed; see its log lines above")


def lake_counts(settings: Settings) -> dict[str, tuple[int, int]]:
    """(events, quarantined) per topic, read through the commit logs."""
    import pyarrow.parquet as pq

    from beatlytica.lake import committed_files, quarantine_uri, raw_table_uri

    def rows(uri: str) -> int:
        return sum(pq.ParquetFile(urlparse(f).path).metadata.num_rows for f in committed_files(uri))

    return {
        t: (rows(raw_table_uri(settings.lake, t)), rows(quarantine_uri(settings.lake, t)))
        for t in settings.topics
    }


def run_demo(config: DemoConfig) -> None:
    settings = get_settings()
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"Beatlytica demo: {config.users} users, {config.days:g} simulated days from "
        f"{config.start:%Y-%m-%d}; state in {settings.home_dir}",
        flush=True,
    )
    reset_local_lake(settings)
    with local_kafka(settings) as bootstrap:
        print(f"[1/3] Kafka broker up on {bootstrap}, topics empty", flush=True)
        produced = generate_into_kafka(settings, config)
        print(f"[2/3] {sum(produced.values()):,} events produced to Kafka", flush=True)
        print("[3/3] Spark Structured Streaming, Kafka -> lake (availableNow)", flush=True)
        stream_to_lake(settings)
    counts = lake_counts(settings)
    print(f"\nLake {settings.lake}")
    print(f"  {'topic':<22} {'produced':>9} {'in lake':>9} {'quarantined':>11}")
    for topic in settings.topics:
        events, quarantined = counts[topic]
        print(f"  {topic:<22} {produced.get(topic, 0):>9,} {events:>9,} {quarantined:>11,}")
    print("\nNot built yet: " + "; ".join(NOT_BUILT_YET) + ".")
    missing = {t for t in settings.topics if counts[t][0] != produced.get(t, 0)}
    if missing:
        raise BeatlyticaError(f"the lake does not hold every produced event for {sorted(missing)}")
