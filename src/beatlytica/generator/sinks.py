"""Where generated events go: JSON-lines files per topic, or Kafka.

A sink takes ``(topic, key, json_line)`` and reports what it delivered; ``close`` flushes
and returns the final :class:`SinkReport`. Delivery failures are counted and surfaced, never
swallowed: the CLI exits non-zero when any event was not delivered.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from beatlytica.errors import BeatlyticaError

log = logging.getLogger(__name__)


@dataclass
class SinkReport:
    delivered: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    first_error: str | None = None

    @property
    def total_failed(self) -> int:
        return sum(self.failed.values())


class Sink(Protocol):
    def write(self, topic: str, key: int, line: str) -> None: ...

    def close(self) -> SinkReport: ...


class FileSink:
    """``<out>/<topic>.jsonl`` per topic, truncated at open: a rerun replaces, never appends."""

    def __init__(self, out: Path, topics: tuple[str, ...]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.report = SinkReport()
        self._files: dict[str, IO[str]] = {
            t: (out / f"{t}.jsonl").open("w", encoding="utf-8", buffering=1 << 20) for t in topics
        }

    def write(self, topic: str, key: int, line: str) -> None:
        self._files[topic].write(line + "\n")
        self.report.delivered[topic] += 1

    def close(self) -> SinkReport:
        for f in self._files.values():
            f.close()
        return self.report


class KafkaSink:
    """An idempotent confluent-kafka producer (acks=all); key = userId or sessionId."""

    def __init__(
        self, client_config: dict[str, str], topics: tuple[str, ...], connect_timeout_s: float
    ) -> None:
        from confluent_kafka import KafkaException, Producer

        self.report = SinkReport()
        self._producer = Producer(
            {
                **client_config,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                "batch.size": 512 * 1024,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 500_000,
                # librdkafka logs a broker that is down every few seconds; we report it once
                "log_level": 2,
            }
        )
        servers = client_config["bootstrap.servers"]
        try:
            metadata = self._producer.list_topics(timeout=connect_timeout_s)
        except KafkaException as e:
            raise BeatlyticaError(
                f"Kafka at {servers} is unreachable after {connect_timeout_s:.0f}s ({e.args[0]}); "
                "start it with `make kafka-up` or set BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS"
            ) from None
        missing = [t for t in topics if t not in metadata.topics]
        if missing:
            raise BeatlyticaError(
                f"topics missing on the broker at {servers}: {', '.join(missing)} "
                "(create them: `make kafka-up` locally, KafkaTopic resources in the cluster)"
            )
        self._pending = 0

    def _delivered(self, err: object, msg: object) -> None:
        topic = msg.topic()  # type: ignore[attr-defined]
        if err is None:
            self.report.delivered[topic] += 1
        else:
            self.report.failed[topic] += 1
            if self.report.first_error is None:
                self.report.first_error = str(err)
                log.error("delivery failed", extra={"fields": {"topic": topic, "error": str(err)}})

    def write(self, topic: str, key: int, line: str) -> None:
        while True:
            try:
                self._producer.produce(topic, line, str(key), on_delivery=self._delivered)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.05)
        self._pending += 1
        if self._pending >= 10_000:
            self._producer.poll(0)
            self._pending = 0

    def close(self, timeout_s: float = 60.0) -> SinkReport:
        remaining = self._producer.flush(timeout_s)
        if remaining:
            self.report.failed["(undelivered at flush)"] += remaining
            self.report.first_error = self.report.first_error or (
                f"{remaining} events still queued after a {timeout_s:.0f}s flush"
            )
        return self.report


SINKS = ("files", "kafka")
