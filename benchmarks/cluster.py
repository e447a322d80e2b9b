"""The local cluster's costs: `make cluster-up` (cold or warm), the image builds, memory.

    .venv/bin/python -m benchmarks.cluster            # warm: the cache as it is
    .venv/bin/python -m benchmarks.cluster --cold     # first removes the cluster's cache
                                                      # (~/.cache/beatlytica: binaries, images)

It stops a running local cluster first, then times `make cluster-up`, `make cluster-images`
(each image's build time as it prints it) and `make cluster-deploy`, and sums the memory of
the running cluster: the resident set of its host processes (etcd, the control plane, kubelet,
kube-proxy, containerd, the shims) and the pods' working set. Last line:
`cluster_up_s=… images_s=… deploy_s=… host_rss_mib=… pods_mib=…`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".beatlytica" / "cluster"
CACHE = Path.home() / ".cache" / "beatlytica"


def timed(*target: str) -> float:
    """Run a make target; echo what it built and how long each took."""
    start = time.monotonic()
    result = subprocess.run(
        ["make", "--no-print-directory", *target],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    for found in re.finditer(r"^==> (built|imported) (.*)$", result.stdout, re.M):
        print(f"{' '.join(target)}: {found.group(1)} {found.group(2)}")
    return time.monotonic() - start


def host_rss_mib() -> float:
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if str(STATE) not in (proc / "cmdline").read_bytes().decode(errors="replace"):
                continue
            status = (proc / "status").read_text()
        except OSError:
            continue
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        total += int(found.group(1)) if found else 0
    return total / 1024


def pods_mib() -> float:
    """The pods' working set (usage less inactive page cache), as the kubelet counts it."""
    v1 = Path("/sys/fs/cgroup/memory/kubepods")
    if (v1 / "memory.usage_in_bytes").exists():
        usage = int((v1 / "memory.usage_in_bytes").read_text())
        stat = dict(line.split() for line in (v1 / "memory.stat").read_text().splitlines())
        return (usage - int(stat.get("total_inactive_file", 0))) / 2**20
    v2 = Path("/sys/fs/cgroup/kubepods")
    usage = int((v2 / "memory.current").read_text())
    stat = dict(line.split() for line in (v2 / "memory.stat").read_text().splitlines())
    return (usage - int(stat.get("inactive_file", 0))) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", action="store_true", help="remove the cluster's cache first")
    args = parser.parse_args()
    subprocess.run(["make", "--no-print-directory", "cluster-down"], cwd=ROOT, check=True)
    if args.cold:
        shutil.rmtree(CACHE, ignore_errors=True)
    up = timed("cluster-up")
    images = timed("cluster-images")
    deploy = timed("cluster-deploy")
    time.sleep(60)  # the release running for a minute: producers, broker, Postgres, dashboard
    print(
        f"cluster_up_s={up:.0f} images_s={images:.0f} deploy_s={deploy:.0f} "
        f"host_rss_mib={host_rss_mib():.0f} pods_mib={pods_mib():.0f}"
    )


if __name__ == "__main__":
    main()
