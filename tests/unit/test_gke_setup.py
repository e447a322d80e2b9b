"""k8s/gke/setup.sh, run against stand-ins of gcloud, bq and kubectl that record every call (GCP
cannot run here): the exact requests it would send for a new project. The cluster's nodes are
private and run as their own service account, the control plane answers AUTHORIZED_NETWORKS
only, and Google APIs resolve to the Private Google Access addresses the chart's
NetworkPolicies allow."""

from __future__ import annotations

import ipaddress
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.unit.test_helm_charts import CHART, environment_values, load_yaml

SETUP = ROOT / "k8s" / "gke" / "setup.sh"
PROJECT = "proj-sample-1"
NODES = f"beatlytica-nodes@{PROJECT}.iam.gserviceaccount.com"

#: every call is recorded; `describe` and `show` find nothing, so every resource is created
STUB = """#!/usr/bin/env bash
printf '%s' "$(basename "$0")" >> "$CALLS"
printf ' %q' "$@" >> "$CALLS"
printf '\\n' >> "$CALLS"
for arg in "$@"; do
  case "$arg" in describe|show) exit 1 ;; esac
done
"""


def run_setup(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("gcloud", "bq", "kubectl"):
        (bin_dir / tool).write_text(STUB)
        (bin_dir / tool).chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    result = subprocess.run(
        ["bash", str(SETUP)],
        env={
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "CALLS": str(calls),
            "GCP_PROJECT": PROJECT,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, calls.read_text().splitlines()


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    result, recorded = run_setup(
        tmp_path_factory.mktemp("gke"), AUTHORIZED_NETWORKS="203.0.113.7/32"
    )
    assert result.returncode == 0, result.stderr
    return recorded


def one_call(calls: list[str], *words: str) -> list[str]:
    """The one recorded call holding all of ``words``, as its arguments."""
    found = [shlex.split(c) for c in calls]
    found = [c for c in found if all(w in c for w in words)]
    assert len(found) == 1, (words, found)
    return found[0]


def test_the_control_plane_needs_authorized_networks(tmp_path: Path) -> None:
    result, recorded = run_setup(tmp_path)
    assert result.returncode != 0 and recorded == []
    assert "set AUTHORIZED_NETWORKS to the CIDRs" in result.stderr


def test_private_nodes_as_their_own_account(calls: list[str]) -> None:
    create = one_call(calls, "gcloud", "container", "clusters", "create")
    value = {flag: create[i + 1] for i, flag in enumerate(create[:-1]) if flag.startswith("--")}
    assert value["--service-account"] == NODES
    assert "--enable-private-nodes" in create and "--enable-dataplane-v2" in create
    assert "--enable-master-authorized-networks" in create
    assert value["--master-authorized-networks"] == "203.0.113.7/32"
    # the range the chart lets the Spark driver reach the API server in
    api_server = environment_values("gke")["beatlytica"]["networkPolicies"]["apiServerCidr"]
    assert value["--master-ipv4-cidr"] == api_server
    update = one_call(calls, "gcloud", "container", "clusters", "update")
    assert update[update.index("--master-authorized-networks") + 1] == "203.0.113.7/32"
    # the nodes: the minimal node role and image pulls, never the Compute default account
    assert not [c for c in calls if "compute@developer.gserviceaccount.com" in c]
    node_role = one_call(
        calls,
        "add-iam-policy-binding",
        f"serviceAccount:{NODES}",
        "--role",
        "roles/container.defaultNodeServiceAccount",
    )
    assert node_role[:2] == ["gcloud", "projects"]
    one_call(calls, "artifacts", "add-iam-policy-binding", f"serviceAccount:{NODES}")


def test_google_apis_resolve_to_the_addresses_the_network_policies_allow(calls: list[str]) -> None:
    cidrs = load_yaml(CHART / "values.yaml")["networkPolicies"]["googleApisCidrs"]
    allowed = {str(a) for c in cidrs for a in ipaddress.ip_network(c)}
    one_call(calls, "subnets", "update", "default", "--enable-private-ip-google-access")
    for zone, domain, a_record in (
        ("beatlytica-googleapis", "googleapis.com.", "private.googleapis.com."),
        ("beatlytica-pkg-dev", "pkg.dev.", "pkg.dev."),
    ):
        created = one_call(calls, "managed-zones", "create", zone)
        assert created[created.index("--dns-name") + 1] == domain
        assert created[created.index("--visibility") + 1] == "private"
        a = one_call(calls, "record-sets", "create", a_record, "A")
        assert set(a[a.index("--rrdatas") + 1].split(",")) == allowed
        cname = one_call(calls, "record-sets", "create", f"*.{domain}", "CNAME")
        assert cname[cname.index("--rrdatas") + 1] == a_record


WRITE_ROLES = {
    "roles/storage.objectAdmin",
    "roles/storage.objectUser",
    "roles/storage.objectCreator",
}


def bucket_bindings(calls: list[str], account: str) -> dict[str, str]:
    """role -> condition of the bucket's bindings of ``account``."""
    member = f"serviceAccount:{account}@{PROJECT}.iam.gserviceaccount.com"
    out = {}
    for call in calls:
        args = shlex.split(call)
        if args[1:4] == ["storage", "buckets", "add-iam-policy-binding"] and member in args:
            out[args[args.index("--role") + 1]] = args[args.index("--condition") + 1]
    return out


def prefix_condition(*prefixes: str) -> str:
    objects = f"projects/_/buckets/{PROJECT}-beatlytica/objects"
    return " || ".join(f'resource.name.startsWith("{objects}/{p}")' for p in prefixes)


def test_no_account_but_the_streams_may_change_the_lake(calls: list[str]) -> None:
    """The pod tasks write their load notes and dbt's docs, Airflow its task logs, the stream
    the lake: each only under its own prefix, so none of the others can delete the lake's files,
    commit logs or checkpoints."""
    lake = load_yaml(CHART / "values.yaml")["lake"]["prefix"]
    jobs = bucket_bindings(calls, "beatlytica-jobs")
    assert jobs["roles/storage.objectViewer"] == "None"
    write = jobs["roles/storage.objectUser"]
    assert write.startswith(f"expression={prefix_condition(f'{lake}/_loads/', f'{lake}/docs/')},")
    airflow = bucket_bindings(calls, "beatlytica-airflow")
    assert airflow["roles/storage.objectViewer"] == "None"
    assert airflow["roles/storage.objectAdmin"].startswith(
        f"expression={prefix_condition('airflow-logs/')},"
    )
    stream = bucket_bindings(calls, "beatlytica-stream")
    assert stream["roles/storage.objectAdmin"].startswith(
        f"expression={prefix_condition(f'{lake}/')},"
    )
    for account in ("beatlytica-jobs", "beatlytica-airflow", "beatlytica-stream"):
        for role, condition in bucket_bindings(calls, account).items():
            assert role not in WRITE_ROLES or condition != "None", (account, role)
    # the task logs' folder is Airflow's
    logs = environment_values("gke")["airflow"]["config"]["logging"]["remote_base_log_folder"]
    assert logs == "gs://my-gcp-project-beatlytica/airflow-logs"
