"""Small helpers for running the real ``beatlytica`` command in tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEATLYTICA = Path(sys.executable).parent / "beatlytica"


def cli_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEATLYTICA_")}
    env["BEATLYTICA_LOG_FORMAT"] = "json"
    env.update(overrides)
    return env


def run_cli(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BEATLYTICA), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(**env),
        cwd=ROOT,
    )


@contextmanager
def serving(command: list[str], ready_url: str, timeout: float = 30) -> Iterator[None]:
    """Run a server (an emulator, a registry) until the block ends, once ``ready_url`` answers;
    fails with its name if it exits or does not answer within ``timeout`` seconds."""
    name = Path(command[0]).name
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(ready_url, timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, f"{name} exited"
                assert time.monotonic() < deadline, f"{name} did not start"
                time.sleep(0.2)
        yield
    finally:
        process.terminate()
        process.wait(10)


def project_versions() -> dict[str, str]:
    """k8s/local/versions.env: the project's Kubernetes version (kind, the local cluster and the
    offline schema checks) and the local cluster's component versions."""
    lines = (ROOT / "k8s" / "local" / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


#: the one Kubernetes version of the project
KUBERNETES_VERSION = project_versions()["KUBERNETES_VERSION"]
