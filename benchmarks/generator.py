"""Generator throughput: events per second to JSON-lines files and to the local Kafka broker.

    .venv/bin/python -m benchmarks.generator [--users 20000] [--days 2]

Prints one line per sink. Target (docs/benchmarks.md): at least 100,000 events/s to files
on one core. The Kafka figure includes the broker's acks=all round trips on the same machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from beatlytica.events import TOPIC_NAMES
from beatlytica.generator.runner import run
from beatlytica.generator.simulation import Simulation, SimulationConfig
from beatlytica.generator.sinks import FileSink, KafkaSink
from beatlytica.kafka_local import LocalKafka, free_port

ROOT = Path(__file__).resolve().parents[1]


def _report(label: str, events: int, seconds: float) -> None:
    print(f"{label:<8} {events:>10,} events {seconds:>7.2f} s {events / seconds:>10,.0f} events/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--skip-kafka", action="store_true")
    args = parser.parse_args()
    start = datetime(2026, 11, 1, tzinfo=UTC)
    config = SimulationConfig(args.users, start, start + timedelta(days=args.days), seed=1)

    with tempfile.TemporaryDirectory() as tmp:
        simulation = Simulation(config)  # set-up (catalogue, population) is not timed
        started = time.perf_counter()
        result = run(simulation, FileSink(Path(tmp), TOPIC_NAMES), TOPIC_NAMES, progress=False)
        _report("files", result.events, time.perf_counter() - started)

        if args.skip_kafka:
            return
        broker = LocalKafka(Path(tmp) / "kafka", ROOT / ".cache/jars/kafka", free_port())
        broker.start({t: 3 for t in TOPIC_NAMES})
        try:
            simulation = Simulation(config)
            sink = KafkaSink({"bootstrap.servers": broker.bootstrap_servers}, TOPIC_NAMES, 15)
            started = time.perf_counter()
            result = run(simulation, sink, TOPIC_NAMES, progress=False)
            assert not result.report.total_failed, result.report
            _report("kafka", result.events, time.perf_counter() - started)
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
