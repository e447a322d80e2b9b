"""The pipeline on the local cluster, as the tests and benchmarks/cluster_pipeline.py look at
it: the SparkApplication, the lake on fake-gcs-server, the producers' simulated clocks, and this
machine's Airflow running the DAGs' pod tasks in the cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.cluster.conftest import JOBS_NAMESPACE, NAMESPACE, ROOT
from tests.kube import get_json, kubectl, service_account_kubeconfig, wait_for

APP = "beatlytica-stream"
DAY = timedelta(days=1)


def settings() -> dict[str, str]:
    return get_json("configmap", "beatlytica-settings", namespace=NAMESPACE)["data"]


def kafka_ca_env() -> list[dict[str, Any]]:
    """BEATLYTICA_KAFKA_CA_CERT for a Kafka client pod, from Strimzi's cluster CA Secret, when
    the listener speaks TLS: what the chart gives the producers and the stream."""
    if settings()["BEATLYTICA_KAFKA_SECURITY_PROTOCOL"] != "SASL_SSL":
        return []
    (kafka,) = get_json("kafka", namespace=NAMESPACE)["items"]
    secret = f"{kafka['metadata']['name']}-cluster-ca-cert"
    ref = {"secretKeyRef": {"name": secret, "key": "ca.crt"}}
    return [{"name": "BEATLYTICA_KAFKA_CA_CERT", "valueFrom": ref}]


def pod_templates(folder: Path) -> Path:
    """The release's pod templates (ConfigMap beatlytica-pod-templates) as files in ``folder``:
    what the platform chart mounts into Airflow's scheduler, for an Airflow outside the
    cluster."""
    folder.mkdir(parents=True, exist_ok=True)
    data = get_json("configmap", "beatlytica-pod-templates", namespace=NAMESPACE)["data"]
    for name, text in data.items():
        (folder / name).write_text(text)
    return folder


def topics() -> list[str]:
    return settings()["BEATLYTICA_TOPICS"].split(",")


def app_status() -> dict[str, Any]:
    return get_json("sparkapplication", APP, namespace=NAMESPACE).get("status", {})


def operator_view() -> str:
    """What the operator says about the application: for a failing test's output."""
    app = kubectl("get", "sparkapplication", APP, "-o", "wide", namespace=NAMESPACE).stdout
    status = kubectl(
        "get", "sparkapplication", APP, "-o", "jsonpath={.status}", namespace=NAMESPACE
    )
    events = kubectl(
        "get", "events", "--field-selector", f"involvedObject.name={APP}", namespace=NAMESPACE
    ).stdout
    pods = kubectl(
        "get",
        "pods",
        "-l",
        f"sparkoperator.k8s.io/app-name={APP}",
        "-o",
        "wide",
        namespace=NAMESPACE,
    ).stdout
    return f"{app}\nstatus: {status.stdout}\n{events}\n{pods}"


def gcs_endpoint() -> str:
    """fake-gcs-server's address as this machine reaches it (the pod network is routed here)."""
    pods = get_json("pods", "-l", "app.kubernetes.io/component=gcs-emulator", namespace=NAMESPACE)
    running = [p for p in pods["items"] if p["status"].get("phase") == "Running"]
    assert running, "fake-gcs-server is not running"
    return f"http://{running[0]['status']['podIP']}:4443"


def lake_table(topic: str) -> Any:
    """The committed rows of a topic's raw table (beatlytica.lake, as the loader reads it)."""
    from beatlytica.lake import committed_files, raw_table_uri, read_lake_files

    endpoint = gcs_endpoint()
    files = committed_files(raw_table_uri(settings()["BEATLYTICA_LAKE_URI"], topic), endpoint)
    return read_lake_files(files, topic, endpoint)


def committed_counts() -> dict[str, int]:
    from beatlytica.lake import committed_files, raw_table_uri

    lake, endpoint = settings()["BEATLYTICA_LAKE_URI"], gcs_endpoint()
    return {t: len(committed_files(raw_table_uri(lake, t), endpoint)) for t in topics()}


def any_committed_file() -> bool:
    try:
        return any(committed_counts().values())
    except (AssertionError, OSError):
        return False


def filled_day() -> datetime:
    """The first whole simulated day the producers have passed, with the stream's commit lag
    behind it: the producers' simulated clocks (their progress log) are past its end."""
    pods = get_json("pods", "-l", "app.kubernetes.io/component=producer", namespace=NAMESPACE)
    started = max(
        datetime.fromisoformat(p["status"]["startTime"].replace("Z", "+00:00"))
        for p in pods["items"]
    )
    day = started.replace(hour=0, minute=0, second=0, microsecond=0) + DAY
    past = (day + DAY + timedelta(hours=3)).timestamp() * 1000

    def clocks_past() -> bool:
        for pod in pods["items"]:
            log = kubectl("logs", pod["metadata"]["name"], "--tail=5", namespace=NAMESPACE).stdout
            progress = [json.loads(line) for line in log.splitlines() if '"simulated_ms"' in line]
            if not progress or progress[-1]["simulated_ms"] < past:
                return False
        return True

    wait_for(f"the producers' simulated clocks past {day + DAY}", clocks_past, 900, every=10)
    time.sleep(90)  # three stream triggers: the last events of the day committed
    return day


def airflow_environment(home: Path) -> dict[str, str]:
    """This machine's Airflow, configured like the cluster's: the settings ConfigMap, pod tasks
    created with the airflow-scheduler ServiceAccount's token only, the lake read (by the
    sensor) at fake-gcs-server's pod address."""
    kubeconfig = service_account_kubeconfig(
        "airflow-scheduler", NAMESPACE, home / "scheduler.kubeconfig"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEATLYTICA_")}
    return (
        env
        | settings()
        | {
            "BEATLYTICA_HOME": str(home / "beatlytica"),
            "BEATLYTICA_DAGS_DIR": str(ROOT / "dags"),
            "BEATLYTICA_KUBE_CONFIG_FILE": str(kubeconfig),
            "BEATLYTICA_POD_TEMPLATE_DIR": str(pod_templates(home / "pod-templates")),
            "BEATLYTICA_GCS_ENDPOINT": gcs_endpoint(),
            "BEATLYTICA_LOG_FORMAT": "json",
            "BEATLYTICA_TASK_RETRY_DELAY_SECONDS": "5",
        }
    )


def local_runtime(env: dict[str, str], home: Path) -> dict[str, str]:
    """The same Airflow with pod tasks as local processes: the same lake, a DuckDB file and
    the dbt project of this checkout."""
    return env | {
        "BEATLYTICA_RUNTIME": "local",
        "BEATLYTICA_HOME": str(home / "local"),
        "BEATLYTICA_DUCKDB_PATH": str(home / "local" / "warehouse.duckdb"),
        "BEATLYTICA_DBT_PROJECT_DIR": str(ROOT / "dbt"),
    }


def run_dag(
    env: dict[str, str], dag_id: str, start: datetime, timeout: float = 1800, **extra: str
) -> subprocess.CompletedProcess[str]:
    """One dag.test() of ``dag_id`` for [start, start + a day) in a child process, prepared as
    `beatlytica dag-run` prepares it; the child's whole output (task logs, the pods' logs
    among them) is returned."""
    from beatlytica.airflow_local import airflow_env
    from beatlytica.settings import ENV_PREFIX, Settings

    run_env = {**env, **extra}
    fields = {
        k.removeprefix(ENV_PREFIX).lower(): v
        for k, v in run_env.items()
        if k.startswith(ENV_PREFIX)
    }
    child_env = {**airflow_env(Settings(**fields)), **run_env}
    command = [
        sys.executable,
        "-m",
        "beatlytica.airflow_local",
        dag_id,
        start.isoformat(),
        (start + DAY).isoformat(),
    ]
    return subprocess.run(
        command, env=child_env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [line for line in result.stdout.splitlines() if line.startswith('{"dag_id"')]
    assert lines, f"no run summary:\n{(result.stdout + result.stderr)[-6000:]}"
    return json.loads(lines[-1])


def jobs_pods() -> list[dict[str, Any]]:
    pods = get_json("pods", "-l", "app.kubernetes.io/managed-by=airflow", namespace=JOBS_NAMESPACE)
    return pods["items"]
