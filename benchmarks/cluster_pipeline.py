"""The pipeline on the local cluster: how long from `helm install` to the first committed lake
file, how fast the SparkApplication drains a backlog on this node, and one beatlytica_hourly
run in pods against the same run with the local runtime.

    make cluster-deploy && .venv/bin/python -m benchmarks.cluster_pipeline [--backlog-s 120]

Needs the local cluster up with the release (make cluster-deploy); BEATLYTICA_IMAGE_TAG and
HELM as the Makefile sets them (make prints them). It reinstalls the release first, so the lake
starts empty. Last line: `install_to_first_file_s=… drain_events=… drain_s=…
drain_events_per_s=… hourly_pods_s=… hourly_local_s=…`
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KUBECONFIG", str(ROOT / ".beatlytica" / "cluster" / "kubeconfig"))
os.environ["PATH"] = f"{ROOT / '.beatlytica' / 'cluster' / 'bin'}{os.pathsep}{os.environ['PATH']}"

from tests.cluster import pipeline  # noqa: E402
from tests.kube import get_json, kubectl, ok, wait_for  # noqa: E402

NAMESPACE = "beatlytica"
HELM = os.environ.get("HELM", str(ROOT / ".tools" / "bin" / "helm"))


def reinstall() -> float:
    """helm uninstall, then deploy.sh; seconds from the install's start to a committed file."""
    subprocess.run([HELM, "uninstall", "beatlytica", "-n", NAMESPACE, "--wait"], check=True)
    wait_for(
        "the release's pods gone",
        lambda: (
            not get_json(
                "pods", "-l", "app.kubernetes.io/instance=beatlytica", namespace=NAMESPACE
            )["items"]
        ),
        300,
    )
    env = {**os.environ, "HELM": HELM, "PYTHON": sys.executable}
    started = time.monotonic()
    subprocess.run(["bash", str(ROOT / "k8s" / "local" / "deploy.sh")], check=True, env=env)
    wait_for("a committed lake file", pipeline.any_committed_file, 900, every=2)
    return time.monotonic() - started


def drain(backlog_s: float) -> tuple[int, float]:
    """Suspend the SparkApplication while the producers fill a backlog, resume it, and time the
    first micro-batch of every query (each takes its topic's whole backlog): events read by
    the raw queries, and the wall time from the first batch's start to the last one's end."""

    def suspend(value: bool) -> None:
        body = json.dumps({"spec": {"suspend": value}})
        ok(
            "patch",
            "sparkapplication",
            pipeline.APP,
            "--type=merge",
            "-p",
            body,
            namespace=NAMESPACE,
        )

    suspend(True)
    wait_for(
        "the driver gone",
        lambda: (
            not get_json(
                "pods",
                "-l",
                f"sparkoperator.k8s.io/app-name={pipeline.APP},spark-role=driver",
                namespace=NAMESPACE,
            )["items"]
        ),
        300,
    )
    time.sleep(backlog_s)
    suspend(False)
    wait_for(
        "RUNNING again",
        lambda: pipeline.app_status().get("applicationState", {}).get("state") == "RUNNING",
        600,
        every=2,
    )
    driver = pipeline.app_status()["driverInfo"]["podName"]
    first: dict[str, dict] = {}

    def first_batches() -> bool:
        log = kubectl("logs", driver, namespace=NAMESPACE).stdout
        for line in log.splitlines():
            if '"event": "micro-batch"' not in line:
                continue
            record = json.loads(line)
            first.setdefault(record["topic"], record)
        return len(first) == len(pipeline.topics())

    wait_for("the first batch of every query", first_batches, 900, every=5)
    rows = sum(r["input_rows"] for r in first.values())
    ends = [datetime.fromisoformat(r["time"]).timestamp() for r in first.values()]
    starts = [e - r["batch_duration_ms"] / 1000 for e, r in zip(ends, first.values(), strict=True)]
    return rows, max(ends) - min(starts)


def hourly(env: dict[str, str], day: datetime) -> float:
    started = time.monotonic()
    result = pipeline.run_dag(env, "beatlytica_hourly", day)
    assert pipeline.summary(result)["state"] == "success", result.stdout[-4000:]
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlog-s", type=float, default=120, help="seconds of backlog")
    args = parser.parse_args()
    first_file = reinstall()
    print(f"install_to_first_file_s={first_file:.0f}")
    rows, seconds = drain(args.backlog_s)
    print(f"drain_events={rows} drain_s={seconds:.1f}")
    home = Path(tempfile.mkdtemp(prefix="beatlytica-bench-"))
    env = pipeline.airflow_environment(home)
    day = pipeline.filled_day()
    in_pods = hourly(env, day)
    local = hourly(pipeline.local_runtime(env, home), day)
    print(
        f"install_to_first_file_s={first_file:.0f} drain_events={rows} drain_s={seconds:.1f} "
        f"drain_events_per_s={rows / seconds:.0f} hourly_pods_s={in_pods:.0f} "
        f"hourly_local_s={local:.0f}"
    )


if __name__ == "__main__":
    main()
