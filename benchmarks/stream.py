"""Streaming job throughput: events per second from the local broker to the lake on local[2].

    .venv/bin/python -m benchmarks.stream [--users 60000] [--days 2]

Produces the simulated window into a fresh local broker, then times one availableNow run of
the job (all four topics, raw and quarantine queries) into a temporary lake and prints the
events read per second of wall time, Spark start-up included.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from beatlytica.events import TOPIC_NAMES
from beatlytica.generator.runner import run as generate
from beatlytica.generator.simulation import Simulation, SimulationConfig
from beatlytica.generator.sinks import KafkaSink
from beatlytica.kafka_local import LocalKafka, free_port
from beatlytica.lake import committed_files, raw_table_uri
from beatlytica.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=60_000)
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    start = datetime(2026, 11, 1, tzinfo=UTC)
    config = SimulationConfig(args.users, start, start + timedelta(days=args.days), seed=1)

    with tempfile.TemporaryDirectory() as tmp:
        broker = LocalKafka(Path(tmp) / "kafka", ROOT / ".cache/jars/kafka", free_port())
        broker.start({t: 3 for t in TOPIC_NAMES})
        try:
            sink = KafkaSink({"bootstrap.servers": broker.bootstrap_servers}, TOPIC_NAMES, 15)
            produced = generate(Simulation(config), sink, TOPIC_NAMES, progress=False)
            print(f"produced {produced.events:,} events in {produced.seconds:.1f} s")

            os.environ["BEATLYTICA_LOG_LEVEL"] = "WARNING"
            settings = Settings(
                home=Path(tmp) / "home",
                kafka_bootstrap_servers=broker.bootstrap_servers,
                jars_dir=ROOT / ".cache/jars",
            )
            from spark_jobs.stream_events import run as stream

            started = time.perf_counter()
            assert stream(settings, args.master) == 0
            seconds = time.perf_counter() - started
            files = sum(len(committed_files(raw_table_uri(settings.lake, t))) for t in TOPIC_NAMES)
            print(
                f"stream   {produced.events:>10,} events {seconds:>7.1f} s "
                f"{produced.events / seconds:>9,.0f} events/s ({args.master}, {files} files)"
            )
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
