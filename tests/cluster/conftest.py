"""The cluster tests run against the local one-node cluster (k8s/local/, `make cluster-test`).

Outside CI they are skipped, with the reason, when that cluster is not up. In CI
(CI=true) a cluster that cannot be reached fails every test with the reason: `make test`
brings it up first, so an unreachable cluster is a defect, never a skip.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "k8s" / "local"
STATE = Path(os.environ.get("BEATLYTICA_CLUSTER_DIR", ROOT / ".beatlytica" / "cluster"))
KUBECONFIG = STATE / "kubeconfig"
#: the release of charts/beatlytica that k8s/local/deploy.sh installs
NAMESPACE = "beatlytica"
JOBS_NAMESPACE = "beatlytica-jobs"
RELEASE = "beatlytica"


def _unreachable() -> str | None:
    if not KUBECONFIG.is_file():
        return f"the local cluster is not up (no {KUBECONFIG}): run make cluster-test"
    try:
        result = subprocess.run(
            ["kubectl", "--kubeconfig", str(KUBECONFIG), "get", "--raw", "/readyz"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"the local cluster's API server does not answer: {error}"
    if result.returncode:
        return f"the local cluster's API server does not answer: {result.stderr.strip()}"
    return None


REASON = _unreachable()
if REASON is None:
    # kubectl (tests/kube.py) talks to the local cluster, with the cluster's own kubectl first
    os.environ["KUBECONFIG"] = str(KUBECONFIG)
    os.environ["PATH"] = f"{STATE / 'bin'}{os.pathsep}{os.environ['PATH']}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if REASON is None or os.environ.get("CI") == "true":
        return  # in CI an unreachable cluster fails each test (the fixture below)
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.skip(reason=REASON))


@pytest.fixture(autouse=True)
def _cluster_reachable() -> None:
    if REASON is not None:
        pytest.fail(f"CI=true and the local cluster is unreachable: {REASON}")
