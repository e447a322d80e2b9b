"""The six images, built from their Dockerfiles on the stand-in bases (make cluster-images), are
in the node's containerd and run there as pods, as the user their Dockerfile names, without a
pull."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.cluster.conftest import JOBS_NAMESPACE, STATE
from tests.kube import get_json, run_pod

TAG = os.environ.get("BEATLYTICA_IMAGE_TAG", "")
#: image -> (its user id, a command that proves what it is for, what the log must hold)
IMAGES = {
    "producer": (10001, ["beatlytica", "generate", "--help"], "--realtime"),
    "loader": (10001, ["beatlytica", "load", "--help"], "--start"),
    "dbt": (10001, ["dbt", "--version"], "duckdb"),
    "dashboard": (
        10001,
        ["python", "-c", "import streamlit, beatlytica.dashboard; print('ok')"],
        "ok",
    ),
    "airflow": (
        50000,
        ["python", "-c", "import airflow, beatlytica.settings; print(airflow.__version__)"],
        "3.3.2",
    ),
    "spark": (
        185,
        ["/opt/entrypoint.sh", "/opt/spark/bin/spark-submit", "--version"],
        "version 4.2.0",
    ),
}


def containerd_images() -> set[str]:
    out = subprocess.run(
        ["ctr", "-a", str(STATE / "run" / "containerd.sock"), "-n", "k8s.io", "images", "ls", "-q"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


@pytest.mark.parametrize("name", list(IMAGES))
def test_the_image_is_in_the_node_and_runs_as_its_user(name: str) -> None:
    assert TAG, "BEATLYTICA_IMAGE_TAG is not set (make cluster-test sets it)"
    image = f"beatlytica/beatlytica-{name}:{TAG}"
    assert f"docker.io/{image}" in containerd_images()
    uid, command, expected = IMAGES[name]
    # the pod's user is the image's own: the Dockerfile's USER, as a number the chart repeats
    phase, log = run_pod(
        JOBS_NAMESPACE,
        image,
        ["sh", "-c", 'id -u; exec "$@"', "sh", *command],
        user=uid,
        timeout=240,
    )
    assert phase == "Succeeded", log
    assert log.splitlines()[0] == str(uid)
    assert expected in log, log


def test_no_image_was_pulled() -> None:
    """Every container started from an image already in the node; none was pulled."""
    events = get_json("events", "--all-namespaces")["items"]
    pulled = [e["message"] for e in events if e.get("reason") == "Pulled"]
    assert any("already present on machine" in m for m in pulled)
    assert not [m for m in pulled if m.startswith("Successfully pulled")]


def test_only_this_tags_project_images_are_kept() -> None:
    """Every commit's images carry their own tag and the stores live in the cache, so
    `images.sh` prunes the other tags (engine and containerd): without it, runs fill the disk."""
    project = {i for i in containerd_images() if i.startswith("docker.io/beatlytica/beatlytica-")}
    assert project == {f"docker.io/beatlytica/beatlytica-{name}:{TAG}" for name in IMAGES}
    engine = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DOCKER_HOST": f"unix://{STATE / 'run' / 'docker.sock'}"},
    ).stdout.split()
    assert {i for i in engine if i.startswith("beatlytica/beatlytica-")} == {
        f"beatlytica/beatlytica-{name}:{TAG}" for name in IMAGES
    }
    assert "<none>:<none>" not in engine
