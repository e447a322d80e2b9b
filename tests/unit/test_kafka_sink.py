"""KafkaSink's accounting, failure logs and probes, with librdkafka replaced by a fake whose broker
the test switches up, down or failing, and a fake clock; the runner's real-time pauses; the
probes' HTTP endpoints. The real broker's outages are tests/integration/test_kafka_outage.py."""

from __future__ import annotations

import inspect
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from beatlytica.errors import BeatlyticaError
from beatlytica.events import TOPIC_NAMES
from beatlytica.generator import sinks
from beatlytica.generator.health import serve_health
from beatlytica.generator.runner import run
from beatlytica.generator.simulation import Simulation, SimulationConfig
from beatlytica.generator.sinks import KafkaSink, SinkReport
from beatlytica.settings import Settings

TIMED_OUT = KafkaError(KafkaError._MSG_TIMED_OUT)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeProducer:
    """What KafkaSink uses of confluent_kafka.Producer. Delivery reports are served only by poll,
    flush and purge, as librdkafka does; ``broker`` decides them: "up" acknowledges what is
    queued, "down" holds it, a KafkaError fails it."""

    config: dict[str, Any]
    broker: str | KafkaError = "up"
    queue: list[tuple[str, Callable[..., None]]] = field(default_factory=list)
    refuse: KafkaError | None = None
    polls: int = 0

    def list_topics(self, timeout: float) -> Any:
        return SimpleNamespace(topics=dict.fromkeys(TOPIC_NAMES))

    def produce(self, topic: str, value: str, key: str, on_delivery: Callable[..., None]) -> None:
        if self.refuse is not None:
            raise KafkaException(self.refuse)
        self.queue.append((topic, on_delivery))

    def poll(self, timeout: float = 0) -> int:
        self.polls += 1
        if isinstance(self.broker, KafkaError):  # (a KafkaError cannot be compared to a str)
            return self._serve(self.broker)
        return self._serve(None) if self.broker == "up" else 0

    def flush(self, timeout: float = 0) -> int:
        self.poll(timeout)
        return len(self.queue)

    def purge(self) -> None:
        self._serve(KafkaError(KafkaError._PURGE_QUEUE))

    def _serve(self, error: KafkaError | None) -> int:
        served, self.queue = self.queue, []
        for topic, callback in served:
            callback(error, SimpleNamespace(topic=lambda t=topic: t))
        return len(served)


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="beatlytica")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def producers(monkeypatch: pytest.MonkeyPatch) -> list[FakeProducer]:
    made: list[FakeProducer] = []

    def factory(config: dict[str, Any]) -> FakeProducer:
        made.append(FakeProducer(config))
        return made[-1]

    monkeypatch.setattr("confluent_kafka.Producer", factory)
    return made


def make_sink(clock: FakeClock | None = None, **kwargs: Any) -> KafkaSink:
    if clock is not None:
        kwargs["clock"] = clock
    return KafkaSink({"bootstrap.servers": "fake:9092"}, TOPIC_NAMES, 1, **kwargs)


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == text]


def assert_accounted(report: SinkReport) -> None:
    for topic, written in report.written.items():
        assert report.delivered[topic] + report.failed[topic] == written, topic


# --- accounting ---------------------------------------------------------------------------------


def test_failures_are_counted_and_logged_as_they_happen(
    producers: list[FakeProducer], caplog: pytest.LogCaptureFixture
) -> None:
    sink = make_sink()
    (producer,) = producers
    producer.broker = TIMED_OUT
    for n in range(1, 6):
        sink.write("listen_events", n, "{}")
        assert sink.report.failed["listen_events"] == n  # at once, not at the 10,000th event
    sink.write("auth_events", 9, "{}")
    assert sink.report.failed == {"listen_events": 5, "auth_events": 1}
    assert sink.report.first_error == "listen_events: Local: Message timed out"
    # one line per (topic, error), not one per event
    failed = messages(caplog, "delivery failed")
    assert [(r.fields["topic"], r.fields["code"]) for r in failed] == [  # type: ignore[attr-defined]
        ("listen_events", "_MSG_TIMED_OUT"),
        ("auth_events", "_MSG_TIMED_OUT"),
    ]
    assert all(r.levelno == logging.ERROR for r in failed)


def test_every_event_is_delivered_or_counted_undelivered(producers: list[FakeProducer]) -> None:
    sink = make_sink()
    (producer,) = producers
    for n in range(4):
        sink.write("listen_events", n, "{}")
    producer.broker = "down"
    for n in range(3):
        sink.write("page_view_events", n, "{}")
    sink.write("listen_events", 7, "{}")
    producer.broker = TIMED_OUT
    sink.write("auth_events", 1, "{}")  # its poll fails the held ones too
    producer.broker = "down"
    sink.write("status_change_events", 1, "{}")  # still queued when the flush gives up
    report = sink.close(timeout_s=0)
    assert report.written == {
        "listen_events": 5,
        "page_view_events": 3,
        "auth_events": 1,
        "status_change_events": 1,
    }
    assert report.delivered == {"listen_events": 4}
    assert report.failed == {
        "listen_events": 1,
        "page_view_events": 3,
        "auth_events": 1,
        "status_change_events": 1,
    }
    assert_accounted(report)
    assert report.total_written == report.total_failed + sum(report.delivered.values())


def test_a_refused_event_is_counted_and_the_run_goes_on(
    producers: list[FakeProducer], clock: FakeClock
) -> None:
    sink = make_sink(clock)
    (producer,) = producers
    producer.refuse = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)
    sink.write("listen_events", 1, "{}")
    producer.refuse = None
    sink.write("listen_events", 2, "{}")
    report = sink.close()
    assert report.written == {"listen_events": 2}
    assert report.delivered == {"listen_events": 1} and report.failed == {"listen_events": 1}


def test_a_fatal_producer_error_stops_the_run_with_everything_counted(
    producers: list[FakeProducer], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sink = make_sink(clock)
    (producer,) = producers
    producer.broker = "down"
    sink.write("listen_events", 1, "{}")
    fatal = KafkaError(KafkaError._FATAL, "idempotence broken", fatal=True)
    producer.config["error_cb"](fatal)  # librdkafka reports it through the error callback
    assert sink.readiness() == "the producer failed fatally: idempotence broken"
    with pytest.raises(BeatlyticaError, match=r"failed fatally \(idempotence broken\)"):
        sink.write("listen_events", 2, "{}")
    producer.broker = fatal
    assert_accounted(sink.close())
    assert sink.report.failed == {"listen_events": 2}
    assert len(messages(caplog, "Kafka producer error")) == 1


def test_failures_are_summed_up_periodically(
    producers: list[FakeProducer], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sink = make_sink(clock)
    (producer,) = producers
    producer.broker = TIMED_OUT
    for n in range(50):
        sink.write("listen_events", n, "{}")
        clock.advance(0.1)
    assert not messages(caplog, "deliveries failing")  # 5 s in: only the first line so far
    clock.advance(sinks.FAILURE_SUMMARY_EVERY_S)
    sink.wait(0.2)  # the summary is due while the run idles, too
    (summary,) = messages(caplog, "deliveries failing")
    fields = summary.fields  # type: ignore[attr-defined]
    assert fields["failed.listen_events"] == fields["failed_total"] == 50
    assert fields["errors"] == "_MSG_TIMED_OUT"
    sink.wait(0.2)
    assert len(messages(caplog, "deliveries failing")) == 1  # nothing new, nothing logged
    assert len(messages(caplog, "delivery failed")) == 1


def test_the_delivery_timeout_is_librdkafkas_and_the_flush_outlasts_it(
    producers: list[FakeProducer], clock: FakeClock
) -> None:
    sink = make_sink(clock, delivery_timeout_s=42.5)
    assert producers[0].config["delivery.timeout.ms"] == 42_500
    assert producers[0].config["enable.idempotence"] is True
    assert sink.flush_timeout_s == sinks.flush_timeout_s(42.5) > 42.5
    # the library default is the setting's default, so the CLI, the demo and the benchmarks agree
    default = inspect.signature(KafkaSink).parameters["delivery_timeout_s"].default
    assert default == Settings.model_fields["kafka_delivery_timeout_s"].default


def test_close_flushes_until_the_broker_answers(
    producers: list[FakeProducer], clock: FakeClock
) -> None:
    sink = make_sink(clock)
    (producer,) = producers
    producer.broker = "down"
    sink.write("listen_events", 1, "{}")
    flushes = 0

    def flush(timeout: float = 0) -> int:  # the broker comes back after 3 flush steps
        nonlocal flushes
        flushes += 1
        clock.advance(timeout)
        if flushes == 3:
            producer.broker = "up"
        return FakeProducer.flush(producer, timeout)

    producer.flush = flush  # type: ignore[method-assign]
    report = sink.close()
    assert flushes == 3 and report.delivered == {"listen_events": 1} and not report.failed


# --- probes -------------------------------------------------------------------------------------


def test_an_outage_makes_the_producer_unready_once_and_ready_again(
    producers: list[FakeProducer], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sink = make_sink(clock)
    (producer,) = producers
    sink.write("listen_events", 1, "{}")
    assert sink.readiness() is None and sink.liveness() is None
    producer.broker = "down"
    clock.advance(60)  # a quiet minute: nothing waiting is no stall
    sink.write("listen_events", 2, "{}")
    assert sink.readiness() is None
    for _ in range(30):
        clock.advance(1)
        sink.wait(0.2)
    assert sink.readiness() == "1 events unacknowledged for 30s by fake:9092"
    assert sink.liveness() is None  # the loop runs: waiting for the broker is no reason to restart
    (stall,) = messages(caplog, "Kafka is not acknowledging deliveries; librdkafka keeps retrying")
    assert stall.fields["waiting"] == 1  # type: ignore[attr-defined]
    producer.broker = "up"
    sink.wait(0.2)
    assert sink.readiness() is None
    assert len(messages(caplog, "Kafka acknowledges deliveries again")) == 1
    assert sink.close().delivered == {"listen_events": 2}


def test_a_failed_delivery_makes_the_producer_unready_until_one_succeeds(
    producers: list[FakeProducer], clock: FakeClock
) -> None:
    sink = make_sink(clock)
    (producer,) = producers
    producer.broker = TIMED_OUT
    sink.write("listen_events", 1, "{}")
    assert sink.readiness() == "the last delivery failed: Local: Message timed out"
    producer.broker = "up"
    sink.write("listen_events", 2, "{}")
    assert sink.readiness() is None


def test_liveness_fails_when_the_loop_stops_calling(
    producers: list[FakeProducer], clock: FakeClock
) -> None:
    sink = make_sink(clock)
    clock.advance(sinks.LIVE_WITHIN_S + 1)
    assert sink.liveness() == "the produce loop has not run for 31s"
    sink.wait(0.2)
    assert sink.liveness() is None


@dataclass
class Stub:
    live: str | None = None
    ready: str | None = None

    def liveness(self) -> str | None:
        return self.live

    def readiness(self) -> str | None:
        return self.ready


@pytest.fixture
def health() -> Iterator[tuple[Stub, str]]:
    stub = Stub()
    server = serve_health(stub, 0, "127.0.0.1")
    try:
        yield stub, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_health_endpoints_answer_the_probes(health: tuple[Stub, str]) -> None:
    stub, url = health
    assert get(f"{url}/healthz") == (200, {"status": "ok"})
    assert get(f"{url}/readyz") == (200, {"status": "ok"})
    stub.ready = "3 events unacknowledged for 12s by kafka:9092"
    assert get(f"{url}/readyz") == (503, {"status": "failing", "reason": stub.ready})
    assert get(f"{url}/healthz")[0] == 200
    stub.live = "the produce loop has not run for 40s"
    assert get(f"{url}/healthz") == (503, {"status": "failing", "reason": stub.live})
    assert get(f"{url}/metrics")[0] == 404


def test_a_taken_health_port_is_one_clear_error(health: tuple[Stub, str]) -> None:
    port = int(health[1].rpartition(":")[2])
    with pytest.raises(
        BeatlyticaError, match=f"cannot serve the health endpoints on 127.0.0.1:{port}"
    ):
        serve_health(Stub(), port, "127.0.0.1")


# --- the runner ---------------------------------------------------------------------------------


@dataclass
class RecordingSink:
    """A sink that records the runner's calls."""

    calls: list[str] = field(default_factory=list)
    report: SinkReport = field(default_factory=SinkReport)

    def write(self, topic: str, key: int, line: str) -> None:
        self.calls.append("write")
        self.report.delivered[topic] += 1

    def wait(self, seconds: float) -> None:
        assert 0 < seconds <= 0.2
        self.calls.append("wait")
        threading.Event().wait(seconds)

    def close(self) -> SinkReport:
        self.calls.append("close")
        return self.report


def test_realtime_pauses_are_the_sinks_waits() -> None:
    start = datetime(2026, 11, 1, 18, tzinfo=UTC)
    config = SimulationConfig(users=200, start=start, end=start + timedelta(hours=1), seed=3)
    sink = RecordingSink()
    result = run(Simulation(config), sink, TOPIC_NAMES, realtime=True, speed=3600, progress=False)
    assert sink.calls.count("write") == result.events > 0
    assert sink.calls.count("wait") > 0, "the Kafka sink must serve its reports between events"
    assert sink.calls[-1] == "close"


def test_a_stop_during_a_pause_is_seen_within_one_wait() -> None:
    start = datetime(2026, 11, 1, 18, tzinfo=UTC)
    config = SimulationConfig(users=50, start=start, end=start + timedelta(hours=6), seed=3)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    sink = RecordingSink()
    result = run(
        Simulation(config), sink, TOPIC_NAMES, realtime=True, speed=60, stop=stop, progress=False
    )
    assert result.stopped_early and result.seconds < 2


def test_events_without_a_delivery_report_count_as_failed(
    producers: list[FakeProducer], clock: FakeClock
) -> None:
    sink = make_sink(clock)
    (producer,) = producers
    producer.broker = "down"
    producer.purge = lambda: None  # type: ignore[method-assign]  # nothing reported, ever
    for n in range(3):
        sink.write("listen_events", n, "{}")
    report = sink.close(timeout_s=0)
    assert report.failed == {"listen_events": 3} and not report.delivered
    assert report.first_error == "3 listen_events events still queued after a 0s flush"


def test_health_port_is_for_the_kafka_producer_only(tmp_path: Any) -> None:
    from tests.helpers import run_cli

    result = run_cli(
        "generate",
        "--sink",
        "files",
        "--out",
        str(tmp_path),
        "--health-port",
        "0",
        "--start",
        "2026-11-01T00:00:00",
        "--end",
        "2026-11-01T01:00:00",
    )
    assert result.returncode == 2
    assert "--health-port probes the Kafka producer: it needs --sink kafka" in result.stderr
