"""The platform on a real cluster: `make kind-up deploy e2e` (or GKE, `make e2e` with the GKE
context). Skipped unless BEATLYTICA_E2E=1 and kubectl reaches a cluster with the release.

The order follows the data: operators and Airflow up, Kafka ready, producers emitting with
distinct instances, the streaming job running, the lake filling, Airflow running an interval.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

NAMESPACE = os.environ.get("BEATLYTICA_E2E_NAMESPACE", "beatlytica")
CONTEXT = os.environ.get("BEATLYTICA_E2E_CONTEXT")  # default: kubectl's current context
SCHEDULER = "deploy/beatlytica-scheduler"


def kubectl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    context = ["--context", CONTEXT] if CONTEXT else []
    return subprocess.run(["kubectl", *context, "--namespace", NAMESPACE, *args],
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def _cluster_with_release() -> str | None:
    """Why the tests cannot run here, or None."""
    if os.environ.get("BEATLYTICA_E2E") != "1":
        return "set BEATLYTICA_E2E=1 (make e2e) to run the cluster tests"
    if not shutil.which("kubectl"):
        return "kubectl is not installed"
    try:
        found = kubectl("get", "configmap", "beatlytica-settings", "-o", "name", timeout=20)
    except subprocess.TimeoutExpired:
        return "the cluster does not answer"
    if found.returncode:
        return f"no Beatlytica release in namespace {NAMESPACE}: {found.stderr.strip()}"
    return None


REASON = _cluster_with_release()
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(REASON is not None, reason=REASON or "")]


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"{what}: not reached within {timeout:.0f} s (last: {last!r})")


def get_json(*args: str) -> dict[str, Any]:
    result = kubectl("get", *args, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def settings() -> dict[str, str]:
    return get_json("configmap", "beatlytica-settings")["data"]


def test_operators_airflow_and_emulators_are_available() -> None:
    result = kubectl("wait", "deployment", "--all", "--for=condition=Available",
                     "--timeout=900s", timeout=960)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_kafka_and_its_topics_are_ready() -> None:
    for kind in ("kafka/beatlytica", "kafkatopic --all", "kafkauser --all"):
        result = kubectl("wait", *kind.split(), "--for=condition=Ready", "--timeout=900s",
                         timeout=960)  # fmt: skip
        assert result.returncode == 0, f"{kind}: {result.stderr}"
    topics = {t["spec"]["topicName"] for t in get_json("kafkatopic")["items"]}
    assert topics == set(settings()["BEATLYTICA_TOPICS"].split(","))


def test_producers_emit_with_distinct_instances() -> None:
    selector = "app.kubernetes.io/component=producer"
    result = kubectl("wait", "pod", "-l", selector, "--for=condition=Ready", "--timeout=600s",
                     timeout=660)  # fmt: skip
    assert result.returncode == 0, result.stderr
    instances = []
    for pod in get_json("pod", "-l", selector)["items"]:
        logs = kubectl("logs", pod["metadata"]["name"]).stdout.splitlines()
        started = [json.loads(line) for line in logs if '"generating events"' in line]
        assert started, f"{pod['metadata']['name']} has not started generating"
        instances.append(started[0]["instance"])
    assert len(instances) >= 2 and len(set(instances)) == len(instances)


def test_the_streaming_job_runs() -> None:
    def state() -> str | None:
        app = get_json("sparkapplication", "beatlytica-stream")
        current = app.get("status", {}).get("applicationState", {}).get("state")
        return current if current == "RUNNING" else None

    wait_for("SparkApplication RUNNING", state, timeout=900)


def test_the_lake_fills() -> None:
    data = settings()
    if "BEATLYTICA_GCS_ENDPOINT" not in data:
        pytest.skip("the lake is a real bucket here: check it with `gcloud storage ls`")
    bucket, _, prefix = data["BEATLYTICA_LAKE_URI"].removeprefix("gs://").partition("/")
    url = f"http://localhost:4443/storage/v1/b/{bucket}/o?prefix={prefix}/raw/"

    def objects() -> int:
        listed = kubectl("exec", "deploy/beatlytica-fake-gcs", "--", "wget", "-qO-", url)
        return len(json.loads(listed.stdout or "{}").get("items", []))

    wait_for("parquet files in the lake", objects, timeout=900, every=30)


def test_airflow_backfills_one_interval() -> None:
    listed = kubectl("exec", SCHEDULER, "--", "airflow", "dags", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert "beatlytica_hourly" in {d["dag_id"] for d in json.loads(listed.stdout)}
    kubectl("exec", SCHEDULER, "--", "airflow", "dags", "unpause", "beatlytica_hourly")
    # the last complete hour, which the producers have filled by now
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=1)
    created = kubectl("exec", SCHEDULER, "--", "airflow", "backfill", "create",
                      "--dag-id", "beatlytica_hourly", "--from-date", start.isoformat(),
                      "--to-date", start.isoformat())  # fmt: skip
    assert created.returncode == 0, created.stderr

    def run_state() -> str | None:
        runs = kubectl("exec", SCHEDULER, "--", "airflow", "dags", "list-runs",
                       "beatlytica_hourly", "-o", "json")  # fmt: skip
        for run in json.loads(runs.stdout or "[]"):
            if run.get("run_type") == "backfill" and run.get("state") in ("success", "failed"):
                return str(run["state"])
        return None

    assert wait_for("the backfilled run", run_state, timeout=3600, every=30) == "success"
