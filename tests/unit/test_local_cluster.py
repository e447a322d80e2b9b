"""The local cluster's files, offline: one Kubernetes version everywhere, the stand-ins cover
every base image, the scripts are sound shell."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import KUBERNETES_VERSION, ROOT, project_versions
from tests.unit.test_images import external_bases

LOCAL = ROOT / "k8s" / "local"
STANDINS = ROOT / "images" / "standins"


def test_kind_runs_the_projects_kubernetes_version() -> None:
    cluster = yaml.safe_load((ROOT / "k8s" / "kind" / "cluster.yaml").read_text())
    images = {node["image"] for node in cluster["nodes"]}
    assert images == {f"kindest/node:v{KUBERNETES_VERSION}"}


def test_the_version_is_a_supported_minor() -> None:
    major, minor, _ = (int(p) for p in KUBERNETES_VERSION.split("."))
    assert (major, minor) >= (1, 35)  # 1.33 and 1.34 are past their end of life


def test_the_makefile_and_the_scripts_read_one_versions_file() -> None:
    assert "include k8s/local/versions.env" in (LOCAL / "cluster.mk").read_text()
    assert 'source "$LOCAL_DIR/versions.env"' in (LOCAL / "lib.sh").read_text()
    assert set(project_versions()) >= {"KUBERNETES_VERSION", "ETCD_VERSION", "COREDNS_VERSION"}


def standin_tags() -> dict[str, str]:
    tags = {}
    for dockerfile in STANDINS.glob("*/Dockerfile"):
        found = re.search(r"^# stand-in for: (\S+)$", dockerfile.read_text(), re.M)
        assert found, f"{dockerfile} names no upstream image"
        tags[found.group(1)] = dockerfile.parent.name
    return tags


def from_images(dockerfile: Path) -> set[str]:
    """The upstream images a Dockerfile starts FROM, by tag (a `FROM ${X_IMAGE}` names the
    ARG's default, which images.sh passes without its digest)."""
    return {b.partition("@sha256:")[0] for b in external_bases(dockerfile) if b != "scratch"}


def test_every_base_image_of_the_project_has_a_stand_in() -> None:
    tags = standin_tags()
    assert from_images(ROOT / "images" / "Dockerfile") <= set(tags)
    # and every upstream image the platform runs as it is, imported into the node
    values = yaml.safe_load((ROOT / "charts" / "beatlytica" / "values.yaml").read_text())
    deps = yaml.safe_load((ROOT / "charts" / "platform" / "Chart.yaml").read_text())["dependencies"]
    operator = next(d["version"] for d in deps if d["name"] == "spark-operator")
    runtime = {
        values["gcsEmulator"]["image"],
        values["airflow"]["database"]["image"],
        f"ghcr.io/kubeflow/spark-operator/controller:{operator}",
    }
    listed = re.search(r"^RUNTIME_STANDINS=\((.*)\)$", (LOCAL / "images.sh").read_text(), re.M)
    assert {tag for tag, folder in tags.items() if folder in listed.group(1).split()} == runtime


def test_stand_ins_build_only_on_the_debian_base_or_each_other() -> None:
    """The build order of images.sh: a stand-in starts FROM the Debian base or a stand-in built
    before it."""
    tags = standin_tags()
    order = (
        re.search(r"^STANDINS=\((.*)\)$", (LOCAL / "images.sh").read_text(), re.M).group(1).split()
    )
    assert sorted(order) == sorted(tags.values())
    built = {"debian:bookworm-slim"}
    for name in order:
        assert from_images(STANDINS / name / "Dockerfile") <= built, name
        built |= {tag for tag, folder in tags.items() if folder == name}


def test_no_user_image_is_built_on_the_machines_certificates() -> None:
    """The egress proxy's CA goes into the stand-in base only, never into a Dockerfile of ours."""
    text = (ROOT / "images" / "Dockerfile").read_text()
    assert "ca-certificates/" not in text and "UV_NATIVE_TLS" not in text


@pytest.mark.parametrize("script", sorted(p.name for p in LOCAL.glob("*.sh")))
def test_the_scripts_parse(script: str) -> None:
    assert subprocess.run(["bash", "-n", str(LOCAL / script)]).returncode == 0


def test_the_streams_event_time_window_covers_the_local_producers_speed() -> None:
    """On the local cluster the producers run 600× the wall clock: events whose time runs ahead
    of their Kafka timestamp by more than the window are quarantined, so the window must cover
    what two real hours of production reach (the cluster tier takes well under one)."""
    values = yaml.safe_load((ROOT / "k8s" / "local" / "values.yaml").read_text())["beatlytica"]
    speed = float(values["producer"]["speed"])
    hours = int(values["settings"]["extra"]["BEATLYTICA_STREAM_EVENT_TIME_MAX_AHEAD_HOURS"])
    assert hours >= speed * 2
