"""The platform on a real cluster: `make kind-up deploy e2e` (or GKE: `make e2e` with the GKE
context). Skipped unless BEATLYTICA_E2E=1 and kubectl reaches a cluster with the release.

The order follows the data: operators, Airflow and the dashboard up; Kafka ready with its topics;
the producers producing, each its own instance; the streaming job RUNNING; the lake filling; the
hourly DAG triggered for one data interval through Airflow's REST API (/api/v2 on the
api-server) and succeeding; that interval's rows in the warehouse, read where the dashboard
reads them (DuckDB on the warehouse PVC on kind, BigQuery on GKE).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests import kube

NAMESPACE = os.environ.get("BEATLYTICA_E2E_NAMESPACE", "beatlytica")
#: BEATLYTICA_E2E_CLUSTER=local: the project's one-node cluster (k8s/local/, make cluster-test),
#: which runs everything here but the official Airflow chart (and Strimzi's operator, whose work
#: a stand-in does from the same CRs)
LOCAL = os.environ.get("BEATLYTICA_E2E_CLUSTER") == "local"
needs_airflow_chart = pytest.mark.skipif(
    LOCAL,
    reason="needs the official Airflow chart (its api-server): kind and GKE only; on the "
    "local cluster tests/cluster/test_pipeline.py runs the DAGs' pod tasks with a local Airflow",
)
#: the Airflow chart's api-server Service (release `beatlytica`) and the admin user its create-user
#: job makes, with the password Beatlytica's chart generated (charts/platform/values.yaml)
AIRFLOW_SERVICE = os.environ.get("BEATLYTICA_E2E_AIRFLOW_SERVICE", "svc/beatlytica-api-server")
AIRFLOW_USER = os.environ.get("BEATLYTICA_E2E_AIRFLOW_USER", "admin")
AIRFLOW_PASSWORD_SECRET = ("beatlytica-airflow-admin-password", "admin-password")
DAG_ID = "beatlytica_hourly"
DASHBOARD = "deploy/beatlytica-dashboard"
#: how long after an interval's end its events are all in the lake (stream trigger: 30 s)
LAKE_SETTLES = timedelta(minutes=3)


def kubectl(
    *args: str, namespace: str = NAMESPACE, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return kube.kubectl(*args, namespace=namespace, timeout=timeout)


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
    return kube.wait_for(what, check, timeout, every)


def get_json(*args: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    result = kubectl("get", *args, "-o", "json", namespace=namespace)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def settings() -> dict[str, str]:
    return get_json("configmap", "beatlytica-settings")["data"]


def jobs_namespace() -> str:
    """Where the pod tasks and the dashboard run: the namespace of the chart's pod templates."""
    import yaml

    templates = get_json("configmap", "beatlytica-pod-templates")["data"]
    return str(yaml.safe_load(templates["loader.yaml"])["metadata"]["namespace"])


def port_forward(target: str, port: int, namespace: str = NAMESPACE) -> Any:
    return kube.port_forward(target, port, namespace)


def airflow_password() -> str:
    """BEATLYTICA_E2E_AIRFLOW_PASSWORD, else the generated one from its Secret."""
    if password := os.environ.get("BEATLYTICA_E2E_AIRFLOW_PASSWORD"):
        return password
    name, key = AIRFLOW_PASSWORD_SECRET
    secret = json.loads(kubectl("get", "secret", name, "-o", "json").stdout)
    return base64.b64decode(secret["data"][key]).decode()


class AirflowApi:
    """The Airflow 3 REST API (/api/v2) with a JWT from the api-server's /auth/token."""

    def __init__(self, base: str) -> None:
        self.base = base
        credentials = {"username": AIRFLOW_USER, "password": airflow_password()}
        status, body = self._send("POST", "/auth/token", credentials)
        assert status in (200, 201) and "access_token" in body, f"/auth/token: {status} {body}"
        self.token = body["access_token"]

    def _send(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, text

    def call(self, method: str, path: str, body: Any = None, **query: str) -> tuple[int, Any]:
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return self._send(method, f"/api/v2{path}", body, self.token)

    def ok(self, method: str, path: str, body: Any = None, **query: str) -> Any:
        status, answer = self.call(method, path, body, **query)
        assert 200 <= status < 300, f"{method} /api/v2{path}: {status} {answer}"
        return answer


@pytest.fixture(scope="module")
def airflow() -> Iterator[AirflowApi]:
    with port_forward(AIRFLOW_SERVICE, 8080) as base:
        yield AirflowApi(base)


#: what the DAG test hands the warehouse test: the interval it ran
RUN: dict[str, Any] = {}


def test_operators_airflow_and_emulators_are_available() -> None:
    result = kubectl(
        "wait", "deployment", "--all", "--for=condition=Available", "--timeout=900s", timeout=960
    )
    assert result.returncode == 0, result.stderr


def test_the_dashboard_serves() -> None:
    """The dashboard Deployment (jobs namespace, next to the warehouse) is available and
    Streamlit answers its health endpoint through the Service."""
    namespace = jobs_namespace()
    result = kubectl(
        "wait",
        DASHBOARD,
        "--for=condition=Available",
        "--timeout=600s",
        namespace=namespace,
        timeout=660,
    )
    assert result.returncode == 0, result.stderr
    with (
        port_forward("svc/beatlytica-dashboard", 8501, namespace) as base,
        urllib.request.urlopen(f"{base}/_stcore/health", timeout=30) as response,
    ):
        assert response.status == 200 and response.read().strip() == b"ok"


def test_kafka_and_its_topics_are_ready() -> None:
    for kind in ("kafka/beatlytica", "kafkatopic --all", "kafkauser --all"):
        result = kubectl(
            "wait", *kind.split(), "--for=condition=Ready", "--timeout=900s", timeout=960
        )
        assert result.returncode == 0, f"{kind}: {result.stderr}"
    topics = {t["spec"]["topicName"] for t in get_json("kafkatopic")["items"]}
    assert topics == set(settings()["BEATLYTICA_TOPICS"].split(","))


def producer_logs(pod: str, *args: str) -> list[dict[str, Any]]:
    """The JSON log records of a producer pod's container (BEATLYTICA_LOG_FORMAT=json)."""
    records = []
    for line in kubectl("logs", pod, *args).stdout.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def test_producers_produce_with_distinct_instances() -> None:
    """Every replica runs its own --instance, and its count of produced events grows."""
    selector = "app.kubernetes.io/component=producer"
    result = kubectl(
        "wait", "pod", "-l", selector, "--for=condition=Ready", "--timeout=600s", timeout=660
    )
    assert result.returncode == 0, result.stderr
    pods = [p["metadata"]["name"] for p in get_json("pod", "-l", selector)["items"]]
    instances = []
    for pod in pods:
        started = [r for r in producer_logs(pod) if r.get("message") == "generating events"]
        assert started, f"{pod} has not started generating"
        instances.append(started[-1]["instance"])
    assert len(instances) >= 2 and len(set(instances)) == len(instances)

    def produced(pod: str) -> int:
        recent = producer_logs(pod, "--tail=20")
        progress = [r["events"] for r in recent if r.get("message") == "generating"]
        return progress[-1] if progress else 0

    before = {pod: produced(pod) for pod in pods}
    for pod in pods:  # the generator logs its progress every 10 s
        wait_for(f"{pod} producing", lambda pod=pod: produced(pod) > before[pod], 120, every=5)
        failures = [r for r in producer_logs(pod, "--tail=50") if r.get("level") == "ERROR"]
        assert not failures, failures[-1]


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


def interval_to_run() -> tuple[datetime, datetime]:
    """The last complete data interval of the hourly DAG (its grid: BEATLYTICA_DAG_START_DATE,
    BEATLYTICA_INTERVAL_MINUTES) that the producers were running in and whose events the
    streaming job has committed; waits for the current one to end when the producers started
    too late into the last."""
    data = settings()
    length = timedelta(minutes=int(data.get("BEATLYTICA_INTERVAL_MINUTES", "60")))
    anchor = datetime.fromisoformat(data.get("BEATLYTICA_DAG_START_DATE", "2026-11-01T00:00:00"))
    anchor = anchor.replace(tzinfo=anchor.tzinfo or UTC)
    pods = get_json("pod", "-l", "app.kubernetes.io/component=producer")["items"]
    started = min(
        datetime.fromisoformat(p["status"]["startTime"].replace("Z", "+00:00")) for p in pods
    )
    now = datetime.now(UTC)
    end = anchor + (now - anchor) // length * length
    if started > end - min(length / 4, timedelta(minutes=10)):
        end += length  # too little of the last interval was produced: take the current one
    settle = (end + LAKE_SETTLES - datetime.now(UTC)).total_seconds()
    if settle > 0:
        time.sleep(settle)
    return end - length, end


@needs_airflow_chart
def test_the_hourly_dag_runs_an_interval_through_the_rest_api(airflow: AirflowApi) -> None:
    """Trigger beatlytica_hourly for one data interval with POST /api/v2/dags/{id}/dagRuns
    (logical date and data interval given), unpause it, and poll the run until it ends: it must
    succeed (sensor, loads, dbt build, freshness, reconcile)."""
    wait_for("the DAG parsed", lambda: airflow.call("GET", f"/dags/{DAG_ID}")[0] == 200, 600)
    start, end = interval_to_run()
    run_id = f"e2e__{start:%Y%m%dT%H%M%S}"
    status, run = airflow.call(
        "POST",
        f"/dags/{DAG_ID}/dagRuns",
        {
            "dag_run_id": run_id,
            "logical_date": start.isoformat(),
            "data_interval_start": start.isoformat(),
            "data_interval_end": end.isoformat(),
            "conf": {},
            "note": "tests/e2e/test_kind.py",
        },
    )
    if status == 409:  # a run of this interval exists (the scheduler's, or an earlier e2e pass)
        runs = airflow.ok(
            "GET",
            f"/dags/{DAG_ID}/dagRuns",
            logical_date_gte=start.isoformat(),
            logical_date_lte=start.isoformat(),
        )["dag_runs"]
        assert runs, f"409 for {run_id}, but no run of {start.isoformat()}: {run}"
        run = runs[0]
        if run["state"] == "failed":
            airflow.ok(
                "POST", f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/clear", {"dry_run": False}
            )
    else:
        assert status in (200, 201), f"trigger: {status} {run}"
    run_id = run["dag_run_id"]
    assert datetime.fromisoformat(run["data_interval_start"]) == start
    assert datetime.fromisoformat(run["data_interval_end"]) == end
    airflow.ok("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})

    def finished() -> str | None:
        state = airflow.ok("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        return state if state in ("success", "failed") else None

    final = wait_for(f"run {run_id} finished", finished, timeout=3600, every=30)
    if final != "success":
        tasks = airflow.ok("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
        states = {(t["task_id"], t["map_index"]): t["state"] for t in tasks["task_instances"]}
        pytest.fail(f"run {run_id} of [{start}, {end}) {final}: {states}")
    RUN.update(start=start, end=end, run_id=run_id)


#: runs in the dashboard's container, which holds the warehouse clients and reads the warehouse
#: as the dashboard does: the DuckDB file read-only on kind, BigQuery as its Google service
#: account on GKE (dbt's dataset only)
COUNT_FACTS = """
import json, sys
from datetime import datetime
from beatlytica.settings import get_settings
from beatlytica.warehouse import FACT_TS
s = get_settings()
start, end = (datetime.fromisoformat(a) for a in sys.argv[1:3])
if s.warehouse == "bigquery":
    from google.cloud import bigquery
    client = bigquery.Client(project=s.gcp_project, location=s.bigquery_location)
    config = bigquery.QueryJobConfig(query_parameters=[
        bigquery.ScalarQueryParameter("start", "TIMESTAMP", start),
        bigquery.ScalarQueryParameter("end", "TIMESTAMP", end)])
    sql = (f"select count(*) as n from `{s.gcp_project}.{s.bigquery_dataset}.fact_streams` "
           f"where {FACT_TS} >= @start and {FACT_TS} < @end")
    n = list(client.query(sql, job_config=config).result())[0]["n"]
else:
    import duckdb
    from beatlytica.warehouse.duckdb_backend import DBT_SCHEMA
    con = duckdb.connect(str(s.duckdb_file), read_only=True)
    sql = f"select count(*) from {DBT_SCHEMA}.fact_streams where {FACT_TS} >= ? and {FACT_TS} < ?"
    n = con.execute(sql, [start, end]).fetchone()[0]
    con.close()
print(json.dumps({"warehouse": s.warehouse, "fact_streams": n}))
"""


@needs_airflow_chart
def test_the_intervals_rows_are_in_the_warehouse() -> None:
    if not RUN:
        pytest.skip("no successful DAG run to look for (test_the_hourly_dag_runs_...)")
    start, end = RUN["start"], RUN["end"]

    def count() -> dict[str, Any] | None:
        # a pod task writing DuckDB holds its lock; the dashboard's read waits for the next try
        interval = (start.isoformat(), end.isoformat())
        result = kubectl(
            "exec",
            DASHBOARD,
            "--",
            "python",
            "-c",
            COUNT_FACTS,
            *interval,
            namespace=jobs_namespace(),
        )
        lines = result.stdout.strip().splitlines()
        return json.loads(lines[-1]) if result.returncode == 0 and lines else None

    found = wait_for("a read of the warehouse", count, timeout=600, every=20)
    assert found["fact_streams"] > 0, f"no streams of [{start}, {end}) in {found['warehouse']}"
