"""The chart's RBAC on the live API server: each ServiceAccount may do exactly what it needs and
nothing else, and Airflow's scheduler account can run a pod task in the jobs namespace and read
its log with its own token, nothing more."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.cluster.conftest import JOBS_NAMESPACE, NAMESPACE
from tests.kube import kubectl, pod_manifest, service_account_kubeconfig

TAG = os.environ.get("BEATLYTICA_IMAGE_TAG", "")
CHECKS = [  # verb, resource, namespace ("" = cluster scope)
    ("create", "pods", JOBS_NAMESPACE),
    ("delete", "pods", JOBS_NAMESPACE),
    ("watch", "pods", JOBS_NAMESPACE),
    ("get", "pods/log", JOBS_NAMESPACE),
    ("list", "events", JOBS_NAMESPACE),
    ("get", "secrets", JOBS_NAMESPACE),
    ("create", "pods/exec", JOBS_NAMESPACE),
    ("create", "deployments.apps", JOBS_NAMESPACE),
    ("create", "pods", NAMESPACE),
    ("create", "services", NAMESPACE),
    ("create", "configmaps", NAMESPACE),
    ("create", "persistentvolumeclaims", NAMESPACE),
    ("get", "secrets", NAMESPACE),
    ("list", "pods", NAMESPACE),
    ("create", "pods", "default"),
    ("list", "nodes", ""),
    ("create", "namespaces", ""),
    ("list", "secrets", "kube-system"),
    ("patch", "networkpolicies.networking.k8s.io", NAMESPACE),
    ("patch", "networkpolicies.networking.k8s.io", JOBS_NAMESPACE),
]
#: per ServiceAccount, the checks it passes; every other check of CHECKS must be denied
ALLOWED = {
    f"{NAMESPACE}:airflow-scheduler": {
        ("create", "pods", JOBS_NAMESPACE),
        ("delete", "pods", JOBS_NAMESPACE),
        ("watch", "pods", JOBS_NAMESPACE),
        ("get", "pods/log", JOBS_NAMESPACE),
        ("list", "events", JOBS_NAMESPACE),
    },
    f"{NAMESPACE}:beatlytica-spark": {
        ("create", "pods", NAMESPACE),
        ("create", "services", NAMESPACE),
        ("create", "configmaps", NAMESPACE),
        ("create", "persistentvolumeclaims", NAMESPACE),
        ("list", "pods", NAMESPACE),
    },
    f"{NAMESPACE}:beatlytica-producer": set(),
    f"{JOBS_NAMESPACE}:beatlytica-jobs": set(),
    f"{JOBS_NAMESPACE}:beatlytica-dashboard": set(),
}
ALLOWED[f"{NAMESPACE}:airflow-triggerer"] = ALLOWED[f"{NAMESPACE}:airflow-scheduler"]
# the Spark operator's controller runs spark-submit: its own chart grants it pods, services and
# config maps in the job namespace; ours adds the driver's NetworkPolicy (Spark 4.2)
ALLOWED[f"{NAMESPACE}:beatlytica-spark-operator-controller"] = {
    ("create", "pods", NAMESPACE),
    ("create", "services", NAMESPACE),
    ("create", "configmaps", NAMESPACE),
    ("list", "pods", NAMESPACE),
    ("patch", "networkpolicies.networking.k8s.io", NAMESPACE),
}


def can_i(account: str, verb: str, resource: str, namespace: str) -> bool:
    scope = ["-n", namespace] if namespace else []
    # `can-i get pods/log` would ask about a pod named "log": subresources go in their flag
    kind, _, sub = resource.partition("/")
    subresource = [f"--subresource={sub}"] if sub else []
    result = kubectl(
        "auth", "can-i", verb, kind, *subresource, *scope, f"--as=system:serviceaccount:{account}"
    )
    assert result.stdout.strip() in ("yes", "no"), result.stderr
    return result.stdout.strip() == "yes"


@pytest.mark.parametrize("account", list(ALLOWED))
def test_each_service_account_may_do_exactly_what_it_needs(account: str) -> None:
    granted = {check for check in CHECKS if can_i(account, *check)}
    assert granted == ALLOWED[account]


@pytest.fixture(scope="module")
def as_scheduler(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A kubeconfig that authenticates with the airflow-scheduler account's token only."""
    path = tmp_path_factory.mktemp("scheduler") / "kubeconfig"
    return {"KUBECONFIG": str(service_account_kubeconfig("airflow-scheduler", NAMESPACE, path))}


def test_a_pod_task_created_as_the_scheduler_runs_and_its_log_is_readable(
    as_scheduler: dict[str, str],
) -> None:
    assert (
        kubectl(
            "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", env=as_scheduler
        ).stdout
        == f"system:serviceaccount:{NAMESPACE}:airflow-scheduler"
    )
    name = f"task-{uuid.uuid4().hex[:8]}"
    pod = pod_manifest(
        name,
        f"beatlytica/beatlytica-loader:{TAG}",
        ["beatlytica", "load", "--help"],
        service_account="beatlytica-jobs",
    )
    created = kubectl(
        "apply", "-f", "-", namespace=JOBS_NAMESPACE, stdin=json.dumps(pod), env=as_scheduler
    )
    assert created.returncode == 0, created.stderr
    try:
        done = kubectl(
            "wait",
            f"pod/{name}",
            "--for=jsonpath={.status.phase}=Succeeded",
            "--timeout=180s",
            namespace=JOBS_NAMESPACE,
            env=as_scheduler,
            timeout=200,
        )
        assert done.returncode == 0, done.stderr
        log = kubectl("logs", name, namespace=JOBS_NAMESPACE, env=as_scheduler)
        assert log.returncode == 0 and "--start" in log.stdout
        # and nothing beyond its Role: not the jobs namespace's secrets, not the release's pods
        for args, namespace in ((("get", "secrets"), JOBS_NAMESPACE), (("get", "pods"), NAMESPACE)):
            denied = kubectl(*args, namespace=namespace, env=as_scheduler)
            assert denied.returncode != 0 and "Forbidden" in denied.stderr
    finally:
        kubectl("delete", "pod", name, "--wait=false", namespace=JOBS_NAMESPACE, env=as_scheduler)


def test_the_token_kubeconfig_carries_no_client_certificate(as_scheduler: dict[str, str]) -> None:
    """The scheduler's kubeconfig authenticates by token alone (a client certificate would win)."""
    config = json.loads(Path(as_scheduler["KUBECONFIG"]).read_text())
    assert set(config["users"][0]["user"]) == {"token"}
    assert (
        subprocess.run(
            ["kubectl", "get", "nodes"],
            env={**os.environ, **as_scheduler},
            capture_output=True,
            text=True,
        ).returncode
        != 0
    )


@pytest.fixture(scope="module")
def as_spark_driver(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A kubeconfig with the Spark driver's account token only (what the driver creates
    executors with)."""
    path = tmp_path_factory.mktemp("spark") / "kubeconfig"
    return {"KUBECONFIG": str(service_account_kubeconfig("beatlytica-spark", NAMESPACE, path))}


def secret_volume(pod: dict[str, object]) -> None:
    spec = pod["spec"]
    assert isinstance(spec, dict)
    spec["volumes"] = [{"name": "s", "secret": {"secretName": "beatlytica-airflow-metadata"}}]
    spec["containers"][0]["volumeMounts"] = [{"name": "s", "mountPath": "/s"}]


def projected_secret(pod: dict[str, object]) -> None:
    spec = pod["spec"]
    assert isinstance(spec, dict)
    source = {"secret": {"name": "beatlytica-airflow-metadata"}}
    spec["volumes"] = [{"name": "s", "projected": {"sources": [source]}}]
    spec["containers"][0]["volumeMounts"] = [{"name": "s", "mountPath": "/s"}]


def env_secret(pod: dict[str, object]) -> None:
    spec = pod["spec"]
    assert isinstance(spec, dict)
    ref = {"secretKeyRef": {"name": "beatlytica-airflow-metadata", "key": "connection"}}
    spec["containers"][0]["env"] = [{"name": "X", "valueFrom": ref}]


def env_from_secret(pod: dict[str, object]) -> None:
    spec = pod["spec"]
    assert isinstance(spec, dict)
    spec["containers"][0]["envFrom"] = [{"secretRef": {"name": "beatlytica-airflow-metadata"}}]


def other_account(pod: dict[str, object]) -> None:
    spec = pod["spec"]
    assert isinstance(spec, dict)
    spec["serviceAccountName"] = "beatlytica-producer"


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (secret_volume, "mount no Secret"),
        (projected_secret, "mount no Secret"),
        (env_secret, "take no Secret into their environment"),
        (env_from_secret, "take no Secret into their environment"),
        (other_account, "run as its own ServiceAccount"),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_the_spark_driver_cannot_reach_a_secret_through_a_pod(
    as_spark_driver: dict[str, str], change: object, refusal: str
) -> None:
    """The driver may create pods (its executors) in the namespace that holds the release's
    Secrets; the admission policy refuses any pod of its that would mount one, take one into
    its environment, or run as another account, and admits an executor-like pod."""

    def create(pod: dict[str, object]) -> subprocess.CompletedProcess[str]:
        args = ("create", "--dry-run=server", "-f", "-")
        return kubectl(*args, namespace=NAMESPACE, stdin=json.dumps(pod), env=as_spark_driver)

    def executor() -> dict[str, object]:
        name = f"exec-{uuid.uuid4().hex[:8]}"
        image = f"beatlytica/beatlytica-spark:{TAG}"
        return pod_manifest(name, image, ["true"], user=185, service_account="beatlytica-spark")

    allowed = create(executor())
    assert allowed.returncode == 0, allowed.stderr
    pod = executor()
    assert callable(change)
    change(pod)
    denied = create(pod)
    assert denied.returncode != 0 and refusal in denied.stderr, denied.stderr
