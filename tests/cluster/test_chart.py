"""charts/beatlytica installed on the local cluster (k8s/local/deploy.sh): every workload of the
release Ready, its claims bound, Kafka's custom resources served by a real broker, and events
from every producer replica in every topic, read back over SCRAM as the streaming job's user."""

from __future__ import annotations

import json
import os
import urllib.request

from tests.certificates import certificate_authority, pem
from tests.cluster.conftest import JOBS_NAMESPACE, NAMESPACE, RELEASE
from tests.cluster.pipeline import kafka_ca_env
from tests.kube import get_json, kubectl, ok, port_forward, run_pod, wait_for

TAG = os.environ.get("BEATLYTICA_IMAGE_TAG", "")
INSTANCE_ID_BLOCK = 1 << 32  # beatlytica.generator.simulation: ids of replica k are in block k


def settings() -> dict[str, str]:
    return get_json("configmap", "beatlytica-settings", namespace=NAMESPACE)["data"]


def workloads(namespace: str) -> list[dict[str, object]]:
    selector = f"app.kubernetes.io/instance={RELEASE}"
    return get_json("deploy,statefulset", "-l", selector, namespace=namespace)["items"]


def test_every_workload_of_the_release_is_ready() -> None:
    names = set()
    for namespace in (NAMESPACE, JOBS_NAMESPACE):
        for item in workloads(namespace):
            name = item["metadata"]["name"]
            names.add(name)
            result = kubectl(
                "rollout",
                "status",
                f"{item['kind'].lower()}/{name}",
                "--timeout=300s",
                namespace=namespace,
                timeout=330,
            )
            assert result.returncode == 0, f"{name}: {result.stderr}"
    assert names == {
        "beatlytica-fake-gcs",
        "beatlytica-airflow-postgres",
        "beatlytica-producer",
        "beatlytica-dashboard",
    }
    for namespace in (NAMESPACE, JOBS_NAMESPACE):
        for claim in get_json("pvc", namespace=namespace)["items"]:
            if claim["metadata"]["name"] != "beatlytica-warehouse":  # bound by its first pod task
                assert claim["status"]["phase"] == "Bound", claim["metadata"]["name"]


def test_the_airflow_database_is_postgres_17() -> None:
    out = ok(
        "exec",
        "statefulset/beatlytica-airflow-postgres",
        "--",
        "psql",
        "-U",
        "airflow",
        "-d",
        "airflow",
        "-tAc",
        "show server_version",
        namespace=NAMESPACE,
    )
    assert out.strip().startswith("17.")


def test_the_dashboard_answers_its_health_check() -> None:
    with (
        port_forward("svc/beatlytica-dashboard", 8501, JOBS_NAMESPACE) as base,
        urllib.request.urlopen(f"{base}/_stcore/health", timeout=30) as response,
    ):
        assert response.status == 200 and response.read().strip() == b"ok"


def test_kafka_its_topics_and_users_are_ready() -> None:
    for kind in ("kafka", "kafkatopic", "kafkauser", "kafkanodepool"):
        result = kubectl(
            "wait",
            kind,
            "--all",
            "--for=condition=Ready",
            "--timeout=60s",
            namespace=NAMESPACE,
            timeout=90,
        )
        assert result.returncode == 0, f"{kind}: {result.stderr}"
    topics = {
        t["spec"].get("topicName", t["metadata"]["name"])
        for t in get_json("kafkatopic", namespace=NAMESPACE)["items"]
    }
    assert topics == set(settings()["BEATLYTICA_TOPICS"].split(","))
    for user in get_json("kafkauser", namespace=NAMESPACE)["items"]:
        secret = get_json("secret", user["metadata"]["name"], namespace=NAMESPACE)["data"]
        assert {"password", "sasl.jaas.config"} <= set(secret)


CONSUME = """
import json, os, time
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
topics = os.environ["BEATLYTICA_TOPICS"].split(",")
consumer = Consumer({
    "bootstrap.servers": os.environ["BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS"],
    "security.protocol": os.environ["BEATLYTICA_KAFKA_SECURITY_PROTOCOL"],
    "sasl.mechanism": os.environ["BEATLYTICA_KAFKA_SASL_MECHANISM"],
    "sasl.username": os.environ["USER_NAME"], "sasl.password": os.environ["USER_PASSWORD"],
    "group.id": "spark-kafka-source-cluster-tests", "enable.auto.commit": False,
    **({"ssl.ca.pem": os.environ["BEATLYTICA_KAFKA_CA_CERT"]}
       if "BEATLYTICA_KAFKA_CA_CERT" in os.environ else {}),
})
metadata = consumer.list_topics(timeout=30)
consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING)
                 for t in topics for p in metadata.topics[t].partitions])
seen = {t: {} for t in topics}
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    for message in consumer.consume(500, timeout=1):
        if message.error():
            raise SystemExit(str(message.error()))
        instance = str(json.loads(message.value())["sessionId"] // %d)
        seen[message.topic()][instance] = seen[message.topic()].get(instance, 0) + 1
    if all(len(v) >= %d for v in seen.values()):
        break
print(json.dumps(seen))
"""


def test_every_producer_replica_produces_to_every_topic() -> None:
    replicas = get_json("statefulset", "beatlytica-producer", namespace=NAMESPACE)["spec"][
        "replicas"
    ]
    assert replicas >= 2
    user = "beatlytica-stream"  # the streaming job's KafkaUser: Read on the topics
    env = [
        {"name": "USER_NAME", "value": user},
        {"name": "USER_PASSWORD", "valueFrom": {"secretKeyRef": {"name": user, "key": "password"}}},
        *({"name": k, "value": v} for k, v in settings().items() if k.startswith("BEATLYTICA_")),
        *kafka_ca_env(),
    ]
    last: dict[str, dict[str, int]] = {}

    def every_replica_in_every_topic() -> bool:
        phase, log = run_pod(
            NAMESPACE,
            f"beatlytica/beatlytica-producer:{TAG}",
            ["python", "-c", CONSUME % (INSTANCE_ID_BLOCK, replicas)],
            env=env,
            timeout=150,
        )
        assert phase == "Succeeded", log
        last.update(json.loads(log.strip().splitlines()[-1]))
        return all(set(per) == {str(k) for k in range(replicas)} for per in last.values())

    wait_for(
        "events of every producer replica in every topic",
        every_replica_in_every_topic,
        timeout=600,
        every=10,
        explain=lambda: json.dumps(last),
    )


def test_the_producers_user_cannot_read_what_it_writes() -> None:
    """The ACLs of the KafkaUser CRs are enforced: the producer's user may write the topics but
    not read them."""
    env = [
        {"name": "USER_NAME", "value": "beatlytica-producer"},
        {
            "name": "USER_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "beatlytica-producer", "key": "password"}},
        },
        *({"name": k, "value": v} for k, v in settings().items() if k.startswith("BEATLYTICA_")),
        *kafka_ca_env(),
    ]
    phase, log = run_pod(
        NAMESPACE,
        f"beatlytica/beatlytica-producer:{TAG}",
        ["python", "-c", CONSUME % (INSTANCE_ID_BLOCK, 1)],
        env=env,
        timeout=150,
    )
    assert phase == "Failed"
    assert "Authorization" in log or "authorization" in log, log


def test_the_kafka_listener_speaks_tls_and_refuses_a_client_of_another_ca() -> None:
    """On the local cluster (k8s/local/values.yaml) the listener speaks TLS with a certificate
    of the cluster CA, as Strimzi's on GKE: the clients above trusted that CA through
    BEATLYTICA_KAFKA_CA_CERT; the producer's own command, trusting another CA, is refused."""
    assert settings()["BEATLYTICA_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    (trusted,) = kafka_ca_env()
    secret = get_json("secret", trusted["valueFrom"]["secretKeyRef"]["name"], namespace=NAMESPACE)
    assert set(secret["data"]) == {"ca.crt"}
    _, stranger = certificate_authority("someone-else")
    env = [
        {"name": "BEATLYTICA_KAFKA_USERNAME", "value": "beatlytica-producer"},
        {
            "name": "BEATLYTICA_KAFKA_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "beatlytica-producer", "key": "password"}},
        },
        *({"name": k, "value": v} for k, v in settings().items() if k.startswith("BEATLYTICA_")),
        {"name": "BEATLYTICA_KAFKA_CA_CERT", "value": pem(stranger)},
        {"name": "BEATLYTICA_KAFKA_CONNECT_TIMEOUT_S", "value": "10"},
        {"name": "BEATLYTICA_KAFKA_DELIVERY_TIMEOUT_S", "value": "10"},
    ]
    window = ["--start", "2026-11-01T00:00:00", "--end", "2026-11-01T01:00:00"]
    phase, log = run_pod(
        NAMESPACE,
        f"beatlytica/beatlytica-producer:{TAG}",
        ["beatlytica", "generate", "--sink", "kafka", "--users", "5", *window],
        env=env,
        timeout=150,
    )
    assert phase == "Failed", log[-3000:]
    assert "certificate verify failed" in log, log[-3000:]
