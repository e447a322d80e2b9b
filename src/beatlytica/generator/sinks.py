"""Where generated events go: JSON-lines files per topic, or Kafka.

A sink takes ``(topic, key, json_line)`` and reports what it delivered; ``close`` flushes
and returns the final :class:`SinkReport`. Delivery failures are counted and surfaced, never
swallowed: every event written is either delivered or counted as failed once the sink is
closed, and the CLI exits non-zero when any event was not delivered.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from beatlytica.errors import BeatlyticaError

if TYPE_CHECKING:
    from confluent_kafka import KafkaError, Message

log = logging.getLogger(__name__)

#: how long the producer retries an event before counting it undelivered (librdkafka's
#: delivery.timeout.ms); BEATLYTICA_KAFKA_DELIVERY_TIMEOUT_S sets it for the CLI
DEFAULT_DELIVERY_TIMEOUT_S = 120.0
#: the flush on close outlasts the delivery timeout by this much: by then librdkafka has
#: delivered or failed every queued event, so none is left unaccounted
FLUSH_MARGIN_S = 5.0
#: events waiting this long for the broker's acknowledgement make the producer not ready
STALL_AFTER_S = 10.0
#: the produce loop is alive when it called the sink this recently
LIVE_WITHIN_S = 30.0
#: failures are logged once per (topic, error) as they first happen, then summed up this often
FAILURE_SUMMARY_EVERY_S = 30.0
#: how long a write waits for deliveries to free room in a full local queue before retrying
QUEUE_FULL_WAIT_S = 0.05
#: the flush on close serves deliveries (and logs) in steps of this length
FLUSH_STEP_S = 1.0


def flush_timeout_s(delivery_timeout_s: float) -> float:
    """How long :meth:`KafkaSink.close` flushes: the producer pod's terminationGracePeriodSeconds
    must exceed it, or the kubelet kills the flush (tests/unit/test_helm_charts.py)."""
    return delivery_timeout_s + FLUSH_MARGIN_S


@dataclass
class SinkReport:
    written: Counter[str] = field(default_factory=Counter)
    delivered: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    first_error: str | None = None

    @property
    def total_failed(self) -> int:
        return sum(self.failed.values())

    @property
    def total_written(self) -> int:
        return sum(self.written.values())


class Sink(Protocol):
    def write(self, topic: str, key: int, line: str) -> None: ...

    def wait(self, seconds: float) -> None: ...

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

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def close(self) -> SinkReport:
        for f in self._files.values():
            f.close()
        self.report.written = self.report.delivered.copy()
        return self.report


class KafkaSink:
    """An idempotent confluent-kafka producer (acks=all); key = userId or sessionId.

    Delivery reports are served after every write and while the runner waits between real-time
    events, so failures are counted and logged as they happen: one line for the first failure
    of each (topic, error), then a summary every :data:`FAILURE_SUMMARY_EVERY_S`. librdkafka
    retries every event until ``delivery_timeout_s``: a broker outage shorter than that loses
    nothing. :meth:`liveness` and :meth:`readiness` are the producer pod's probes
    (beatlytica.generator.health serves them).
    """

    def __init__(
        self,
        client_config: dict[str, str],
        topics: tuple[str, ...],
        connect_timeout_s: float,
        *,
        delivery_timeout_s: float = DEFAULT_DELIVERY_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from confluent_kafka import KafkaException, Producer

        self.report = SinkReport()
        self.delivery_timeout_s = delivery_timeout_s
        self._clock = clock
        self._fatal: str | None = None
        self._logged_client_errors: set[str] = set()  # error codes, once an outage
        self._client_error: str | None = None  # librdkafka's latest own error
        self._producer = Producer(
            {
                **client_config,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                "batch.size": 512 * 1024,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 500_000,
                # retries (idempotent: never duplicated) end after this; then the event fails
                "delivery.timeout.ms": round(delivery_timeout_s * 1000),
                # librdkafka logs a broker that is down every few seconds; we report it once
                "log_level": 2,
                "error_cb": self._on_client_error,
            }
        )
        self._servers = client_config["bootstrap.servers"]
        try:
            metadata = self._producer.list_topics(timeout=connect_timeout_s)
        except KafkaException as e:
            self._producer.poll(0)  # librdkafka's own errors say why (TLS, authentication)
            why = f"; the client's last error: {self._client_error}" if self._client_error else ""
            raise BeatlyticaError(
                f"Kafka at {self._servers} is unreachable after {connect_timeout_s:.0f}s "
                f"({e.args[0]}{why}); start it with `make kafka-up`, or check "
                "BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS and the security settings "
                "(BEATLYTICA_KAFKA_SECURITY_PROTOCOL, BEATLYTICA_KAFKA_CA_CERT, credentials)"
            ) from None
        missing = [t for t in topics if t not in metadata.topics]
        if missing:
            raise BeatlyticaError(
                f"topics missing on the broker at {self._servers}: {', '.join(missing)} "
                "(create them: `make kafka-up` locally, KafkaTopic resources in the cluster)"
            )
        now = clock()
        self._in_flight = 0  # written, no delivery report yet
        self._progress_at = now  # last acknowledgement, or when the wait for one began
        self._beat_at = now  # last call of the produce loop
        self._last_error: str | None = None  # the latest delivery report, when it failed
        self._stalled = False
        self._logged_failures: set[tuple[str, str]] = set()  # (topic, error code), once a run
        self._unsummed: Counter[str] = Counter()  # failures since the last summary, by topic
        self._unsummed_errors: Counter[str] = Counter()  # the same, by error code
        self._next_summary = now
        self._closed = False

    @property
    def flush_timeout_s(self) -> float:
        return flush_timeout_s(self.delivery_timeout_s)

    # --- the produce loop ----------------------------------------------------------------------

    def write(self, topic: str, key: int, line: str) -> None:
        from confluent_kafka import KafkaException

        if self._in_flight == 0:
            self._progress_at = self._clock()
        self.report.written[topic] += 1
        while True:
            try:
                self._producer.produce(topic, line, str(key), on_delivery=self._on_delivery)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(QUEUE_FULL_WAIT_S)
                self._tick()
            except KafkaException as e:  # refused outright: counted, never retried
                self._failed(topic, e.args[0])
                self._tick()
                self._stop_if_fatal()
                return
        self._in_flight += 1
        self._producer.poll(0)
        self._tick()
        self._stop_if_fatal()

    def wait(self, seconds: float) -> None:
        """Idle for up to ``seconds`` while serving delivery reports (real-time pacing)."""
        self._producer.poll(seconds)
        self._tick()
        self._stop_if_fatal()

    def close(self, timeout_s: float | None = None) -> SinkReport:
        """Flush for up to ``timeout_s`` (default :attr:`flush_timeout_s`); what is still queued
        then is purged and counted as failed, so written == delivered + failed per topic."""
        timeout_s = self.flush_timeout_s if timeout_s is None else timeout_s
        deadline = self._clock() + timeout_s
        if self._in_flight:
            log.info(
                "flushing",
                extra={"fields": {"waiting": self._in_flight, "timeout_s": timeout_s}},
            )
        while self._in_flight and (left := deadline - self._clock()) > 0:
            self._producer.flush(min(left, FLUSH_STEP_S))
            self._tick()
        if self._in_flight:
            self._producer.purge()  # their delivery reports fail with _PURGE_*: counted
            self._producer.flush(FLUSH_STEP_S)
        self._closed = True
        self._count_unreported(timeout_s)
        if self._unsummed:
            self._summarize_failures()
        return self.report

    # --- probes --------------------------------------------------------------------------------

    def liveness(self) -> str | None:
        """None while the produce loop runs, else why not."""
        idle = self._clock() - self._beat_at
        if idle > LIVE_WITHIN_S:
            return f"the produce loop has not run for {idle:.0f}s"
        return None

    def readiness(self) -> str | None:
        """None while the broker acknowledges deliveries, else why not."""
        if self._fatal:
            return f"the producer failed fatally: {self._fatal}"
        if self._last_error:
            return f"the last delivery failed: {self._last_error}"
        waited = self._clock() - self._progress_at
        if self._in_flight and waited > STALL_AFTER_S:
            return f"{self._in_flight} events unacknowledged for {waited:.0f}s by {self._servers}"
        return None

    # --- delivery reports ----------------------------------------------------------------------

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if self._closed:
            return
        self._in_flight -= 1
        topic = msg.topic() or "(unknown topic)"
        if err is None:
            self.report.delivered[topic] += 1
            self._progress_at = self._clock()
            self._last_error = None
            if self._stalled:
                self._recovered()
        else:
            self._failed(topic, err)

    def _on_client_error(self, err: KafkaError) -> None:
        """librdkafka's own errors (all brokers down, a fatal idempotence error): each code is
        logged once an outage; a fatal one stops the run."""
        if err.fatal():
            self._fatal = err.str()
        self._client_error = err.str()
        if err.name() not in self._logged_client_errors:
            self._logged_client_errors.add(err.name())
            log.log(
                logging.ERROR if err.fatal() else logging.WARNING,
                "Kafka producer error",
                extra={"fields": {"code": err.name(), "error": err.str(), "fatal": err.fatal()}},
            )

    def _failed(self, topic: str, err: KafkaError) -> None:
        self.report.failed[topic] += 1
        self._last_error = err.str()
        if self.report.first_error is None:
            self.report.first_error = f"{topic}: {err.str()}"
        if not self._unsummed:
            self._next_summary = self._clock() + FAILURE_SUMMARY_EVERY_S
        self._unsummed[topic] += 1
        self._unsummed_errors[err.name()] += 1
        if err.fatal():
            self._fatal = err.str()
        if (topic, err.name()) not in self._logged_failures:
            self._logged_failures.add((topic, err.name()))
            log.error(
                "delivery failed",
                extra={"fields": {"topic": topic, "code": err.name(), "error": err.str()}},
            )

    def _recovered(self) -> None:
        self._stalled = False
        self._logged_client_errors.clear()
        log.info(
            "Kafka acknowledges deliveries again",
            extra={"fields": {"bootstrap": self._servers, "failed": self.report.total_failed}},
        )

    # --- what the loop does on every call ------------------------------------------------------

    def _tick(self) -> None:
        """Heartbeat; log a stall and the failure summary when they are due."""
        now = self._beat_at = self._clock()
        waited = now - self._progress_at
        if self._in_flight and waited > STALL_AFTER_S and not self._stalled:
            self._stalled = True
            log.warning(
                "Kafka is not acknowledging deliveries; librdkafka keeps retrying",
                extra={
                    "fields": {
                        "bootstrap": self._servers,
                        "waiting": self._in_flight,
                        "waited_s": round(waited, 1),
                        "delivery_timeout_s": self.delivery_timeout_s,
                    }
                },
            )
        if self._unsummed and now >= self._next_summary:
            self._summarize_failures()

    def _stop_if_fatal(self) -> None:
        if self._fatal:
            raise BeatlyticaError(
                f"the Kafka producer failed fatally ({self._fatal}); "
                f"{self.report.total_failed} events were not delivered so far"
            )

    def _summarize_failures(self) -> None:
        """One line: the failures since the last summary, by topic and error."""
        fields: dict[str, object] = {f"failed.{t}": n for t, n in sorted(self._unsummed.items())}
        fields["errors"] = ",".join(sorted(self._unsummed_errors))
        fields["failed_total"] = self.report.total_failed
        fields["waiting"] = self._in_flight
        log.error("deliveries failing", extra={"fields": fields})
        self._unsummed.clear()
        self._unsummed_errors.clear()

    def _count_unreported(self, timeout_s: float) -> None:
        """Events without a delivery report after the flush and the purge count as failed."""
        r = self.report
        for topic, written in r.written.items():
            missing = written - r.delivered[topic] - r.failed[topic]
            if missing > 0:
                r.failed[topic] += missing
                self._unsummed[topic] += missing
                self._unsummed_errors["_UNREPORTED"] += missing
                r.first_error = r.first_error or (
                    f"{missing} {topic} events still queued after a {timeout_s:.0f}s flush"
                )


SINKS = ("files", "kafka")
