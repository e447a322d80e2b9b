"""The local one-node cluster itself (k8s/local/): the version, idempotence, storage, DNS, the
egress guards and the harness's errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.cluster.conftest import KUBECONFIG, LOCAL, STATE
from tests.kube import apply, get_json, kubectl, ok, pod_events, pod_phase, run_pod, wait_for

VERSIONS = dict(
    line.split("=", 1)
    for line in (LOCAL / "versions.env").read_text().splitlines()
    if line and not line.startswith("#")
)
#: any image of ours with Python in it, for the network probes
PROBE_IMAGE = f"beatlytica/beatlytica-producer:{os.environ.get('BEATLYTICA_IMAGE_TAG', '')}"


@pytest.fixture(scope="module")
def namespace() -> str:
    name = f"local-{uuid.uuid4().hex[:6]}"
    ok("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


def python_pod(namespace: str, code: str, timeout: float = 120) -> tuple[str, str]:
    assert PROBE_IMAGE.rsplit(":", 1)[1], (
        "BEATLYTICA_IMAGE_TAG is not set (make cluster-test sets it)"
    )
    return run_pod(namespace, PROBE_IMAGE, ["python", "-c", code], timeout=timeout)


def test_the_node_is_ready_at_the_projects_kubernetes_version() -> None:
    node = get_json("nodes")["items"]
    assert len(node) == 1
    ready = {c["type"]: c["status"] for c in node[0]["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert node[0]["status"]["nodeInfo"]["kubeletVersion"] == f"v{VERSIONS['KUBERNETES_VERSION']}"
    server = ok("version", "-o", "json")
    assert f'"gitVersion": "v{VERSIONS["KUBERNETES_VERSION"]}"' in server


def test_the_kubelet_never_deletes_an_imported_image() -> None:
    # the images cannot be pulled again: neither image garbage collection nor disk-pressure
    # eviction (which reclaims images first, whatever its thresholds) may remove one
    (node,) = get_json("nodes")["items"]
    raw = ok("get", "--raw", f"/api/v1/nodes/{node['metadata']['name']}/proxy/configz")
    config = json.loads(raw)["kubeletconfig"]
    assert config["imageGCHighThresholdPercent"] == 100
    assert set(config["evictionHard"]) == {"memory.available"}
    assert config.get("evictionSoft", {}) == {}
    held = subprocess.run(
        ["ctr", "-a", str(STATE / "run" / "containerd.sock"), "-n", "k8s.io", "images", "ls", "-q"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert f"beatlytica.local/pause:{VERSIONS['PAUSE_VERSION']}" in held
    assert f"docker.io/{PROBE_IMAGE}" in held


def test_a_second_cluster_up_changes_nothing() -> None:
    pids = {p.name: p.read_text() for p in (STATE / "run").glob("*.pid")}
    rules = subprocess.run(
        ["iptables", "-S", "BEATLYTICA-EGRESS"], capture_output=True, text=True
    ).stdout
    result = subprocess.run(
        ["bash", str(LOCAL / "cluster.sh"), "up"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "the local cluster is up" in result.stdout
    assert {p.name: p.read_text() for p in (STATE / "run").glob("*.pid")} == pids
    assert (
        subprocess.run(
            ["iptables", "-S", "BEATLYTICA-EGRESS"], capture_output=True, text=True
        ).stdout
        == rules
    )


def test_the_default_storage_class_binds_a_claim(namespace: str) -> None:
    classes = get_json("storageclass")["items"]
    default = [
        c["metadata"]["name"]
        for c in classes
        if c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class")
        == "true"
    ]
    assert default == ["local-path"]
    apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "10Mi"}},
            },
        },
        namespace=namespace,
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "writer"},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsUser": 10001, "fsGroup": 10001},
            "containers": [
                {
                    "name": "main",
                    "image": PROBE_IMAGE,
                    "command": ["python", "-c", "open('/data/proof', 'w').write('kept')"],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        },
    }
    apply(pod, namespace=namespace)
    wait_for(
        "the writer pod to succeed",
        lambda: pod_phase("writer", namespace) == "Succeeded",
        120,
        explain=lambda: pod_events("writer", namespace),
    )
    claim = get_json("pvc", "data", namespace=namespace)
    assert claim["status"]["phase"] == "Bound"
    volume = get_json("pv", claim["spec"]["volumeName"])
    folder = Path(volume["spec"]["hostPath"]["path"])
    assert folder.is_relative_to(STATE / "storage")
    assert (folder / "proof").read_text() == "kept"


def test_cluster_dns_answers_the_clusters_names_and_forwards_nothing(namespace: str) -> None:
    code = (
        "import socket\n"
        "print('api', socket.gethostbyname('kubernetes.default.svc.cluster.local'))\n"
        "for name in ('pypi.org', 'deb.debian.org'):\n"
        "    try: print('outside', name, socket.gethostbyname(name))\n"
        "    except OSError as e: print('outside', name, 'unresolved')\n"
    )
    phase, log = python_pod(namespace, code)
    assert phase == "Succeeded", log
    assert "api 10.96.0.1" in log
    assert "outside pypi.org unresolved" in log and "outside deb.debian.org unresolved" in log


def test_a_pull_of_an_absent_image_fails_without_leaving_the_machine(namespace: str) -> None:
    apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "pull"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "main",
                        "image": "docker.io/library/busybox:1.36",
                        "imagePullPolicy": "Always",
                    }
                ],
            },
        },
        namespace=namespace,
    )
    events = wait_for(
        "a failed pull",
        lambda: "Failed" in pod_events("pull", namespace) and pod_events("pull", namespace),
        90,
    )
    # containerd went to its proxy, the closed loopback port, and nowhere else
    assert "proxyconnect tcp: dial tcp 127.0.0.1:9: connect: connection refused" in events
    assert pod_phase("pull", namespace) == "Pending"


def _drops() -> int:
    out = subprocess.run(
        ["iptables", "-L", "BEATLYTICA-EGRESS", "-v", "-x", "-n"], capture_output=True, text=True
    ).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if " DROP " in f" {line} ")


def test_a_pod_reaches_the_cluster_but_nothing_outside_the_machine(namespace: str) -> None:
    resolver = next(
        line.split()[1]
        for line in Path("/etc/resolv.conf").read_text().splitlines()
        if line.startswith("nameserver")
    )  # the machine's own upstream resolver: outside the machine
    code = (
        "import socket, sys\n"
        "def reach(host, port):\n"
        "    try: socket.create_connection((host, port), timeout=4).close(); return 'open'\n"
        "    except OSError as e: return 'closed'\n"
        "print('service', reach('kube-dns.kube-system.svc.cluster.local', 53))\n"
        f"print('resolver', reach('{resolver}', 53))\n"
        "print('internet', reach('151.101.0.223', 443))\n"
    )
    before = _drops()
    phase, log = python_pod(namespace, code)
    assert phase == "Succeeded", log
    assert "service open" in log  # the probe itself works: in-cluster traffic flows
    assert "resolver closed" in log and "internet closed" in log
    # and what stopped them is the egress guard, not luck
    assert _drops() > before


def test_the_harness_errors_are_one_line_naming_the_problem(tmp_path: Path) -> None:
    # not root
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "bash",
            str(LOCAL / "host.sh"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "beatlytica cluster: not root: the kubelet, containerd, the CNI bridge and iptables need "
        "root (run as root, or use kind: make kind-up)"
    ]
    # no cgroups: host.sh in a mount namespace where an empty tmpfs hides them
    hidden = "mount -t tmpfs none /sys/fs/cgroup && exec bash " + str(LOCAL / "host.sh")
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", "-c", hidden],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "beatlytica cluster: no cgroups: neither cgroup v1 (/sys/fs/cgroup/memory) "
        "nor v2 (/sys/fs/cgroup/cgroup.controllers) is mounted"
    )
    # a port taken: a second cluster beside the running one
    result = subprocess.run(
        ["bash", str(LOCAL / "cluster.sh"), "up"],
        capture_output=True,
        text=True,
        env={**os.environ, "BEATLYTICA_CLUSTER_DIR": str(tmp_path / "second")},
        timeout=120,
    )
    assert result.returncode != 0
    assert re.fullmatch(
        r"beatlytica cluster: port 6443 is taken by 'kube-apiserver': .*", result.stderr.strip()
    )
    # a build that cannot run: no Go on the PATH, an empty cache
    result = subprocess.run(
        ["bash", str(LOCAL / "build.sh")],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PATH": "/usr/bin:/bin",
            "BEATLYTICA_CACHE_DIR": str(tmp_path / "cache"),
        },
    )
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "beatlytica cluster: Go is not installed "
        "(needed to build Kubernetes from the Go module proxy)"
    )


def test_the_admin_kubeconfig_is_readable_by_its_owner_only() -> None:
    assert KUBECONFIG.stat().st_mode & 0o777 == 0o600
