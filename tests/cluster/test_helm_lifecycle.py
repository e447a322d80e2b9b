"""`helm upgrade` with a changed value and `helm uninstall` on the live cluster. The release is
installed again at the end (k8s/local/deploy.sh), so the cluster stays as `make cluster-test`
found it."""

from __future__ import annotations

import base64
import json
import os
import subprocess

import pytest

from tests.cluster.conftest import JOBS_NAMESPACE, LOCAL, NAMESPACE, RELEASE, ROOT
from tests.kube import get_json, kubectl, ok, wait_for

HELM = os.environ.get("HELM", str(ROOT / ".tools" / "bin" / "helm"))


def helm(*args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [HELM, *args, "-n", NAMESPACE], capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"helm {' '.join(args)}: {result.stderr}"
    return result.stdout


def producer_pods() -> dict[str, str]:
    pods = get_json("pods", "-l", "app.kubernetes.io/component=producer", namespace=NAMESPACE)[
        "items"
    ]
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods}


def trigger(namespace: str) -> str:
    data = get_json("configmap", "beatlytica-settings", namespace=namespace)["data"]
    return data["BEATLYTICA_STREAM_TRIGGER"]


@pytest.fixture(scope="module", autouse=True)
def _reinstalled() -> None:
    yield
    # whatever the tests left, the release is back as deploy.sh installs it
    env = {**os.environ, "HELM": HELM, "PYTHON": str(ROOT / ".venv" / "bin" / "python")}
    result = subprocess.run(
        ["bash", str(LOCAL / "deploy.sh")], capture_output=True, text=True, env=env, timeout=900
    )
    assert result.returncode == 0, result.stderr


def test_an_upgrade_with_a_changed_value_reaches_the_settings_and_rolls_the_producers() -> None:
    before = producer_pods()
    revision = json.loads(helm("status", RELEASE, "-o", "json"))["version"]
    helm(
        "upgrade",
        RELEASE,
        str(ROOT / "charts" / "beatlytica"),
        "--reuse-values",
        "--set-string",
        "settings.streamTrigger=20 seconds",
    )
    assert json.loads(helm("status", RELEASE, "-o", "json"))["version"] == revision + 1
    assert trigger(NAMESPACE) == trigger(JOBS_NAMESPACE) == "20 seconds"
    # the settings checksum annotation changed: every producer replica is replaced and Ready
    ok(
        "rollout",
        "status",
        "statefulset/beatlytica-producer",
        "--timeout=300s",
        namespace=NAMESPACE,
        timeout=330,
    )
    after = producer_pods()
    assert set(after) == set(before) and not set(after.values()) & set(before.values())


#: the chart's generated Airflow credentials: the admin user's password, Airflow's keys, the
#: metadata database's password
AIRFLOW_SECRETS = {
    "beatlytica-airflow-admin-password": "admin-password",
    "beatlytica-airflow-fernet-key": "fernet-key",
    "beatlytica-airflow-api-secret-key": "api-secret-key",
    "beatlytica-airflow-jwt-secret": "jwt-secret",
    "beatlytica-airflow-metadata": "password",
}


def generated_credentials() -> dict[str, dict[str, str]]:
    """The data of every generated credential's Secret: the chart's, and the Kafka users' (the
    operator's, per KafkaUser)."""
    found = {
        name: get_json("secret", name, namespace=NAMESPACE)["data"] for name in AIRFLOW_SECRETS
    }
    users = get_json("secrets", "-l", "strimzi.io/kind=KafkaUser", namespace=NAMESPACE)["items"]
    found.update({u["metadata"]["name"]: u["data"] for u in users})
    return found


def test_generated_credentials_are_kept_across_an_upgrade() -> None:
    """No default password anywhere (Airflow's admin gets a random one, not `admin`), and an
    upgrade keeps every generated credential: the chart reads its Secrets back (`lookup`), the
    Kafka operator keeps its users' passwords."""
    before = generated_credentials()
    for name, key in AIRFLOW_SECRETS.items():
        assert key in before[name], name
    admin = base64.b64decode(before["beatlytica-airflow-admin-password"]["admin-password"])
    assert len(admin) == 24 and admin.isalnum() and admin != b"admin"
    assert len(before) >= len(AIRFLOW_SECRETS) + 2  # the producer's and the stream's users
    revision = json.loads(helm("status", RELEASE, "-o", "json"))["version"]
    helm("upgrade", RELEASE, str(ROOT / "charts" / "beatlytica"), "--reuse-values")
    assert json.loads(helm("status", RELEASE, "-o", "json"))["version"] == revision + 1
    assert generated_credentials() == before


def test_uninstall_removes_the_release_and_keeps_what_it_must() -> None:
    helm("uninstall", RELEASE, "--wait", "--timeout", "5m", timeout=360)
    assert kubectl("get", "configmap", "beatlytica-settings", namespace=NAMESPACE).returncode != 0

    def gone() -> bool:
        left = get_json(
            "deploy,statefulset,pods",
            "-l",
            f"app.kubernetes.io/instance={RELEASE}",
            namespace=NAMESPACE,
        )["items"]
        return not left

    wait_for("the release's workloads and pods gone", gone, 180)
    # the Kafka CRs went, and with them the broker the local stand-in ran for them
    wait_for(
        "the local broker gone",
        lambda: (
            kubectl("get", "statefulset", "beatlytica-dual", namespace=NAMESPACE).returncode != 0
        ),
        180,
    )
    # kept on purpose (helm.sh/resource-policy: keep): the database password, so a reinstall
    # finds the data it wrote
    assert (
        kubectl("get", "secret", "beatlytica-airflow-metadata", namespace=NAMESPACE).returncode == 0
    )
