"""The real-time producer through a real broker outage: the local Kafka broker is stopped for
15 seconds while `beatlytica generate --realtime --sink kafka` runs, then started again on the
same port and data. Every event then is in its topic exactly once, or counted undelivered with a
non-zero exit; none is ever silently missing. The outage shows as it happens: in /readyz and in
the log, before the broker is back."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from beatlytica.events import TOPIC_NAMES
from beatlytica.kafka_local import LocalKafka, free_port
from tests.helpers import BEATLYTICA, cli_env, run_cli
from tests.integration.test_kafka import _consume_all

pytestmark = pytest.mark.integration

#: two simulated evening hours of 1000 users (about 1,400 events) in 30 real seconds
SIMULATION = (
    "--users",
    "1000",
    "--start",
    "2026-11-01T18:00:00",
    "--end",
    "2026-11-01T20:00:00",
    "--seed",
    "3",
)
SPEED = "240"
OUTAGE_S = 15.0
TOPICS = {t: 3 for t in TOPIC_NAMES}


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> Counter[tuple[str, str]]:
    """The same simulation into files: what the topics must hold, each event once."""
    out = tmp_path_factory.mktemp("expected")
    result = run_cli("generate", "--sink", "files", "--out", str(out), *SIMULATION)
    assert result.returncode == 0, result.stderr
    events = Counter(
        (t, line) for t in TOPIC_NAMES for line in (out / f"{t}.jsonl").read_text().splitlines()
    )
    assert sum(events.values()) > 1000 and set(events.values()) == {1}
    return events


@dataclass
class Outage:
    """What a producer run through an outage showed."""

    returncode: int
    logs: list[dict[str, Any]]
    errors: list[str]
    restarted_at: datetime
    readiness: list[tuple[int, str]] = field(default_factory=list)

    def lines(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self.logs if line.get("message") == message]

    def before_restart(self, message: str) -> bool:
        return any(
            datetime.fromisoformat(line["time"]) < self.restarted_at for line in self.lines(message)
        )


def _probe(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, ""
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()).get("reason", "")
    except OSError as e:
        return 0, str(e)


def produce_through_an_outage(
    broker: LocalKafka, tmp_path: Path, delivery_timeout_s: int
) -> Outage:
    """Run the real-time producer; 3 s in, stop the broker for OUTAGE_S, then start it again."""
    broker.reset_topics(TOPICS)
    port = free_port()
    ready = f"http://127.0.0.1:{port}/readyz"
    stderr = tmp_path / "generate.log"
    with stderr.open("w") as err:
        process = subprocess.Popen(
            [
                str(BEATLYTICA),
                "generate",
                "--sink",
                "kafka",
                *SIMULATION,
                "--realtime",
                "--speed",
                SPEED,
                "--health-port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=cli_env(
                BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
                BEATLYTICA_KAFKA_DELIVERY_TIMEOUT_S=str(delivery_timeout_s),
            ),
        )
        try:
            deadline = time.monotonic() + 30
            while _probe(ready)[0] != 200:
                assert process.poll() is None, stderr.read_text()
                assert time.monotonic() < deadline, "the producer never became ready"
                time.sleep(0.2)
            time.sleep(3)
            readiness = []
            assert broker.stop()
            back_at = time.monotonic() + OUTAGE_S
            while time.monotonic() < back_at:
                readiness.append(_probe(ready))
                time.sleep(0.5)
            restarted_at = datetime.now(UTC)
            broker.start(TOPICS)
            returncode = process.wait(timeout=delivery_timeout_s + 120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = stderr.read_text().splitlines()
    logs = [json.loads(line) for line in text if line.startswith("{")]
    errors = [line for line in text if line.startswith("beatlytica generate: error:")]
    return Outage(returncode, logs, errors, restarted_at, readiness)


def topic_contents(broker: LocalKafka) -> Counter[tuple[str, str]]:
    return Counter(
        (m.topic(), m.value().decode()) for m in _consume_all(broker.bootstrap_servers, TOPIC_NAMES)
    )


def test_an_outage_shorter_than_the_delivery_timeout_loses_nothing(
    kafka_broker: LocalKafka, tmp_path: Path, expected: Counter[tuple[str, str]]
) -> None:
    outage = produce_through_an_outage(kafka_broker, tmp_path, delivery_timeout_s=90)
    assert outage.returncode == 0, outage.errors
    (summary,) = outage.lines("generated")
    assert summary["undelivered"] == 0 and summary["events"] == sum(expected.values())
    # every event exactly once: the idempotent producer's retries wrote no duplicate
    assert topic_contents(kafka_broker) == expected
    # the outage was visible while it lasted, and its end too
    assert outage.before_restart("Kafka is not acknowledging deliveries; librdkafka keeps retrying")
    assert outage.lines("Kafka acknowledges deliveries again")
    unready = [reason for status, reason in outage.readiness if status == 503]
    assert unready and all("unacknowledged" in reason for reason in unready), outage.readiness
    assert not outage.lines("delivery failed")


def test_an_outage_longer_than_the_delivery_timeout_is_counted_not_lost(
    kafka_broker: LocalKafka, tmp_path: Path, expected: Counter[tuple[str, str]]
) -> None:
    outage = produce_through_an_outage(kafka_broker, tmp_path, delivery_timeout_s=4)
    assert outage.returncode == 2
    (summary,) = outage.lines("generated")
    undelivered = summary["undelivered"]
    assert undelivered > 0 and summary["events"] == sum(expected.values())
    (error,) = outage.errors
    assert f"{undelivered} of {summary['events']} events were not delivered" in error
    got = topic_contents(kafka_broker)
    assert set(got.values()) == {1} and not got - expected, "duplicates or foreign events"
    missing = sum((expected - got).values())
    # never silently missing: each missing event is counted (an event whose acknowledgement the
    # outage cut off may be in its topic and still counted: the report errs towards "not sent")
    assert 0 < missing <= undelivered
    assert sum(summary.get(f"delivered.{t}", 0) for t in TOPIC_NAMES) == sum(got.values())
    # failures were logged as they happened, once per topic and error, not once per event
    failed = outage.lines("delivery failed")
    assert outage.before_restart("delivery failed")
    assert len(failed) == len({(f["topic"], f["code"]) for f in failed}) <= 2 * len(TOPIC_NAMES)
    assert any(reason.startswith("the last delivery failed") for _, reason in outage.readiness)
