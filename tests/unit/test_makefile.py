"""What the make targets plan, read from `make -n -B` (every prerequisite out of date, as in a
fresh clone): nothing they do not need."""

from __future__ import annotations

import re
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


def test_lint_runs_every_linter_and_pre_commit_runs_the_same_targets() -> None:
    import yaml

    lint = plan("lint")
    for linter in ("ruff check .", "ruff format --check .", "bin/mypy", "sqlfluff lint"):
        assert linter in lint, linter
    assert "apt-get" not in lint and "helm" not in lint  # the venv is all it needs
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert all(repo["repo"] == "local" for repo in config["repos"])  # nothing fetched
    targets = [hook["entry"].split()[-1] for hook in hooks]
    assert targets == ["lint-python", "lint-sql"]
    assert {line for target in targets for line in plan(target).splitlines()} == set(
        lint.splitlines()
    )


def test_tests_without_the_upstream_files_say_what_they_need_in_one_line(tmp_path) -> None:
    """Where ../shared is missing, `make test` fetches the pinned upstream files; when that
    fails (no internet), one line says what is missing and where to put it."""
    urls = ["STRIMZI_URL=http://127.0.0.1:9/strimzi", "SPARK_OPERATOR_URL=http://127.0.0.1:9/spark"]
    command = ["make", "-s", "schemas", f"SCHEMAS_DIR={tmp_path}", *urls]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0
    # make's own "make: ***" (or "make[N]: ***" under another make, as in `make test`) aside
    errors = [
        line for line in result.stderr.splitlines() if not re.match(r"make(\[\d+\])?: ", line)
    ]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("make schemas: cannot download http://127.0.0.1:9/")
    assert "put them in ../shared/upstream/" in errors[0] and "BEATLYTICA_SHARED_DIR" in errors[0]
