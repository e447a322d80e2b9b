"""kubectl for the cluster tests (tests/cluster on the local cluster, tests/e2e on kind and GKE):
one wrapper, bounded waits, throwaway pods, port-forwards."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

#: kubectl's context (default: the current one of KUBECONFIG)
CONTEXT = os.environ.get("BEATLYTICA_E2E_CONTEXT")


def kubectl(
    *args: str,
    namespace: str | None = None,
    timeout: float = 120,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    context = ["--context", CONTEXT] if CONTEXT else []
    scope = ["--namespace", namespace] if namespace else []
    return subprocess.run(
        ["kubectl", *context, *scope, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def ok(
    *args: str, namespace: str | None = None, timeout: float = 120, stdin: str | None = None
) -> str:
    """kubectl that must succeed; its stdout."""
    result = kubectl(*args, namespace=namespace, timeout=timeout, stdin=stdin)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr.strip()}"
    return result.stdout


def get_json(*args: str, namespace: str | None = None) -> dict[str, Any]:
    return json.loads(ok("get", *args, "-o", "json", namespace=namespace))


def apply(objects: list[dict[str, Any]] | dict[str, Any], namespace: str | None = None) -> None:
    items = objects if isinstance(objects, list) else [objects]
    ok(
        "apply",
        "-f",
        "-",
        namespace=namespace,
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
    )


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    every: float = 2,
    explain: Callable[[], str] | None = None,
) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` (and whatever
    ``explain`` says about the cluster's view) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    detail = f"\n{explain()}" if explain else ""
    pytest.fail(f"{what}: not reached within {timeout:.0f} s (last: {last!r}){detail}")


def pod_events(name: str, namespace: str) -> str:
    return kubectl(
        "get",
        "events",
        "--field-selector",
        f"involvedObject.name={name}",
        "-o",
        "custom-columns=REASON:.reason,MESSAGE:.message",
        namespace=namespace,
    ).stdout


def pod_phase(name: str, namespace: str) -> str:
    return kubectl("get", "pod", name, "-o", "jsonpath={.status.phase}", namespace=namespace).stdout


def restricted_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_manifest(
    name: str,
    image: str,
    command: list[str],
    *,
    user: int = 10001,
    env: list[dict[str, Any]] | None = None,
    service_account: str | None = None,
    pull_policy: str = "IfNotPresent",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": service_account is not None,
        "securityContext": {
            "runAsUser": user,
            "runAsGroup": user,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "main",
                "image": image,
                "imagePullPolicy": pull_policy,
                "command": command,
                "env": env or [],
                "securityContext": restricted_security(),
            }
        ],
    }
    if service_account:
        spec["serviceAccountName"] = service_account
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "beatlytica-tests"}},
        "spec": spec,
    }


def run_pod(
    namespace: str, image: str, command: list[str], *, timeout: float = 180, **options: Any
) -> tuple[str, str]:
    """Run a throwaway pod to completion; its phase and log. The pod is deleted after."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    apply(pod_manifest(name, image, command, **options), namespace=namespace)
    try:
        phase = wait_for(
            f"pod {name} ({image}) to finish",
            lambda: (
                pod_phase(name, namespace) in ("Succeeded", "Failed") and pod_phase(name, namespace)
            ),
            timeout,
            explain=lambda: pod_events(name, namespace),
        )
        return phase, kubectl("logs", name, namespace=namespace).stdout
    finally:
        kubectl("delete", "pod", name, "--wait=false", namespace=namespace)


@contextmanager
def port_forward(target: str, port: int, namespace: str) -> Iterator[str]:
    """`kubectl port-forward` of ``target`` to a free local port; yields its base URL."""
    context = ["--context", CONTEXT] if CONTEXT else []
    process = subprocess.Popen(
        ["kubectl", *context, "--namespace", namespace, "port-forward", target, f":{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline() if ready else ""
        local = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not local:
            process.kill()
            pytest.fail(f"port-forward {target}: {line!r} {process.communicate()[1]}")
        yield f"http://127.0.0.1:{local.group(1)}"
    finally:
        process.terminate()
        process.wait(10)


def service_account_kubeconfig(account: str, namespace: str, path: Path, hours: int = 2) -> Path:
    """A kubeconfig that authenticates as ``namespace/account`` by a fresh token only (a client
    certificate beside it would win), for the current cluster."""
    token = ok("create", "token", account, f"--duration={hours}h", namespace=namespace).strip()
    admin = json.loads(ok("config", "view", "--raw", "--minify", "-o", "json"))
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "cluster", "context": {"cluster": "cluster", "user": account}}],
        "current-context": "cluster",
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path
