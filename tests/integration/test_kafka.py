"""The generator against a real Kafka 4.x broker (KRaft) started by beatlytica.kafka_local."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from beatlytica.events import TOPIC_NAMES, partition_key
from beatlytica.kafka_local import LocalKafka, free_port
from tests.conftest import JARS
from tests.helpers import run_cli

pytestmark = pytest.mark.integration

WINDOW = ("--users", "600", "--start", "2026-11-01T00:00:00", "--end", "2026-11-01T12:00:00")


def _consume_all(bootstrap: str, topics: tuple[str, ...]) -> list[Any]:
    """Every record of ``topics`` from the beginning to the current end offsets."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "test-roundtrip",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        partitions = [TopicPartition(t, p) for t in topics for p in metadata.topics[t].partitions]
        ends = {
            (tp.topic, tp.partition): consumer.get_watermark_offsets(tp)[1] for tp in partitions
        }
        consumer.assign([TopicPartition(t, p, 0) for t, p in ends])
        remaining = sum(ends.values())
        records = []
        while remaining > 0:
            batch = consumer.consume(10_000, timeout=10)
            assert batch, f"{remaining} records never arrived"
            for msg in batch:
                assert msg.error() is None, msg.error()
                records.append(msg)
            remaining -= len(batch)
        return records
    finally:
        consumer.close()


def test_round_trip_through_the_real_broker(kafka_broker: LocalKafka, tmp_path: Any) -> None:
    env = {"BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers}
    produced = run_cli("generate", "--sink", "kafka", *WINDOW, "--seed", "11", **env)
    assert produced.returncode == 0, produced.stderr
    # the same seed to files is the reference of what must be in Kafka
    assert (
        run_cli(
            "generate", "--sink", "files", "--out", str(tmp_path), *WINDOW, "--seed", "11"
        ).returncode
        == 0
    )
    expected = Counter(
        (t, line)
        for t in TOPIC_NAMES
        for line in (tmp_path / f"{t}.jsonl").read_text().split("\n")
        if line
    )
    assert len(expected) > 2000 and all(n == 1 for n in expected.values())

    records = _consume_all(kafka_broker.bootstrap_servers, TOPIC_NAMES)
    got = Counter((m.topic(), m.value().decode()) for m in records)
    assert got == expected  # exactly N, each once, on its own topic
    for m in records:
        assert m.key() == partition_key(json.loads(m.value()))
    # one user's events stay on one partition (ordering per user)
    partitions_per_user: dict[tuple[str, bytes], set[int]] = {}
    for m in records:
        partitions_per_user.setdefault((m.topic(), m.key()), set()).add(m.partition())
    assert all(len(p) == 1 for p in partitions_per_user.values())


def test_unreachable_broker_fails_fast_with_a_clear_error() -> None:
    port = free_port()
    result = run_cli(
        "generate",
        "--sink",
        "kafka",
        *WINDOW,
        timeout=60,
        BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}",
        BEATLYTICA_KAFKA_CONNECT_TIMEOUT_S="2",
    )
    assert result.returncode == 2
    assert f"Kafka at 127.0.0.1:{port} is unreachable after 2s" in result.stderr


def test_broker_restarts_keep_data_and_stop_by_pid(tmp_path: Any) -> None:
    broker = LocalKafka(tmp_path / "k", JARS / "kafka", free_port())
    broker.start({"listen_events": 2})
    try:
        pid = broker.pid()
        assert pid is not None
        result = run_cli(
            "generate",
            "--sink",
            "kafka",
            *WINDOW,
            BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
        )
        assert result.returncode == 2
        assert (
            f"topics missing on the broker at {broker.bootstrap_servers}: page_view_events, "
            "auth_events, status_change_events" in result.stderr
        )
        broker.start({"listen_events": 2, "auth_events": 1})  # already up: only adds topics
        assert broker.pid() == pid
        broker.stop()
        assert broker.pid() is None and not broker.pid_file.exists()
        broker.start({"listen_events": 2})  # formatted storage is reused
        from confluent_kafka.admin import AdminClient

        topics = (
            AdminClient({"bootstrap.servers": broker.bootstrap_servers})
            .list_topics(timeout=10)
            .topics
        )
        assert {"listen_events", "auth_events"} <= set(topics)
        assert len(topics["listen_events"].partitions) == 2
    finally:
        broker.stop()
    assert broker.stop() is False


def test_reset_topics_leaves_them_empty(kafka_broker: LocalKafka) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    kafka_broker.create_topics({"scratch": 2})
    for i in range(10):
        producer.produce("scratch", str(i))
    assert producer.flush(10) == 0
    assert len(_consume_all(kafka_broker.bootstrap_servers, ("scratch",))) == 10
    kafka_broker.reset_topics({"scratch": 2})
    assert _consume_all(kafka_broker.bootstrap_servers, ("scratch",)) == []
