"""Kafka over TLS, as on GKE (Strimzi's listener with `tls: true`, clients trusting its cluster
CA): the real broker serving a TLS listener with a certificate from a CA made here, the
generator's producer and the Spark job reading through it with BEATLYTICA_KAFKA_CA_CERT, and a
client that trusts another CA refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from beatlytica.events import TOPIC_NAMES
from beatlytica.kafka_local import LocalKafka, TlsListener, free_port
from beatlytica.lake import committed_files, raw_table_uri
from tests.certificates import certificate, certificate_authority, pem
from tests.conftest import JARS
from tests.helpers import run_cli

pytestmark = pytest.mark.integration

WINDOW = ("--start", "2026-11-01T00:00:00", "--end", "2026-11-01T03:00:00")


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalKafka, str]]:
    """The broker with a TLS listener whose certificate the cluster CA signed; and that CA's
    certificate (PEM), what clients must trust."""
    folder = tmp_path_factory.mktemp("kafka-tls")
    ca_key, ca = certificate_authority("beatlytica-test-cluster-ca")
    key = ec.generate_private_key(ec.SECP256R1())
    signed = certificate("beatlytica-kafka", key, "beatlytica-test-cluster-ca", ca_key, False)
    keystore = folder / "broker.pem"
    keystore.write_text(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        + pem(signed)
    )
    broker = LocalKafka(
        folder / "kafka", JARS / "kafka", free_port(), tls=TlsListener(free_port(), keystore)
    )
    broker.start({t: 2 for t in TOPIC_NAMES})
    try:
        yield broker, pem(ca)
    finally:
        broker.stop()


def tls_env(broker: LocalKafka, ca: str, home: Path, **extra: str) -> dict[str, str]:
    assert broker.tls is not None
    return {
        "BEATLYTICA_HOME": str(home),
        "BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{broker.tls.port}",
        "BEATLYTICA_KAFKA_SECURITY_PROTOCOL": "SSL",
        "BEATLYTICA_KAFKA_CA_CERT": ca,
        **extra,
    }


def delivered(stderr: str) -> dict[str, int]:
    summary = json.loads(next(line for line in stderr.splitlines() if '"generated"' in line))
    return {t: summary.get(f"delivered.{t}", 0) for t in TOPIC_NAMES}


def test_events_cross_the_tls_listener_into_the_lake(
    tls_broker: tuple[LocalKafka, str], tmp_path: Path
) -> None:
    broker, ca = tls_broker
    env = tls_env(broker, ca, tmp_path / "home")
    generated = run_cli("generate", "--sink", "kafka", "--users", "60", *WINDOW, **env)
    assert generated.returncode == 0, generated.stderr[-3000:]
    counts = delivered(generated.stderr)
    assert counts["listen_events"] > 0

    streamed = run_cli("stream", timeout=600, **env)
    assert streamed.returncode == 0, streamed.stderr[-3000:]
    lake = (tmp_path / "home" / "lake").as_uri()
    for topic in TOPIC_NAMES:
        files = [f.removeprefix("file://") for f in committed_files(raw_table_uri(lake, topic))]
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        assert rows == counts[topic], topic


def test_a_client_that_trusts_another_ca_is_refused(
    tls_broker: tuple[LocalKafka, str], tmp_path: Path
) -> None:
    broker, _ = tls_broker
    _, stranger = certificate_authority("someone-else")
    env = tls_env(
        broker,
        pem(stranger),
        tmp_path / "home",
        BEATLYTICA_KAFKA_CONNECT_TIMEOUT_S="10",
        BEATLYTICA_KAFKA_DELIVERY_TIMEOUT_S="10",
    )
    result = run_cli("generate", "--sink", "kafka", "--users", "5", *WINDOW, **env)
    assert result.returncode != 0
    assert "certificate verify failed" in result.stderr, result.stderr[-3000:]
