"""What the make targets plan, read from `make -n -B` (every prerequisite out of date, as in a
fresh clone): nothing they do not need."""

from __future__ import annotations

import subprocess

from tests.helpers import ROOT


def plan(target: str) -> str:
    result = subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_demo_installs_only_what_it_runs() -> None:
    demo = plan("demo")
    assert "uv sync" in demo and "dependency:copy-dependencies" in demo
    assert "beatlytica demo" in demo
    # no emulator, no browser, no Helm, no schema download, no cluster, no root
    for tool in ("fake-gcs-server", "apt-get", "chromium", "helm", "curl", "sudo", "cluster.sh"):
        assert tool not in demo, tool


def test_the_cluster_targets_go_through_the_local_cluster_scripts() -> None:
    assert "k8s/local/cluster.sh up" in plan("cluster-up")
    assert "k8s/local/cluster.sh down" in plan("cluster-down")
    test = plan("cluster-test")
    assert "k8s/local/images.sh project" in test and "k8s/local/deploy.sh" in test
    assert "pytest tests/cluster tests/e2e" in test
