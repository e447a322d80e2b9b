"""The local cluster's Kafka stand-in (k8s/local/kafka/operator.py), its rendering without a
cluster: the broker's listener from the Kafka CR, plain or TLS, and the TLS material it makes
(a cluster CA, the broker's certificate for the bootstrap Service's names). The cluster tier runs
it for real (tests/cluster/test_chart.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.helpers import ROOT


@pytest.fixture(scope="module")
def operator() -> ModuleType:
    path = ROOT / "k8s" / "local" / "kafka" / "operator.py"
    spec = importlib.util.spec_from_file_location("local_kafka_operator", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def kafka(tls: bool, listeners: int = 1) -> dict[str, Any]:
    listener = {
        "name": "scram",
        "port": 9092,
        "type": "internal",
        "tls": tls,
        "authentication": {"type": "scram-sha-512"},
    }
    extra = {"name": "plain", "port": 9095, "type": "internal", "tls": False}
    return {
        "metadata": {"name": "beatlytica"},
        "spec": {"kafka": {"listeners": [listener] + [extra] * (listeners - 1)}},
    }


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_a_plain_listener_is_sasl_plaintext_without_a_keystore(operator: ModuleType) -> None:
    props = properties(operator.server_properties(kafka(tls=False), "ns")[0])
    assert "SCRAM:SASL_PLAINTEXT" in props["listener.security.protocol.map"]
    assert not [k for k in props if "ssl" in k]


def test_a_tls_listener_is_sasl_ssl_with_the_mounted_pem_keystore(operator: ModuleType) -> None:
    text, port = operator.server_properties(kafka(tls=True), "ns")
    props = properties(text)
    assert port == 9092
    mapping = dict(p.split(":") for p in props["listener.security.protocol.map"].split(","))
    # only the client listener: the admin listener on the pod's address stays plain SASL
    assert mapping == {
        "SCRAM": "SASL_SSL",
        "ADMIN": "SASL_PLAINTEXT",
        "REPLICATION": "PLAINTEXT",
        "CONTROLLER": "PLAINTEXT",
    }
    assert props["listener.name.scram.ssl.keystore.type"] == "PEM"
    assert props["listener.name.scram.ssl.keystore.location"] == operator.KEYSTORE
    advertised = "SCRAM://beatlytica-kafka-bootstrap.ns.svc.cluster.local:9092"
    assert props["advertised.listeners"].startswith(advertised)


def test_more_than_one_listener_is_refused(operator: ModuleType) -> None:
    with pytest.raises(operator.OperatorError, match="exactly one SCRAM-SHA-512 listener"):
        operator.server_properties(kafka(tls=True, listeners=2), "ns")


def test_the_broker_certificate_is_the_cluster_cas_for_the_bootstrap_names(
    operator: ModuleType,
) -> None:
    key_pem, cert_pem = operator.new_cluster_ca("beatlytica")
    names = operator.bootstrap_names("beatlytica", "ns")
    assert names == [
        "beatlytica-kafka-bootstrap",
        "beatlytica-kafka-bootstrap.ns",
        "beatlytica-kafka-bootstrap.ns.svc",
        "beatlytica-kafka-bootstrap.ns.svc.cluster.local",
    ]
    keystore = operator.broker_keystore(key_pem, cert_pem, names)
    blocks = x509.load_pem_x509_certificates(keystore.encode())
    leaf, chained = blocks
    ca = x509.load_pem_x509_certificate(cert_pem.encode())
    assert chained == ca
    leaf.verify_directly_issued_by(ca)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == names
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = serialization.load_pem_private_key(keystore.encode(), password=None)
    assert key.public_key() == leaf.public_key()
    assert keystore.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, as Kafka's PEM wants


def test_a_broker_that_does_not_become_ready_is_explained(
    operator: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollout's timeout names what the pod is waiting for, not only that it timed out."""
    pod = {
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "message": "0/1 nodes: Insufficient cpu",
                }
            ],
            "containerStatuses": [{"name": "kafka", "state": {"waiting": {"reason": "Pending"}}}],
        }
    }
    answers = {
        "get pod": json.dumps(pod),
        "get pvc": "data-beatlytica-dual-0   Pending   local-path   5s",
        "get events": "LAST SEEN  TYPE  REASON\n5s  Warning  FailedScheduling  Insufficient cpu",
        "logs": "",
    }
    calls: list[tuple[str, ...]] = []

    def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
        calls.append(args)
        assert not check
        return answers[" ".join(args[:2]) if args[0] == "get" else args[0]]

    monkeypatch.setattr(operator, "kubectl", kubectl)
    view = operator.broker_view("beatlytica-dual-0", "ns")
    assert view.splitlines() == [
        "pod beatlytica-dual-0: Pending",
        "  PodScheduled: 0/1 nodes: Insufficient cpu",
        '  kafka: {"waiting": {"reason": "Pending"}}',
        "data-beatlytica-dual-0   Pending   local-path   5s",
        "LAST SEEN  TYPE  REASON",
        "5s  Warning  FailedScheduling  Insufficient cpu",
    ]
    assert ("logs", "beatlytica-dual-0", "-n", "ns", "--tail=30") in calls
