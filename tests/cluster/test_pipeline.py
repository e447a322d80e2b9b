"""The pipeline itself on the local cluster, in pods, as on kind and GKE:

1. the Kubeflow Spark operator (controller and webhook, its own chart) runs the chart's
   SparkApplication: driver and executor pods of the project's spark image stream all four
   topics from the broker into the lake on fake-gcs-server, checkpoints in the bucket;
2. a real Airflow 3.3.2 (this machine's, pointed at the cluster with the airflow-scheduler
   ServiceAccount's token, so every pod is created with that account's rights only) runs
   `beatlytica_hourly` and then `beatlytica_daily` for a day the stream has filled: every pod
   task in the jobs namespace from the loader and dbt images; a pod killed mid-run is retried
   without losing or doubling rows; a pod that cannot start fails its task in time;
3. the dashboard in the cluster serves the marts that run built;
4. the streaming driver deleted mid-stream comes back and the lake holds every produced event
   exactly once.

The order matters and is the file's: the driver test stops and restarts the producers, which
then produce into days the DAG test has already run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.pipeline import (
    APP,
    JOBS_NAMESPACE,
    NAMESPACE,
    airflow_environment,
    app_status,
    committed_counts,
    filled_day,
    gcs_endpoint,
    jobs_pods,
    kafka_ca_env,
    lake_table,
    operator_view,
    run_dag,
    settings,
    summary,
    topics,
)
from tests.kube import get_json, kubectl, ok, port_forward, run_pod, wait_for

TAG = os.environ.get("BEATLYTICA_IMAGE_TAG", "")


# --- 1. the streaming job through the Spark operator ----------------------------------------------


def test_the_spark_operator_runs_the_streaming_job() -> None:
    for component in ("controller", "webhook"):
        ok(
            "rollout",
            "status",
            f"deploy/beatlytica-spark-operator-{component}",
            "--timeout=300s",
            namespace=NAMESPACE,
            timeout=330,
        )
    state = wait_for(
        f"SparkApplication {APP} RUNNING",
        lambda: app_status().get("applicationState", {}).get("state") == "RUNNING",
        600,
        every=5,
        explain=operator_view,
    )
    assert state
    driver = get_json("pod", running_driver(), namespace=NAMESPACE)
    executors = get_json(
        "pods",
        "-l",
        f"sparkoperator.k8s.io/app-name={APP},spark-role=executor",
        namespace=NAMESPACE,
    )["items"]
    assert executors, operator_view()
    for pod in [driver, *executors]:
        (container,) = [
            c for c in pod["spec"]["containers"] if c["name"].startswith("spark-kubernetes")
        ]
        assert container["image"] == f"beatlytica/beatlytica-spark:{TAG}"
        # what the webhook put in: the settings ConfigMap and the pod security context
        assert {"configMapRef": {"name": "beatlytica-settings"}} in container.get("envFrom", [])
        assert pod["spec"]["securityContext"]["runAsUser"] == 185
    # the Kafka password from the KafkaUser's Secret, into the driver
    env = {e["name"]: e for e in driver["spec"]["containers"][0].get("env", [])}
    assert (
        env["BEATLYTICA_KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "beatlytica-stream"
    )
    # the listener speaks TLS here: the driver trusts the cluster CA from Strimzi's Secret; the
    # executors hold no Secret at all, they get the CA with the query's Kafka options (the
    # committed files below are their reads through TLS)
    (ca,) = kafka_ca_env()
    assert env["BEATLYTICA_KAFKA_CA_CERT"] == ca
    for executor in executors:
        for container in executor["spec"]["containers"]:
            assert not [e for e in container.get("env", []) if "secretKeyRef" in str(e)]


def test_committed_files_appear_for_every_topic() -> None:
    lake = settings()["BEATLYTICA_LAKE_URI"]

    def committed() -> dict[str, int]:
        counts = committed_counts()
        return counts if all(counts.values()) else {}

    wait_for("committed lake files of every topic", committed, 600, every=10, explain=operator_view)
    # the queries' checkpoints are in the bucket too: offsets and commits of every topic
    from pyarrow import fs

    from beatlytica.lake import CHECKPOINT, filesystem

    gcs, root = filesystem(f"{lake}/_checkpoints", gcs_endpoint())
    paths = [i.path for i in gcs.get_file_info(fs.FileSelector(root, recursive=True))]
    for topic in topics():
        for log in ("offsets", "commits"):
            assert any(f"/_checkpoints/{topic}/{CHECKPOINT}/{log}/" in p for p in paths), (
                topic,
                log,
            )


# --- 2. Airflow's pod tasks ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return airflow_environment(tmp_path_factory.mktemp("airflow"))


#: what the DAG tests hand on: the day they ran
RUN: dict[str, Any] = {}


def test_the_hourly_and_daily_dags_run_their_pod_tasks_in_the_jobs_namespace(
    airflow_env: dict[str, str],
) -> None:
    day = filled_day()
    RUN["day"] = day
    before = {p["metadata"]["uid"] for p in jobs_pods()}
    hourly = run_dag(airflow_env, "beatlytica_hourly", day)
    assert summary(hourly)["state"] == "success", (hourly.stdout + hourly.stderr)[-8000:]
    tasks = summary(hourly)["tasks"]
    assert {t.split("[")[0] for t in tasks} >= {"wait_for_lake", "load", "dbt_build", "reconcile"}
    # the pods' own log lines reached Airflow's task log (get_logs: each line as "[base] …"):
    # every load, and reconcile's table with lake = raw = facts for every topic
    output = hourly.stdout + hourly.stderr
    for topic in topics():
        assert re.search(rf'\[base\] .*"message": "loaded", "topic": "{topic}"', output), topic
        assert re.search(rf"\[base\] {topic} +([\d,]+) +\1 +(\1|-) +0 +0 +ok", output), topic
    daily = run_dag(airflow_env, "beatlytica_daily", day)
    assert summary(daily)["state"] == "success", (daily.stdout + daily.stderr)[-8000:]
    # every pod is deleted when its task ends, as the factory says (on_finish_action)
    left = [p["metadata"]["name"] for p in jobs_pods() if p["metadata"]["uid"] not in before]
    assert not left
    assert "Deleting pod: beatlytica-load-" in output


def raw_rows(day: datetime) -> dict[str, int]:
    """Rows of each raw table for the day, read from the warehouse file on its volume (the
    local-path provisioner keeps volumes in a folder of this machine)."""
    import duckdb

    claim = get_json("pvc", "beatlytica-warehouse", namespace=JOBS_NAMESPACE)
    volume = get_json("pv", claim["spec"]["volumeName"])
    path = Path(volume["spec"]["hostPath"]["path"]) / "warehouse.duckdb"
    raw = settings()["BEATLYTICA_WAREHOUSE_RAW_SCHEMA"]
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            t: con.execute(
                f"select count(*) from {raw}.{t} where event_date = ?", [day.date()]
            ).fetchone()[0]
            for t in topics()
        }
    finally:
        con.close()


def test_a_pod_task_killed_mid_run_is_retried_without_losing_or_doubling_rows(
    airflow_env: dict[str, str],
) -> None:
    day = RUN["day"]
    RUN["rows"] = before = raw_rows(day)
    assert all(before.values()), before
    result: dict[str, subprocess.CompletedProcess[str]] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("run", run_dag(airflow_env, "beatlytica_hourly", day))
    )
    thread.start()
    try:
        victim = wait_for(
            "a running load pod",
            lambda: next(
                (
                    p["metadata"]["name"]
                    for p in jobs_pods()
                    if p["metadata"]["labels"].get("task_id") == "load"
                    and p["status"].get("phase") == "Running"
                ),
                None,
            ),
            600,
            every=0.5,
        )
        # the pod task as the factory made it from the chart's loader pod template: the loader
        # image, the jobs ServiceAccount without an API token, the settings ConfigMap, the
        # template's resources, the warehouse volume
        spec = get_json("pod", victim, namespace=JOBS_NAMESPACE)["spec"]
        (container,) = spec["containers"]
        template = yaml.safe_load(
            get_json("configmap", "beatlytica-pod-templates", namespace=NAMESPACE)["data"][
                "loader.yaml"
            ]
        )["spec"]
        assert container["image"] == f"beatlytica/beatlytica-loader:{TAG}"
        assert spec["serviceAccountName"] == template["serviceAccountName"] == "beatlytica-jobs"
        assert spec["automountServiceAccountToken"] is False
        assert {"configMapRef": {"name": "beatlytica-settings"}} in container["envFrom"]
        assert container["resources"] == template["containers"][0]["resources"]
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in spec["volumes"]
            if "persistentVolumeClaim" in v
        ]
        assert claims == ["beatlytica-warehouse"]
        ok("delete", "pod", victim, "--grace-period=0", "--force", namespace=JOBS_NAMESPACE)
    finally:
        thread.join(1800)
    run = result["run"]
    output = run.stdout + run.stderr
    assert summary(run)["state"] == "success", output[-8000:]
    assert victim in output  # the task saw its pod go, and its retry ran a new one
    # the interval was replaced, not appended to: the same rows as the first run
    assert raw_rows(day) == before


def test_a_pod_that_cannot_start_fails_its_task_within_the_startup_timeout(
    airflow_env: dict[str, str],
) -> None:
    started = time.monotonic()
    result = run_dag(
        airflow_env,
        "beatlytica_hourly",
        RUN["day"],
        timeout=600,
        BEATLYTICA_IMAGE_TAG="no-such-tag",
        BEATLYTICA_TASK_RETRIES="0",
        BEATLYTICA_POD_STARTUP_TIMEOUT_SECONDS="45",
    )
    elapsed = time.monotonic() - started
    assert summary(result)["state"] == "failed"
    log = result.stdout + result.stderr
    # the pod's events are in the task's log: the image could not be pulled
    assert "no-such-tag" in log and (
        "ErrImagePull" in log or "ImagePullBackOff" in log or "Failed" in log
    )
    assert elapsed < 300
    # and the pods that never started are gone too: they would hold their CPU requests
    assert not [p for p in jobs_pods() if "no-such-tag" in p["spec"]["containers"][0]["image"]]


# --- 3. the dashboard ----------------------------------------------------------------------------


def test_the_dashboard_in_the_cluster_serves_the_marts_the_run_built() -> None:
    with (
        port_forward("svc/beatlytica-dashboard", 8501, JOBS_NAMESPACE) as base,
        urllib.request.urlopen(f"{base}/_stcore/health", timeout=30) as response,
    ):
        assert response.status == 200 and response.read().strip() == b"ok"
    # the dashboard's own data layer, in its pod, on the warehouse it mounts read-only
    code = (
        "from beatlytica.dashboard import data; from beatlytica.settings import get_settings; "
        "print(data.load(get_settings()).total_streams)"
    )
    pod = ok(
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/component=dashboard",
        "-o",
        "jsonpath={.items[0].metadata.name}",
        namespace=JOBS_NAMESPACE,
    )
    shown = int(ok("exec", pod, "--", "python", "-c", code, namespace=JOBS_NAMESPACE).strip())
    # against DuckDB read directly from the volume: the listens of the facts
    import duckdb

    from beatlytica.warehouse.duckdb_backend import DBT_SCHEMA

    claim = get_json("pvc", "beatlytica-warehouse", namespace=JOBS_NAMESPACE)
    path = Path(get_json("pv", claim["spec"]["volumeName"])["spec"]["hostPath"]["path"])
    con = duckdb.connect(str(path / "warehouse.duckdb"), read_only=True)
    try:
        facts = con.execute(f"select count(*) from {DBT_SCHEMA}.fact_streams").fetchone()[0]
    finally:
        con.close()
    assert shown == facts > 0


# --- 4. the streaming driver deleted mid-stream ---------------------------------------------------

#: run in a pod as the streaming job's KafkaUser: every record of every topic, its event_id
KAFKA_IDS = """
import json, os, sys
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from beatlytica.events import event_id
topics = os.environ["BEATLYTICA_TOPICS"].split(",")
consumer = Consumer({
    "bootstrap.servers": os.environ["BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS"],
    "security.protocol": os.environ["BEATLYTICA_KAFKA_SECURITY_PROTOCOL"],
    "sasl.mechanism": os.environ["BEATLYTICA_KAFKA_SASL_MECHANISM"],
    "sasl.username": "beatlytica-stream", "sasl.password": os.environ["PASSWORD"],
    "group.id": "spark-kafka-source-cluster-tests", "enable.auto.commit": False,
    **({"ssl.ca.pem": os.environ["BEATLYTICA_KAFKA_CA_CERT"]}
       if "BEATLYTICA_KAFKA_CA_CERT" in os.environ else {}),
})
metadata = consumer.list_topics(timeout=30)
ends, parts = {}, []
for t in topics:
    for p in metadata.topics[t].partitions:
        ends[(t, p)] = consumer.get_watermark_offsets(TopicPartition(t, p), timeout=30)[1]
        parts.append(TopicPartition(t, p, OFFSET_BEGINNING))
consumer.assign(parts)
ids = {t: [] for t in topics}
done = {k for k, end in ends.items() if end == 0}
while len(done) < len(ends):
    for m in consumer.consume(1000, timeout=5):
        if m.error():
            sys.exit(str(m.error()))
        ids[m.topic()].append(event_id(m.topic(), json.loads(m.value())))
        if m.offset() + 1 >= ends[(m.topic(), m.partition())]:
            done.add((m.topic(), m.partition()))
for t in topics:
    print(t, *ids[t])
"""


def kafka_ids() -> dict[str, list[str]]:
    env = [
        {
            "name": "PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "beatlytica-stream", "key": "password"}},
        },
        *({"name": k, "value": v} for k, v in settings().items()),
        *kafka_ca_env(),
    ]
    phase, log = run_pod(
        NAMESPACE,
        f"beatlytica/beatlytica-producer:{TAG}",
        ["python", "-c", KAFKA_IDS],
        env=env,
        timeout=600,
    )
    assert phase == "Succeeded", log[-3000:]
    lines = [
        line.split() for line in log.splitlines() if line.split() and line.split()[0] in topics()
    ]
    return {line[0]: line[1:] for line in lines}


def digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]


def running_driver() -> str:
    """The driver pod of the RUNNING application (waiting out a restart in progress)."""

    def name() -> str | None:
        status = app_status()
        running = status.get("applicationState", {}).get("state") == "RUNNING"
        return status.get("driverInfo", {}).get("podName") if running else None

    return wait_for("the SparkApplication RUNNING", name, 600, every=5, explain=operator_view)


def test_a_deleted_driver_comes_back_and_the_lake_holds_every_event_exactly_once() -> None:
    first = running_driver()
    uid = get_json("pod", first, namespace=NAMESPACE)["metadata"]["uid"]
    ok("delete", "pod", first, "--wait=false", namespace=NAMESPACE)

    def back() -> bool:
        status = app_status()
        name = status.get("driverInfo", {}).get("podName")
        if status.get("applicationState", {}).get("state") != "RUNNING" or not name:
            return False
        pod = kubectl("get", "pod", name, "-o", "json", namespace=NAMESPACE)
        return (
            pod.returncode == 0
            and json.loads(pod.stdout)["metadata"]["uid"] != uid
            and json.loads(pod.stdout)["status"].get("phase") == "Running"
        )

    wait_for("a new driver RUNNING", back, 600, every=5, explain=operator_view)
    # stop the producers so that what they sent is final; the stream catches up
    replicas = get_json("statefulset", "beatlytica-producer", namespace=NAMESPACE)["spec"][
        "replicas"
    ]
    ok("scale", "statefulset/beatlytica-producer", "--replicas=0", namespace=NAMESPACE)
    try:
        wait_for(
            "the producers stopped",
            lambda: (
                not get_json(
                    "pods", "-l", "app.kubernetes.io/component=producer", namespace=NAMESPACE
                )["items"]
            ),
            120,
        )
        sent = kafka_ids()
        assert all(sent.values()), {t: len(v) for t, v in sent.items()}
        last: dict[str, Any] = {}

        def caught_up() -> bool:
            for topic in topics():
                ids = lake_table(topic).column("event_id").to_pylist()
                last[topic] = {
                    "lake": len(ids),
                    "distinct": len(set(ids)),
                    "sent": len(sent[topic]),
                }
                if len(ids) < len(sent[topic]):
                    return False
            return True

        wait_for(
            "the lake caught up with what the producers sent",
            caught_up,
            600,
            every=10,
            explain=lambda: json.dumps(last) + "\n" + operator_view(),
        )
        for topic in topics():
            ids = lake_table(topic).column("event_id").to_pylist()
            assert len(ids) == len(set(ids)), f"{topic}: duplicates in the lake: {last}"
            assert digest(ids) == digest(sent[topic]), f"{topic}: the lake is not what was sent"
    finally:
        ok(
            "scale",
            "statefulset/beatlytica-producer",
            f"--replicas={replicas}",
            namespace=NAMESPACE,
        )
