"""The Helm charts, proven offline: Beatlytica's own chart is rendered with `helm template` (the
pinned Helm 4 of `make tools`) for each environment (kind, GKE) and with its own defaults, and
every object is checked: core kinds with kubernetes-validate (strict, for the GKE Kubernetes
version), custom resources against the pinned upstream CRDs (../shared/upstream, or
BEATLYTICA_SHARED_DIR after `make schemas`), and the deployment policies (resources, non-root,
capabilities, image tags, probes, RBAC, no literal credentials) over every container of every
rendered object. The umbrella chart's pins, lock and values are checked against the upstream
charts' documented values. Nothing here needs a cluster or the network.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from beatlytica.events import TOPIC_NAMES
from beatlytica.settings import ENV_PREFIX, Settings
from tests.conftest import SHARED
from tests.helpers import KUBERNETES_VERSION, ROOT

HELM = ROOT / ".tools" / "bin" / "helm"
CHART = ROOT / "charts" / "beatlytica"
PLATFORM = ROOT / "charts" / "platform"
SCHEMA = CHART / "values.schema.json"
#: the oldest GKE minor the charts support (the kind node image is the same version)
KUBE_VERSION = KUBERNETES_VERSION  # k8s/local/versions.env: kind, the local cluster, these checks
RELEASE, NAMESPACE = "beatlytica", "beatlytica"
ENVIRONMENTS = ("kind", "gke")
#: what the policies hold for: each environment, and the chart's own defaults (values.yaml alone)
DEFAULTS = "defaults"
VALUES_FILES = (DEFAULTS, *ENVIRONMENTS)
STRIMZI = SHARED / "upstream" / "strimzi-1.2.0"
SPARK_OPERATOR = SHARED / "upstream" / "spark-operator-2.5.2"
SETTINGS = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
#: settings that never come from values' settings.extra: each pod reads its Kafka user from its
#: KafkaUser Secret; the producer's delivery timeout comes from producer.deliveryTimeoutSeconds,
#: which also sizes the producer pod's grace period
PER_POD_SETTINGS = {
    f"{ENV_PREFIX}KAFKA_USERNAME",
    f"{ENV_PREFIX}KAFKA_PASSWORD",
    f"{ENV_PREFIX}KAFKA_DELIVERY_TIMEOUT_S",
}


# --- rendering ------------------------------------------------------------------------------------


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    if not HELM.exists():
        pytest.fail(f"{HELM} is missing: `make tools` installs it")
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, cwd=ROOT)


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of two values files: maps merge, everything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def environment_values(env: str) -> dict[str, Any]:
    """The umbrella's values for one environment: values.yaml with values-<env>.yaml on top."""
    return merge(load_yaml(PLATFORM / "values.yaml"), load_yaml(PLATFORM / f"values-{env}.yaml"))


class RenderError(Exception):
    pass


def render_chart(values: dict[str, Any], *extra: str) -> list[dict[str, Any]]:
    """`helm template` of charts/beatlytica with ``values``; the objects it renders."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(values, f)
        f.flush()
        result = helm(
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
            "--values",
            f.name,
            *extra,
        )
    if result.returncode:
        raise RenderError(result.stderr)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def chart_values(env: str) -> dict[str, Any]:
    """The values Beatlytica's chart gets on top of its values.yaml: the `beatlytica:` section of
    the umbrella's values for an environment, nothing for the defaults."""
    return {} if env == DEFAULTS else environment_values(env)["beatlytica"]


@functools.cache
def _rendered(env: str, attempt: int = 0) -> str:
    return json.dumps(render_chart(chart_values(env)))


def rendered(env: str) -> list[dict[str, Any]]:
    """The chart rendered for ``env`` (once per test session), as fresh objects."""
    return json.loads(_rendered(env))


def rendered_again(env: str) -> list[dict[str, Any]]:
    """A second, independent rendering: what is generated differs from the first, literals not."""
    return json.loads(_rendered(env, attempt=1))


def objects(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in objects(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def settings_configmaps(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in objects(docs, "ConfigMap") if d["metadata"]["name"] == "beatlytica-settings"]


def pod_templates(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(owner, pod spec) of every workload."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield doc, doc["spec"]["template"]["spec"]


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def docs(env: str) -> list[dict[str, Any]]:
    return rendered(env)


@pytest.fixture(scope="module", params=VALUES_FILES)
def any_env(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def any_docs(any_env: str) -> list[dict[str, Any]]:
    return rendered(any_env)


# --- custom resources against the pinned CRDs ---------------------------------------------------


def strict_schema(node: Any) -> Any:
    """A CRD's OpenAPI v3 schema as JSON Schema the way the API server applies it with strict field
    validation: unknown fields are errors, except under x-kubernetes-preserve-unknown-fields."""
    if isinstance(node, list):
        return [strict_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        out.pop("nullable")
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_validators() -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    """(apiVersion, kind) -> validator, for the served versions of the pinned CRDs."""
    files = [
        *sorted(STRIMZI.glob("*-Crd-*.yaml")),
        SPARK_OPERATOR / "sparkoperator.k8s.io_sparkapplications.yaml",
    ]
    validators = {}
    for path in files:
        crd = load_yaml(path)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version["served"]:
                schema = strict_schema(version["schema"]["openAPIV3Schema"])
                key = (f"{group}/{version['name']}", kind)
                validators[key] = jsonschema.Draft7Validator(schema)
    return validators


def validate_custom_resource(doc: dict[str, Any]) -> None:
    key = (doc["apiVersion"], doc["kind"])
    validators = crd_validators()
    assert key in validators, f"no pinned CRD serves {key}; pinned: {sorted(validators)}"
    validators[key].validate(doc)
    name = doc["metadata"]["name"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name) and len(name) <= 253, name


def is_custom(doc: dict[str, Any]) -> bool:
    return doc["apiVersion"].split("/")[0] in ("kafka.strimzi.io", "sparkoperator.k8s.io")


def test_the_pinned_crds_are_there() -> None:
    assert set(crd_validators()) >= {
        ("kafka.strimzi.io/v1", "Kafka"),
        ("kafka.strimzi.io/v1", "KafkaNodePool"),
        ("kafka.strimzi.io/v1", "KafkaTopic"),
        ("kafka.strimzi.io/v1", "KafkaUser"),
        ("sparkoperator.k8s.io/v1beta2", "SparkApplication"),
    }, (
        f"the upstream CRDs under {SHARED / 'upstream'}: outside the workplace `make schemas` "
        "downloads them; run the tests with BEATLYTICA_SHARED_DIR=.cache/shared"
    )


def make_variables(text: str) -> dict[str, str]:
    """The simple `NAME := value` assignments of a makefile, with $(NAME) references expanded."""
    variables: dict[str, str] = {}
    joined = text.replace("\\\n", " ")
    for name, value in re.findall(r"^([A-Z][A-Z0-9_]*) := (.*)$", joined, re.M):
        variables[name] = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m[1], m[0]), value)
    return variables


def pinned_upstream_files() -> dict[str, tuple[str, str]]:
    """`make schemas`' list: file under the shared folder -> (URL, sha256)."""
    variables = make_variables((ROOT / "k8s" / "deploy.mk").read_text())
    entries = variables["UPSTREAM_FILES"].split()
    return {file: (url, digest) for file, url, digest in (e.split(",") for e in entries)}


def test_make_schemas_fetches_exactly_the_files_the_tests_read() -> None:
    """`make schemas` downloads every file of the shared upstream folder, from the release tags of
    the versions the umbrella pins, checked against the sha256 of the files the tests read here
    (so the download is byte for byte what was validated)."""
    pinned = pinned_upstream_files()
    upstream = SHARED / "upstream"
    shared = {str(p.relative_to(SHARED)): p for p in upstream.rglob("*") if p.is_file()}
    assert set(pinned) == set(shared), f"make schemas and {upstream} list other files"
    for file, (url, digest) in pinned.items():
        assert hashlib.sha256(shared[file].read_bytes()).hexdigest() == digest, file
        assert url.startswith("https://raw.githubusercontent.com/"), url
    tags = {
        STRIMZI.name: "/strimzi/strimzi-kafka-operator/1.2.0/",
        SPARK_OPERATOR.name: "/kubeflow/spark-operator/v2.5.2/",
    }
    for file, (url, _) in pinned.items():
        assert tags[file.split("/")[1]] in url, f"{file}: {url} is not the pinned release tag"
        assert url.rsplit("/", 1)[1] == file.rsplit("/", 1)[1], url


def test_no_third_party_schema_is_committed() -> None:
    """The upstream files live outside the repository (../shared) or in the git-ignored cache
    `make schemas` fills; none is tracked."""
    git = shutil.which("git")
    if not git or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        [git, "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    assert not [f for f in tracked if f.startswith(".cache/")]
    crds = [
        f
        for f in tracked
        if f.endswith((".yaml", ".yml", ".json"))
        and (ROOT / f).is_file()
        and "kind: CustomResourceDefinition" in (ROOT / f).read_text(errors="replace")
    ]
    assert not crds, f"CRDs committed: {crds}"
    for path in (".cache/shared/upstream/strimzi-1.2.0/040-Crd-kafka.yaml", ".cache/shared/x"):
        ignored = subprocess.run([git, "check-ignore", "-q", path], cwd=ROOT)
        assert ignored.returncode == 0, f"{path} is not git-ignored"


def test_core_objects_pass_kubernetes_validate_strict(any_docs: list[dict[str, Any]]) -> None:
    core = [d for d in any_docs if not is_custom(d)]
    assert len(core) > 20
    for doc in core:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_custom_resources_pass_the_pinned_crds(any_docs: list[dict[str, Any]]) -> None:
    custom = [d for d in any_docs if is_custom(d)]
    assert {d["kind"] for d in custom} == {
        "Kafka",
        "KafkaNodePool",
        "KafkaTopic",
        "KafkaUser",
        "SparkApplication",
    }
    for doc in custom:
        validate_custom_resource(doc)


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("Kafka", ("spec", "kafka", "zookeeperConnect"), "zk:2181"),
        ("KafkaTopic", ("spec", "retentionMs"), 1),
        ("KafkaUser", ("spec", "authentication", "password"), "plain"),
        ("SparkApplication", ("spec", "driver", "memroy"), "1g"),
        ("SparkApplication", ("spec", "restartPolicy", "type"), "Sometimes"),
    ],
)
def test_a_wrong_field_in_a_custom_resource_fails(
    kind: str, path: tuple[str, ...], value: Any
) -> None:
    doc = objects(rendered("kind"), kind)[0]
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        validate_custom_resource(doc)


def test_an_unknown_field_in_a_core_object_fails() -> None:
    statefulset = one(rendered("kind"), "StatefulSet", "beatlytica-producer")
    statefulset["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, KUBE_VERSION, strict=True)


# --- values.schema.json and helm lint -----------------------------------------------------------


def test_helm_lint_strict_passes_for_every_values_file(any_env: str) -> None:
    """`helm lint --strict` (warnings fail) with each environment's values and the defaults."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(chart_values(any_env), f)
        f.flush()
        result = helm(
            "lint",
            "--strict",
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
            "--values",
            f.name,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def test_the_pinned_helm_is_helm_4() -> None:
    """The tests run the Helm `make tools` installs from the aws-cdk kubectl-layer wheel."""
    pinned = make_variables((ROOT / "k8s" / "deploy.mk").read_text())["HELM_VERSION"]
    assert pinned.startswith("4.")
    assert helm("version", "--short").stdout.strip().startswith(f"v{pinned}+")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kafka": {"clusterNmae": "x"}}, "clusterNmae"),
        ({"producer": {"replica": 3}}, "replica"),
        ({"settings": {"extra": {"BEATLYTICA_STREAM_TRIGER": "1 minute"}}}, "STREAM_TRIGER"),
        ({"settings": {"extra": {"BEATLYTICA_KAFKA_PASSWORD": "secret"}}}, "KAFKA_PASSWORD"),
        (
            {"settings": {"extra": {"BEATLYTICA_KAFKA_DELIVERY_TIMEOUT_S": "900"}}},
            "KAFKA_DELIVERY_TIMEOUT_S",
        ),
        ({"producer": {"deliveryTimeoutSeconds": 0}}, "deliveryTimeoutSeconds"),
        ({"producer": {"healthPort": 80}}, "healthPort"),
        ({"warehouse": {"backend": "postgres"}}, "warehouse/backend"),
        ({"warehouse": {"backend": "bigquery"}}, "project"),
        ({"stream": {"driver": {"memory": "1 GB"}}}, "1 GB"),
        ({"bogus": True}, "bogus"),
        ({"dashboard": {"replica": 2}}, "replica"),
        ({"dashboard": {"port": 80}}, "dashboard/port"),
        ({"dashboard": {"resources": {"limits": {"gpu": 1}}}}, "gpu"),
        ({"serviceAccounts": {"dashbaord": "x"}}, "dashbaord"),
    ],
)
def test_values_schema_rejects_what_is_not_documented(values: dict[str, Any], message: str) -> None:
    base = environment_values("kind")["beatlytica"]
    with pytest.raises(RenderError, match=message):
        render_chart(merge(base, values))


@pytest.mark.parametrize(
    ("path", "missing"),
    [
        (("producer", "resources"), "limits"),
        (("dashboard", "resources"), "requests"),
        (("gcsEmulator", "resources", "limits"), "cpu"),
        (("airflow", "database", "resources", "requests"), "memory"),
        (("kafka", "entityOperator", "resources", "limits"), "memory"),
    ],
)
def test_values_schema_requires_requests_and_limits(path: tuple[str, ...], missing: str) -> None:
    """Every `resources` value needs requests and limits, each with cpu and memory (a null
    value removes a key of the chart's defaults, as `--set key=null` does)."""
    values = merge(load_yaml(CHART / "values.yaml"), chart_values("kind"))
    node = values
    for key in path:
        node = node[key]
    node[missing] = None
    with pytest.raises(RenderError, match=f"missing propert(y|ies) '{missing}'"):
        render_chart(values)


def test_every_value_is_documented_above_its_key() -> None:
    """values.yaml documents every key with a comment above it (the Airflow chart's style); a
    key of a later list item is documented by the first, free-form maps by their parent."""
    free_form = {"config", "resources", "storage", "sparkConf", "extra", "global"}
    stack: list[tuple[int, str]] = []
    documented_paths: set[tuple[str, ...]] = set()
    undocumented = []
    lines = (CHART / "values.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)(- )?([A-Za-z][\w.-]*):", line)
        if not match:
            continue
        indent = len(match.group(1)) + (2 if match.group(2) else 0)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (*(key for _, key in stack), match.group(3))
        stack.append((indent, match.group(3)))
        if free_form & set(path[:-1]):
            continue
        if lines[i - 1].strip().startswith("#"):
            documented_paths.add(path)
        elif path not in documented_paths:
            undocumented.append(".".join(path))
    assert not undocumented, undocumented


def test_schema_settings_are_the_real_settings() -> None:
    extra = json.loads(SCHEMA.read_text())["properties"]["settings"]["properties"]["extra"]
    assert set(extra["propertyNames"]["enum"]) == SETTINGS - PER_POD_SETTINGS, (
        "settings.extra in values.schema.json lists other settings than beatlytica.settings; "
        "update it with `.venv/bin/python -m tests.unit.test_helm_charts`"
    )


def update_schema_settings() -> None:
    """Write the settings a values file may set into values.schema.json."""
    schema = json.loads(SCHEMA.read_text())
    extra = schema["properties"]["settings"]["properties"]["extra"]
    extra["propertyNames"]["enum"] = sorted(SETTINGS - PER_POD_SETTINGS)
    SCHEMA.write_text(json.dumps(schema, indent=2) + "\n")


# --- the settings ConfigMap ---------------------------------------------------------------------


def test_every_configmap_key_is_a_real_setting(docs: list[dict[str, Any]]) -> None:
    configmaps = settings_configmaps(docs)
    namespaces = {c["metadata"].get("namespace", NAMESPACE) for c in configmaps}
    assert namespaces == {NAMESPACE, "beatlytica-jobs"}
    for configmap in configmaps:
        keys = set(configmap["data"])
        assert keys <= SETTINGS, sorted(keys - SETTINGS)
        assert all(isinstance(v, str) for v in configmap["data"].values())


def test_the_configmap_is_a_valid_settings_object(docs: list[dict[str, Any]]) -> None:
    data = settings_configmaps(docs)[0]["data"]
    settings = Settings(**{k.removeprefix(ENV_PREFIX).lower(): v for k, v in data.items()})
    assert settings.runtime == "kubernetes"
    assert settings.topics == TOPIC_NAMES
    assert settings.lake.startswith("gs://"), "the lake and the checkpoints live in a bucket"
    assert settings.kafka_security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")  # kafka.tls
    assert settings.stream_trigger == "30 seconds"
    assert not set(data) & PER_POD_SETTINGS


def test_kind_uses_the_emulator_and_duckdb_without_gcp() -> None:
    docs = rendered("kind")
    data = settings_configmaps(docs)[0]["data"]
    assert data["BEATLYTICA_WAREHOUSE"] == "duckdb"
    assert data["BEATLYTICA_GCS_ENDPOINT"].startswith("http://beatlytica-fake-gcs.beatlytica.svc")
    assert data["BEATLYTICA_DUCKDB_PATH"].startswith("/var/lib/beatlytica/warehouse/")
    assert "BEATLYTICA_GCP_PROJECT" not in data
    assert one(docs, "Deployment", "beatlytica-fake-gcs")
    pvc = one(docs, "PersistentVolumeClaim", "beatlytica-warehouse")
    assert pvc["metadata"]["namespace"] == "beatlytica-jobs"
    assert not [sa for sa in objects(docs, "ServiceAccount") if sa["metadata"].get("annotations")]


def test_gke_uses_bigquery_and_the_bucket() -> None:
    docs = rendered("gke")
    data = settings_configmaps(docs)[0]["data"]
    assert data["BEATLYTICA_WAREHOUSE"] == "bigquery"
    assert data["BEATLYTICA_GCP_PROJECT"] == "my-gcp-project"
    assert data["BEATLYTICA_LAKE_URI"] == "gs://my-gcp-project-beatlytica/lake"
    assert not {"BEATLYTICA_GCS_ENDPOINT", "BEATLYTICA_DUCKDB_PATH"} & set(data)
    deployments = {d["metadata"]["name"] for d in objects(docs, "Deployment")}
    assert deployments == {"beatlytica-dashboard"}, "no emulator on GKE"
    assert not objects(docs, "PersistentVolumeClaim"), "no DuckDB volume on GKE"


def task_pod_templates(env: str) -> dict[str, dict[str, Any]]:
    """The pod template of each pod-task image, as the chart renders them for ``env``."""
    configmap = one(rendered(env), "ConfigMap", "beatlytica-pod-templates")
    return {
        key.removesuffix(".yaml"): yaml.safe_load(text) for key, text in configmap["data"].items()
    }


def write_pod_templates(env: str, folder: Path) -> Path:
    """The chart's pod templates as files in ``folder`` (BEATLYTICA_POD_TEMPLATE_DIR)."""
    folder.mkdir(parents=True, exist_ok=True)
    configmap = one(rendered(env), "ConfigMap", "beatlytica-pod-templates")
    for key, text in configmap["data"].items():
        (folder / key).write_text(text)
    return folder


def test_pod_templates_hold_the_pod_tasks_spec(any_env: str) -> None:
    """One template per pod-task image: the jobs namespace and account, no API token, the
    images' user, the settings, scratch space, the resources of the environment's values; with
    the image the factory adds, a valid pod."""
    values = merge(load_yaml(CHART / "values.yaml"), chart_values(any_env))
    templates = task_pod_templates(any_env)
    assert set(templates) == set(values["jobs"]["resources"]) == {"loader", "dbt"}
    for image, pod in templates.items():
        spec, (container,) = pod["spec"], pod["spec"]["containers"]
        assert pod["metadata"]["namespace"] == values["jobs"]["namespace"]
        assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == image
        assert spec["serviceAccountName"] == values["jobs"]["serviceAccount"]
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsUser"] == values["images"]["uid"]
        assert container["name"] == "base"  # the container KubernetesPodOperator merges into
        assert "image" not in container and "command" not in container  # the factory's
        assert container["envFrom"] == [{"configMapRef": {"name": "beatlytica-settings"}}]
        assert container["resources"] == values["jobs"]["resources"][image]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["scratch"] == "/tmp"
        container["image"] = f"beatlytica/beatlytica-{image}:1"
        kubernetes_validate.validate(pod, KUBE_VERSION, strict=True)


def test_pod_tasks_mount_the_warehouse_pvc_around_the_duckdb_path() -> None:
    """On kind the pod templates mount the warehouse PVC, which the chart creates in the jobs
    namespace, at the folder of BEATLYTICA_DUCKDB_PATH; on GKE (BigQuery) there is none."""
    docs = rendered("kind")
    data = settings_configmaps(docs)[0]["data"]
    settings = Settings(**{k.removeprefix(ENV_PREFIX).lower(): v for k, v in data.items()})
    duckdb = merge(load_yaml(CHART / "values.yaml"), chart_values("kind"))["warehouse"]["duckdb"]
    pvc = one(docs, "PersistentVolumeClaim", duckdb["claimName"])
    assert settings.duckdb_file.name == "warehouse.duckdb"
    for pod in task_pod_templates("kind").values():
        assert pvc["metadata"]["namespace"] == pod["metadata"]["namespace"]
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["warehouse"]["persistentVolumeClaim"] == {"claimName": duckdb["claimName"]}
        mounts = {m["name"]: m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
        assert Path(mounts["warehouse"]) == settings.duckdb_file.parent
    for pod in task_pod_templates("gke").values():
        assert [v["name"] for v in pod["spec"]["volumes"]] == ["scratch"]


def test_airflows_scheduler_mounts_the_pod_templates_where_the_settings_say(env: str) -> None:
    values = merge(load_yaml(CHART / "values.yaml"), chart_values(env))["jobs"]["podTemplates"]
    data = settings_configmaps(rendered(env))[0]["data"]
    assert data["BEATLYTICA_POD_TEMPLATE_DIR"] == values["mountPath"]
    scheduler = environment_values(env)["airflow"]["scheduler"]
    (volume,) = [v for v in scheduler["extraVolumes"] if v["name"] == "pod-templates"]
    assert volume["configMap"]["name"] == values["configMapName"]
    (mount,) = [m for m in scheduler["extraVolumeMounts"] if m["name"] == "pod-templates"]
    assert mount["mountPath"] == values["mountPath"] and mount["readOnly"] is True


def test_the_emulator_is_the_version_the_tests_run() -> None:
    version = re.search(r"^FAKE_GCS_VERSION := v(\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert version
    image = load_yaml(CHART / "values.yaml")["gcsEmulator"]["image"]
    assert image == f"fsouza/fake-gcs-server:{version.group(1)}"


# --- Kafka --------------------------------------------------------------------------------------


def test_topics_are_the_event_topics(docs: list[dict[str, Any]]) -> None:
    topics = objects(docs, "KafkaTopic")
    assert tuple(t["spec"]["topicName"] for t in topics) == TOPIC_NAMES
    for topic in topics:
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "beatlytica"
        assert topic["spec"]["partitions"] >= 1
        assert int(topic["spec"]["config"]["retention.ms"]) > 0


def test_an_environment_sets_only_what_differs_per_topic() -> None:
    """GKE: every topic gets topicDefaults; the overrides change the named topics only."""
    spec = {t["spec"]["topicName"]: t["spec"] for t in objects(rendered("gke"), "KafkaTopic")}
    overrides = chart_values("gke")["kafka"]["topicOverrides"]
    defaults = chart_values("gke")["kafka"]["topicDefaults"]
    assert set(overrides) < set(spec)
    for name, topic in spec.items():
        expected = {**defaults, **overrides.get(name, {})}
        assert (topic["partitions"], topic["replicas"], int(topic["config"]["retention.ms"])) == (
            expected["partitions"],
            expected["replicas"],
            expected["retentionMs"],
        )
    assert spec["listen_events"]["partitions"] == 6 and spec["auth_events"]["partitions"] == 3


def test_an_override_of_an_unknown_topic_fails_naming_it() -> None:
    values = {"kafka": {"topicOverrides": {"listen_event": {"partitions": 2}}}}
    message = re.escape("kafka.topicOverrides.listen_event: no such event topic")
    with pytest.raises(RenderError, match=message):
        render_chart(values)


def test_kafka_is_kraft_with_node_pools_and_no_zookeeper(docs: list[dict[str, Any]]) -> None:
    kafka = one(docs, "Kafka", "beatlytica")
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1"
    assert "zookeeper" not in json.dumps(kafka).lower()
    pools = objects(docs, "KafkaNodePool")
    assert {role for pool in pools for role in pool["spec"]["roles"]} == {"controller", "broker"}
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["authentication"]["type"] == "scram-sha-512"
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] <= brokers
    assert config["min.insync.replicas"] <= config["default.replication.factor"]
    for topic in objects(docs, "KafkaTopic"):
        assert topic["spec"]["replicas"] <= brokers


def test_users_have_only_their_acls(docs: list[dict[str, Any]]) -> None:
    users = {u["metadata"]["name"]: u["spec"] for u in objects(docs, "KafkaUser")}
    operations = {
        name: {op for acl in spec["authorization"]["acls"] for op in acl["operations"]}
        for name, spec in users.items()
    }
    assert operations == {
        "beatlytica-producer": {"Write", "Describe"},
        "beatlytica-stream": {"Read", "Describe"},
    }


def test_kafka_passwords_come_from_the_user_secrets(docs: list[dict[str, Any]]) -> None:
    """BEATLYTICA_KAFKA_PASSWORD is read from the Secret the user operator writes for the
    KafkaUser of the same name; no password is in the rendered chart."""
    producer = one(docs, "StatefulSet", "beatlytica-producer")["spec"]["template"]["spec"]
    driver = one(docs, "SparkApplication", "beatlytica-stream")["spec"]["driver"]
    for env, user in (
        (producer["containers"][0]["env"], "beatlytica-producer"),
        (driver["env"], "beatlytica-stream"),
    ):
        by_name = {e["name"]: e for e in env}
        assert by_name["BEATLYTICA_KAFKA_USERNAME"]["value"] == user
        secret = by_name["BEATLYTICA_KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": user, "key": "password"}


def test_on_gke_kafka_speaks_tls_and_its_clients_trust_the_cluster_ca(env: str) -> None:
    """GKE: the listener has TLS, the clients use SASL_SSL and trust Strimzi's cluster CA (the
    ca.crt of <cluster>-cluster-ca-cert, read from the Secret); kind: plain SASL, no CA."""
    docs = rendered(env)
    tls = env == "gke"
    (listener,) = one(docs, "Kafka", "beatlytica")["spec"]["kafka"]["listeners"]
    assert listener["tls"] is tls
    data = settings_configmaps(docs)[0]["data"]
    settings = Settings(**{k.removeprefix(ENV_PREFIX).lower(): v for k, v in data.items()})
    assert settings.kafka_security_protocol == ("SASL_SSL" if tls else "SASL_PLAINTEXT")
    producer = one(docs, "StatefulSet", "beatlytica-producer")["spec"]["template"]["spec"]
    driver = one(docs, "SparkApplication", "beatlytica-stream")["spec"]["driver"]
    for env_list in (producer["containers"][0]["env"], driver["env"]):
        ca = [e for e in env_list if e["name"] == "BEATLYTICA_KAFKA_CA_CERT"]
        expected = {"name": "beatlytica-cluster-ca-cert", "key": "ca.crt"}
        assert [e["valueFrom"]["secretKeyRef"] for e in ca] == ([expected] if tls else [])


# --- the producer: distinct replicas ------------------------------------------------------------


def producer_commands(docs: list[dict[str, Any]]) -> list[list[str]]:
    """The command line of each replica, with $(POD_INDEX) resolved as the kubelet does from the
    apps.kubernetes.io/pod-index label of pod <name>-<k>."""
    statefulset = one(docs, "StatefulSet", "beatlytica-producer")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    (pod_index,) = [e for e in container["env"] if e["name"] == "POD_INDEX"]
    label = pod_index["valueFrom"]["fieldRef"]["fieldPath"]
    assert label == "metadata.labels['apps.kubernetes.io/pod-index']"
    return [
        [arg.replace("$(POD_INDEX)", str(k)) for arg in container["args"]]
        for k in range(statefulset["spec"]["replicas"])
    ]


def test_producer_replicas_get_distinct_instances(docs: list[dict[str, Any]]) -> None:
    from beatlytica.cli import build_parser

    commands = producer_commands(docs)
    assert len(commands) >= 2
    parsed = [build_parser().parse_args(c) for c in commands]
    assert all(p.command == "generate" and p.sink == "kafka" and p.realtime for p in parsed)
    assert len({(p.seed, p.instance) for p in parsed}) == len(parsed)
    assert sorted(p.instance for p in parsed) == list(range(len(parsed)))


def test_producer_replicas_never_emit_the_same_event() -> None:
    """The rendered replicas' arguments, fed to the real generator for one simulated hour:
    no event, session or user is produced by two replicas."""
    from datetime import UTC, datetime, timedelta

    from beatlytica.cli import build_parser
    from beatlytica.generator.simulation import Simulation, SimulationConfig

    start = datetime(2026, 11, 1, tzinfo=UTC)
    seen: dict[str, set[Any]] = {"events": set(), "sessions": set(), "users": set()}
    for command in producer_commands(rendered("kind")):
        args = build_parser().parse_args(command)
        config = SimulationConfig(
            users=20,
            start=start,
            end=start + timedelta(hours=1),
            seed=args.seed,
            instance=args.instance,
        )
        mine: dict[str, set[Any]] = {"events": set(), "sessions": set(), "users": set()}
        for _, _, line in Simulation(config):
            event = json.loads(line)
            mine["events"].add(line)
            mine["sessions"].add(event.get("sessionId"))
            mine["users"].add(event.get("userId"))
        mine["sessions"].discard(None)
        mine["users"].discard(None)
        assert mine["events"], "the simulated hour produced nothing"
        for key in seen:
            assert not seen[key] & mine[key], f"two replicas share {key}"
            seen[key] |= mine[key]


def producer_settings(docs: list[dict[str, Any]]) -> Settings:
    """The settings the producer container runs with: the ConfigMap, then its own env."""
    statefulset = one(docs, "StatefulSet", "beatlytica-producer")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    env = dict(settings_configmaps(docs)[0]["data"])
    env.update({e["name"]: e["value"] for e in container["env"] if "value" in e})
    return Settings(
        **{k.removeprefix(ENV_PREFIX).lower(): v for k, v in env.items() if k in SETTINGS}
    )


def grace_and_flush(docs: list[dict[str, Any]]) -> tuple[float, float]:
    """The producer pod's terminationGracePeriodSeconds and the flush its SIGTERM starts."""
    from beatlytica.generator.sinks import flush_timeout_s

    pod = one(docs, "StatefulSet", "beatlytica-producer")["spec"]["template"]["spec"]
    flush = flush_timeout_s(producer_settings(docs).kafka_delivery_timeout_s)
    return pod["terminationGracePeriodSeconds"], flush


def test_the_grace_period_outlasts_the_producers_flush(docs: list[dict[str, Any]]) -> None:
    """The kubelet kills a pod at the end of its grace period: the producer's flush on SIGTERM
    (KafkaSink.close) must end first, or what it still holds is lost without a report."""
    grace, flush = grace_and_flush(docs)
    assert grace > flush, f"grace period {grace}s <= the producer's {flush}s flush"
    assert grace - flush >= 10, "leave the process time to stop its loop and exit"


@pytest.mark.parametrize("timeout", [1, 45, 600])
def test_the_grace_period_follows_the_delivery_timeout(timeout: int) -> None:
    values = merge(chart_values("kind"), {"producer": {"deliveryTimeoutSeconds": timeout}})
    docs = render_chart(values)
    grace, flush = grace_and_flush(docs)
    assert producer_settings(docs).kafka_delivery_timeout_s == timeout
    assert grace > flush


def test_the_producer_is_probed_on_its_health_endpoints(docs: list[dict[str, Any]]) -> None:
    from beatlytica.cli import build_parser

    statefulset = one(docs, "StatefulSet", "beatlytica-producer")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    (port,) = container["ports"]
    assert port["name"] == "health"
    for command in producer_commands(docs):
        assert build_parser().parse_args(command).health_port == port["containerPort"]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "health"}


def test_producer_rate_comes_from_values() -> None:
    values = environment_values("kind")["beatlytica"]
    values = merge(values, {"producer": {"replicas": 4, "users": 1234, "speed": 2.5}})
    statefulset = one(render_chart(values), "StatefulSet", "beatlytica-producer")
    args = statefulset["spec"]["template"]["spec"]["containers"][0]["args"]
    assert statefulset["spec"]["replicas"] == 4
    assert args[args.index("--users") + 1] == "1234" and args[args.index("--speed") + 1] == "2.5"


# --- the streaming job --------------------------------------------------------------------------


def test_stream_application(docs: list[dict[str, Any]]) -> None:
    app = one(docs, "SparkApplication", "beatlytica-stream")["spec"]
    assert app["type"] == "Python" and app["mode"] == "cluster"
    assert app["mainApplicationFile"] == "local:///opt/beatlytica/stream_events.py"
    assert app["sparkVersion"] == "4.2.0"
    assert app["image"].endswith("/beatlytica-spark:0.1.0")
    # a stream is always restarted (OnFailure's count never starts again in operator 2.5.2);
    # the retry intervals are what the operator waits, times the submissions so far
    policy = app["restartPolicy"]
    assert policy["type"] == "Always"
    assert 0 < policy["onFailureRetryInterval"] <= 30
    assert 0 < policy["onSubmissionFailureRetryInterval"] <= 30
    for role in ("driver", "executor"):
        pod = app[role]
        assert pod["cores"] >= 1 and pod["memory"] and pod["coreLimit"]
        assert pod["serviceAccount"] == "beatlytica-spark"
        assert {"configMapRef": {"name": "beatlytica-settings"}} in pod["envFrom"]
    assert app["sparkConf"]["spark.ui.prometheus.enabled"] == "true"
    assert app["driver"]["annotations"]["prometheus.io/scrape"] == "true"


def test_the_spark_application_runs_the_jvms_as_the_embedded_job_does(
    docs: list[dict[str, Any]],
) -> None:
    from spark_jobs.stream_events import JVM_OPTIONS

    app = one(docs, "SparkApplication", "beatlytica-stream")["spec"]
    assert app["driver"]["javaOptions"] == app["executor"]["javaOptions"] == JVM_OPTIONS


# --- RBAC: Airflow's pod tasks, and nothing more ------------------------------------------------


def test_airflow_may_only_run_pods_in_the_jobs_namespace(docs: list[dict[str, Any]]) -> None:
    role = one(docs, "Role", "beatlytica-pod-tasks")
    assert role["metadata"]["namespace"] == "beatlytica-jobs"
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"]) for r in role["rules"]}
    assert rules == {
        (("",), ("pods",)): {"create", "get", "list", "watch", "delete", "patch"},
        (("",), ("pods/log",)): {"get", "list"},
        (("",), ("events",)): {"get", "list", "watch"},
    }
    binding = one(docs, "RoleBinding", "beatlytica-pod-tasks")
    assert binding["metadata"]["namespace"] == "beatlytica-jobs"
    assert binding["roleRef"]["name"] == "beatlytica-pod-tasks"
    subjects = {(s["name"], s["namespace"]) for s in binding["subjects"]}
    assert subjects == {("airflow-scheduler", NAMESPACE), ("airflow-triggerer", NAMESPACE)}
    assert not objects(docs, "ClusterRole") and not objects(docs, "ClusterRoleBinding")


def test_the_rolebinding_names_the_airflow_service_accounts() -> None:
    """The subjects are the ServiceAccounts the umbrella gives the Airflow components."""
    values = environment_values("kind")
    named = {values["airflow"][c]["serviceAccount"]["name"] for c in ("scheduler", "triggerer")}
    assert set(values["beatlytica"]["airflow"]["serviceAccounts"]) == named


# --- Workload Identity, and no keys -------------------------------------------------------------


def workload_identity_bindings() -> set[tuple[str, str, str]]:
    """(namespace, Kubernetes ServiceAccount, Google SA) from k8s/gke/setup.sh."""
    script = (ROOT / "k8s" / "gke" / "setup.sh").read_text()
    names = {"$NAMESPACE": "beatlytica", "$JOBS_NAMESPACE": "beatlytica-jobs"}
    found = re.findall(r'^bind_workload_identity "(\$\w+)" (\S+) (\S+)$', script, re.M)
    return {(names[ns], ksa, gsa) for ns, ksa, gsa in found}


def test_gke_service_accounts_carry_their_bindings() -> None:
    annotated = set()
    for sa in objects(rendered("gke"), "ServiceAccount"):
        gsa = sa["metadata"].get("annotations", {}).get("iam.gke.io/gcp-service-account")
        if gsa:
            short, _, domain = gsa.partition("@")
            assert domain == "my-gcp-project.iam.gserviceaccount.com"
            namespace = sa["metadata"].get("namespace", NAMESPACE)
            annotated.add((namespace, sa["metadata"]["name"], short))
    airflow = environment_values("gke")["airflow"]
    for component in ("scheduler", "triggerer", "apiServer"):
        account = airflow[component]["serviceAccount"]
        gsa = account["annotations"]["iam.gke.io/gcp-service-account"]
        annotated.add((NAMESPACE, account["name"], gsa.partition("@")[0]))
    assert annotated == workload_identity_bindings()


def test_gke_script_creates_what_the_values_name() -> None:
    """k8s/gke/setup.sh creates the bucket, datasets and location values-gke.yaml uses (with the
    project in both the placeholder skaffold replaces)."""
    script = (ROOT / "k8s" / "gke" / "setup.sh").read_text()
    beatlytica = merge(load_yaml(CHART / "values.yaml"), environment_values("gke")["beatlytica"])
    project = beatlytica["gcp"]["project"]
    bucket = re.search(r"^BUCKET=\$\{BUCKET:-\$\{GCP_PROJECT\}(\S*)\}$", script, re.M)
    assert bucket and beatlytica["lake"]["bucket"] == f"{project}{bucket.group(1)}"
    location = re.search(r"^BQ_LOCATION=\$\{BQ_LOCATION:-(\w+)\}$", script, re.M)
    assert location and beatlytica["warehouse"]["bigquery"]["location"] == location.group(1)
    datasets = re.search(r"^for dataset in ([\w ]+); do$", script, re.M)
    assert datasets
    warehouse = beatlytica["warehouse"]
    assert set(datasets.group(1).split()) == {
        warehouse["rawSchema"],
        warehouse["bigquery"]["dataset"],
    }
    created = re.search(r"^for name in ([\w -]+); do$", script, re.M)
    assert created
    accounts = beatlytica["gcp"]["workloadIdentity"]["serviceAccounts"].values()
    assert set(accounts) <= set(created.group(1).split())


def test_no_json_keys_anywhere(docs: list[dict[str, Any]]) -> None:
    text = json.dumps(docs) + "".join(p.read_text() for p in PLATFORM.glob("values*.yaml"))
    for needle in (
        "GOOGLE_APPLICATION_CREDENTIALS",
        "private_key",
        "service_account.json",
        "keyfile",
    ):
        assert needle not in text
    assert "keys create" not in (ROOT / "k8s" / "gke" / "setup.sh").read_text()


# --- NetworkPolicies, PodDisruptionBudgets, pods ------------------------------------------------


def test_jobs_namespace_denies_by_default(docs: list[dict[str, Any]]) -> None:
    deny = one(docs, "NetworkPolicy", "default-deny")
    assert deny["metadata"]["namespace"] == "beatlytica-jobs"
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    tasks = one(docs, "NetworkPolicy", "beatlytica-pod-tasks")
    assert "ingress" not in tasks["spec"], "pod tasks accept no connections"


def test_every_pod_of_ours_is_covered_by_a_network_policy(docs: list[dict[str, Any]]) -> None:
    policies = objects(docs, "NetworkPolicy")
    for owner, _ in pod_templates(docs):
        namespace = owner["metadata"].get("namespace", NAMESPACE)
        labels = owner["spec"]["template"]["metadata"]["labels"]
        selected = [
            p
            for p in policies
            if p["metadata"].get("namespace", NAMESPACE) == namespace
            and p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
        ]
        assert selected, f"no NetworkPolicy selects {owner['kind']} {owner['metadata']['name']}"


def test_on_gke_no_pod_may_reach_the_internet() -> None:
    """Every egress rule on GKE names in-cluster pods, the control plane's private range, the
    metadata server or the Private Google Access addresses: none opens 0.0.0.0/0."""
    allowed = {"199.36.153.8/30", "169.254.169.254/32", "169.254.169.252/32", "172.16.0.32/28"}
    google = 0
    for policy in objects(rendered("gke"), "NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                if "ipBlock" in peer:
                    cidr = peer["ipBlock"]["cidr"]
                    assert cidr in allowed, (policy["metadata"]["name"], cidr)
                    google += cidr == "199.36.153.8/30"
    assert google >= 3  # the stream, the pod tasks, the dashboard
    # one fact: the control plane's range that setup.sh creates the cluster with
    setup = (ROOT / "k8s" / "gke" / "setup.sh").read_text()
    assert "MASTER_CIDR=172.16.0.32/28" in setup


def test_the_spark_drivers_pods_are_held_to_no_secrets(docs: list[dict[str, Any]]) -> None:
    """The admission policy that keeps the driver's pod rights from reaching the namespace's
    Secrets (proven on the live API server: tests/cluster/test_rbac.py) binds to the driver's
    account and the release namespace."""
    policy = one(docs, "ValidatingAdmissionPolicy", "beatlytica-stream-pods.beatlytica")["spec"]
    account = "system:serviceaccount:beatlytica:beatlytica-spark"
    assert policy["matchConditions"][0]["expression"] == f'request.userInfo.username == "{account}"'
    assert policy["failurePolicy"] == "Fail"
    assert len(policy["validations"]) == 4
    binding = one(docs, "ValidatingAdmissionPolicyBinding", "beatlytica-stream-pods.beatlytica")
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "beatlytica"
    }


def test_long_running_parts_have_disruption_budgets(docs: list[dict[str, Any]]) -> None:
    budgets = {p["metadata"]["name"]: p["spec"] for p in objects(docs, "PodDisruptionBudget")}
    assert budgets["beatlytica-producer"]["maxUnavailable"] == 1
    driver = budgets["beatlytica-stream-driver"]
    assert driver["minAvailable"] == 1
    assert driver["selector"]["matchLabels"]["spark-role"] == "driver"


# --- policies over every container of every rendered object -------------------------------------
#
# Each check returns its violations, one line each, so a test can show them all and the
# meta-tests below can prove a check catches what it should. Containers are those of every pod
# template (init containers included) and those our custom resources make the operators run:
# the Spark driver and executors, the Kafka nodes and Strimzi's entity operators.

#: workload kinds and where their pod spec is
POD_SPECS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
#: Roles nobody of ours is bound to: the built-in ones that open whole namespaces or the cluster
BROAD_ROLES = {"cluster-admin", "admin", "edit"}
#: environment variables that hold credentials: only ever from a Secret
CREDENTIAL_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|API_KEY|CREDENTIAL", re.I)


@dataclass
class Container:
    """One container as the policies see it, wherever it is declared."""

    where: str
    image: str | None
    resources: dict[str, Any]
    security: dict[str, Any]
    pod_security: dict[str, Any]
    env: list[dict[str, Any]] = field(default_factory=list)
    probes: dict[str, Any] = field(default_factory=dict)
    init: bool = False
    owner_kind: str = ""


def dig(node: Any, *path: str) -> Any:
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _name(doc: dict[str, Any]) -> str:
    meta = doc["metadata"]
    return f"{doc['kind']} {meta.get('namespace', NAMESPACE)}/{meta['name']}"


def containers(docs: list[dict[str, Any]]) -> list[Container]:
    found: list[Container] = []
    for doc in docs:
        kind, spec = doc["kind"], doc.get("spec", {})
        if kind in POD_SPECS:
            pod = dig(doc, *POD_SPECS[kind]) or {}
            for init, key in ((True, "initContainers"), (False, "containers")):
                for c in pod.get(key, []):
                    found.append(
                        Container(
                            f"{_name(doc)}: {key[:-1]} {c['name']}",
                            c.get("image"),
                            c.get("resources") or {},
                            c.get("securityContext") or {},
                            pod.get("securityContext") or {},
                            c.get("env") or [],
                            {p: c.get(p) for p in ("readinessProbe", "livenessProbe")},
                            init,
                            kind,
                        )
                    )
        elif kind == "SparkApplication":
            for role in ("driver", "executor"):
                r = spec.get(role, {})
                # the operator makes the pod: cpu request coreRequest (else cores), cpu limit
                # coreLimit, memory request = limit = memory + overhead
                resources = {
                    "requests": {
                        "cpu": r.get("coreRequest") or r.get("cores"),
                        "memory": r.get("memory"),
                    },
                    "limits": {"cpu": r.get("coreLimit"), "memory": r.get("memory")},
                }
                pod_security = r.get("podSecurityContext") or {}
                found.append(
                    Container(
                        f"{_name(doc)}: {role}",
                        r.get("image", spec.get("image")),
                        resources,
                        r.get("securityContext") or {},
                        pod_security,
                        r.get("env") or [],
                        owner_kind=kind,
                    )
                )
                for key in ("initContainers", "sidecars"):
                    for c in r.get(key, []):
                        found.append(
                            Container(
                                f"{_name(doc)}: {role} {key[:-1]} {c['name']}",
                                c.get("image"),
                                c.get("resources") or {},
                                c.get("securityContext") or {},
                                pod_security,
                                c.get("env") or [],
                                init=key == "initContainers",
                                owner_kind=kind,
                            )
                        )
        elif kind == "KafkaNodePool":
            # the image is the operator's (pinned by the Strimzi version), unless Kafka sets one
            found.append(
                Container(
                    f"{_name(doc)}: kafka",
                    None,
                    spec.get("resources") or {},
                    dig(spec, "template", "kafkaContainer", "securityContext") or {},
                    dig(spec, "template", "pod", "securityContext") or {},
                    owner_kind=kind,
                )
            )
        elif kind == "Kafka":
            operators = spec.get("entityOperator") or {}
            for operator in ("topicOperator", "userOperator"):
                if operator in operators:
                    template = operators.get("template") or {}
                    found.append(
                        Container(
                            f"{_name(doc)}: {operator}",
                            operators[operator].get("image"),
                            operators[operator].get("resources") or {},
                            dig(template, f"{operator}Container", "securityContext") or {},
                            dig(template, "pod", "securityContext") or {},
                            owner_kind=kind,
                        )
                    )
            if dig(spec, "kafka", "image"):
                found.append(
                    Container(
                        f"{_name(doc)}: kafka image",
                        spec["kafka"]["image"],
                        {},
                        {},
                        {},
                        owner_kind="image-only",
                    )
                )
    return found


def resource_violations(docs: list[dict[str, Any]]) -> list[str]:
    """Every container has cpu and memory requests and limits."""
    out = []
    for c in containers(docs):
        if c.owner_kind == "image-only":
            continue
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if not dig(c.resources, kind, resource):
                    out.append(f"{c.where}: no {resource} in {kind}")
    return out


def non_root_violations(docs: list[dict[str, Any]]) -> list[str]:
    """Every container runs as non-root: runAsNonRoot (its own or its pod's), never uid 0."""
    out = []
    for c in containers(docs):
        if c.owner_kind == "image-only":
            continue
        non_root = c.security.get("runAsNonRoot", c.pod_security.get("runAsNonRoot"))
        user = c.security.get("runAsUser", c.pod_security.get("runAsUser"))
        if non_root is not True:
            out.append(f"{c.where}: runAsNonRoot is not true")
        if user is not None and int(user) == 0:
            out.append(f"{c.where}: runs as uid 0")
    return out


def capability_violations(docs: list[dict[str, Any]]) -> list[str]:
    """Every container drops ALL capabilities, adds none, cannot escalate, is not privileged."""
    out = []
    for c in containers(docs):
        if c.owner_kind == "image-only":
            continue
        capabilities = c.security.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            out.append(f"{c.where}: does not drop ALL capabilities")
        if capabilities.get("add"):
            out.append(f"{c.where}: adds capabilities {capabilities['add']}")
        if c.security.get("allowPrivilegeEscalation") is not False:
            out.append(f"{c.where}: allowPrivilegeEscalation is not false")
        if c.security.get("privileged"):
            out.append(f"{c.where}: privileged")
    for doc in docs:
        pod = dig(doc, *POD_SPECS[doc["kind"]]) if doc["kind"] in POD_SPECS else None
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if pod and pod.get(key):
                out.append(f"{_name(doc)}: {key}")
    return out


def image_violations(docs: list[dict[str, Any]]) -> list[str]:
    """Every image is pinned: a tag other than `latest`, or a digest."""
    out = []
    for c in containers(docs):
        if c.image is None:
            continue
        if "@sha256:" in c.image:
            continue
        _, _, tag = c.image.rpartition("/")[2].partition(":")
        if not tag or tag == "latest":
            out.append(f"{c.where}: image {c.image} has no pinned tag")
    return out


def probe_violations(docs: list[dict[str, Any]]) -> list[str]:
    """Every container of a Deployment has a readiness and a liveness probe."""
    return [
        f"{c.where}: no {probe}"
        for c in containers(docs)
        if c.owner_kind == "Deployment" and not c.init
        for probe in ("readinessProbe", "livenessProbe")
        if not c.probes.get(probe)
    ]


def rbac_violations(docs: list[dict[str, Any]]) -> list[str]:
    """No wildcard verbs, resources or API groups; nothing bound to cluster-admin (nor to the
    built-in admin and edit roles)."""
    out = []
    for doc in docs:
        if doc["kind"] in ("Role", "ClusterRole"):
            for rule in doc.get("rules") or []:
                for key in ("verbs", "resources", "apiGroups", "resourceNames", "nonResourceURLs"):
                    if any("*" in item for item in rule.get(key) or []):
                        out.append(f"{_name(doc)}: wildcard in {key}: {rule[key]}")
            if doc.get("aggregationRule"):
                out.append(f"{_name(doc)}: aggregates other roles")
        if doc["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            if doc["roleRef"]["name"] in BROAD_ROLES:
                out.append(f"{_name(doc)}: binds {doc['roleRef']['name']}")
            for subject in doc.get("subjects") or []:
                if subject.get("name") in (
                    "system:masters",
                    "system:authenticated",
                    "system:unauthenticated",
                ):
                    out.append(f"{_name(doc)}: binds the group {subject['name']}")
    return out


def secret_violations(docs: list[dict[str, Any]], again: list[dict[str, Any]]) -> list[str]:
    """No credential is a literal of the chart or its values. A Secret the chart renders holds
    only what it generates at install (so two renderings differ in every value); credentials in
    containers' environment come from Secrets (valueFrom), never a literal value; ConfigMaps hold
    no credential-looking key."""
    out = []
    second = {_name(d): d for d in objects(again, "Secret")}
    for secret in objects(docs, "Secret"):
        where = _name(secret)
        if secret.get("stringData"):
            out.append(f"{where}: stringData is a literal")
        other = second.get(where, {}).get("data") or {}
        for key, value in (secret.get("data") or {}).items():
            if other.get(key) == value:
                out.append(f"{where}: {key} is the same in every rendering (a literal)")
    for c in containers(docs):
        for variable in c.env:
            if CREDENTIAL_NAME.search(variable["name"]) and "value" in variable:
                out.append(f"{c.where}: {variable['name']} is a literal, not from a Secret")
    for configmap in objects(docs, "ConfigMap"):
        for key in configmap.get("data") or {}:
            if CREDENTIAL_NAME.search(key):
                out.append(f"{_name(configmap)}: {key} in a ConfigMap")
    return out


def assert_none(violations: list[str]) -> None:
    assert not violations, "policy violations:\n" + "\n".join(violations)


def test_every_container_has_cpu_and_memory_requests_and_limits(
    any_docs: list[dict[str, Any]],
) -> None:
    assert len(containers(any_docs)) >= 8
    assert_none(resource_violations(any_docs))


def test_every_container_runs_as_non_root(any_docs: list[dict[str, Any]]) -> None:
    assert_none(non_root_violations(any_docs))
    for owner, spec in pod_templates(any_docs):
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", owner


def test_every_container_drops_all_capabilities(any_docs: list[dict[str, Any]]) -> None:
    assert_none(capability_violations(any_docs))


def test_no_image_is_latest_or_untagged(any_docs: list[dict[str, Any]]) -> None:
    assert_none(image_violations(any_docs))


def test_deployments_have_readiness_and_liveness_probes(any_docs: list[dict[str, Any]]) -> None:
    assert objects(any_docs, "Deployment")
    assert_none(probe_violations(any_docs))


def test_rbac_has_no_wildcards_and_no_cluster_admin(any_docs: list[dict[str, Any]]) -> None:
    assert objects(any_docs, "Role")
    assert_none(rbac_violations(any_docs))


def test_secrets_are_never_rendered_with_literal_credentials(any_env: str) -> None:
    docs = rendered(any_env)
    assert objects(docs, "Secret"), "the Airflow keys and database password are generated"
    assert_none(secret_violations(docs, rendered_again(any_env)))


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    if value is DELETE:
        del doc[path[-1]]
    else:
        doc[path[-1]] = value


DELETE = object()
POD = ("spec", "template", "spec")


@pytest.mark.parametrize(
    ("check", "kind", "name", "path", "value"),
    [
        (
            "resources",
            "StatefulSet",
            "beatlytica-producer",
            (*POD, "containers", 0, "resources", "limits", "cpu"),
            DELETE,
        ),
        (
            "resources",
            "Deployment",
            "beatlytica-fake-gcs",
            (*POD, "initContainers", 0, "resources"),
            DELETE,
        ),
        (
            "resources",
            "SparkApplication",
            "beatlytica-stream",
            ("spec", "executor", "coreLimit"),
            DELETE,
        ),
        ("resources", "KafkaNodePool", "dual", ("spec", "resources", "requests"), DELETE),
        (
            "non-root",
            "StatefulSet",
            "beatlytica-airflow-postgres",
            (*POD, "securityContext", "runAsNonRoot"),
            False,
        ),
        (
            "non-root",
            "Deployment",
            "beatlytica-dashboard",
            (*POD, "containers", 0, "securityContext", "runAsUser"),
            0,
        ),
        (
            "non-root",
            "SparkApplication",
            "beatlytica-stream",
            ("spec", "driver", "podSecurityContext", "runAsNonRoot"),
            DELETE,
        ),
        (
            "capabilities",
            "Deployment",
            "beatlytica-fake-gcs",
            (*POD, "initContainers", 0, "securityContext", "capabilities"),
            DELETE,
        ),
        (
            "capabilities",
            "Deployment",
            "beatlytica-dashboard",
            (*POD, "containers", 0, "securityContext", "allowPrivilegeEscalation"),
            True,
        ),
        (
            "capabilities",
            "Kafka",
            "beatlytica",
            (
                "spec",
                "entityOperator",
                "template",
                "userOperatorContainer",
                "securityContext",
                "capabilities",
                "drop",
            ),
            [],
        ),
        (
            "capabilities",
            "KafkaNodePool",
            "dual",
            ("spec", "template", "kafkaContainer", "securityContext", "capabilities", "add"),
            ["NET_ADMIN"],
        ),
        (
            "image",
            "Deployment",
            "beatlytica-dashboard",
            (*POD, "containers", 0, "image"),
            "beatlytica/beatlytica-dashboard:latest",
        ),
        (
            "image",
            "StatefulSet",
            "beatlytica-producer",
            (*POD, "containers", 0, "image"),
            "beatlytica/beatlytica-producer",
        ),
        (
            "image",
            "SparkApplication",
            "beatlytica-stream",
            ("spec", "image"),
            "apache/spark:latest",
        ),
        (
            "probes",
            "Deployment",
            "beatlytica-dashboard",
            (*POD, "containers", 0, "readinessProbe"),
            DELETE,
        ),
        (
            "probes",
            "Deployment",
            "beatlytica-fake-gcs",
            (*POD, "containers", 0, "livenessProbe"),
            DELETE,
        ),
        ("rbac", "Role", "beatlytica-pod-tasks", ("rules", 0, "verbs"), ["*"]),
        ("rbac", "Role", "beatlytica-stream-driver", ("rules", 1, "resources"), ["*"]),
        ("rbac", "RoleBinding", "beatlytica-pod-tasks", ("roleRef", "name"), "cluster-admin"),
        (
            "secrets",
            "StatefulSet",
            "beatlytica-producer",
            (*POD, "containers", 0, "env", 2),
            {"name": "BEATLYTICA_KAFKA_PASSWORD", "value": "x"},
        ),
        ("secrets", "ConfigMap", "beatlytica-settings", ("data", "BEATLYTICA_KAFKA_PASSWORD"), "x"),
        (
            "secrets",
            "Secret",
            "beatlytica-airflow-fernet-key",
            ("data", "fernet-key"),
            "bGl0ZXJhbA==",
        ),
    ],
)
def test_each_policy_catches_its_violation(
    check: str, kind: str, name: str, path: tuple[Any, ...], value: Any
) -> None:
    """The policy checks fail when they should: one rendered object broken, its violations (and
    only its) reported."""
    docs, again = rendered("kind"), rendered_again("kind")

    def first(found: list[dict[str, Any]]) -> dict[str, Any]:
        return next(d for d in objects(found, kind) if d["metadata"]["name"] == name)

    _set(first(docs), path, value)
    if check == "secrets" and kind == "Secret":
        _set(first(again), path, value)  # the same literal in every rendering
    found = {
        "resources": resource_violations,
        "non-root": non_root_violations,
        "capabilities": capability_violations,
        "image": image_violations,
        "probes": probe_violations,
        "rbac": rbac_violations,
        "secrets": lambda d: secret_violations(d, again),
    }[check](docs)
    assert found and all(f"/{name}:" in line for line in found), found


def test_images_are_ours_and_pulled_if_not_present(env: str, docs: list[dict[str, Any]]) -> None:
    registry = environment_values(env)["beatlytica"]["images"]["registry"]
    ours = re.compile(rf"^{re.escape(registry)}/beatlytica-(producer|spark|dashboard):0\.1\.0$")
    app = one(docs, "SparkApplication", "beatlytica-stream")["spec"]
    assert ours.match(app["image"]) and app["imagePullPolicy"] == "IfNotPresent"
    for kind, name in (
        ("StatefulSet", "beatlytica-producer"),
        ("Deployment", "beatlytica-dashboard"),
    ):
        spec = one(docs, kind, name)["spec"]["template"]["spec"]
        assert ours.match(spec["containers"][0]["image"])
        assert spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert settings_configmaps(docs)[0]["data"]["BEATLYTICA_IMAGE_REGISTRY"] == registry
    for _, spec in pod_templates(docs):
        for container in spec.get("initContainers", []) + spec["containers"]:
            assert "bitnami" not in container["image"]


# --- the dashboard ------------------------------------------------------------------------------


def dashboard_values(env: str) -> dict[str, Any]:
    return merge(load_yaml(CHART / "values.yaml"), chart_values(env))


def test_dashboard_serves_streamlit_next_to_the_warehouse(any_env: str) -> None:
    """A Deployment in the jobs namespace (where the warehouse and its settings are) running
    `beatlytica dashboard --serve` on the values' port, probed on Streamlit's health endpoint,
    behind a Service of the same port, as its own ServiceAccount without an API token."""
    from beatlytica.cli import build_parser

    docs, values = rendered(any_env), dashboard_values(any_env)
    jobs, port = values["jobs"]["namespace"], values["dashboard"]["port"]
    deployment = one(docs, "Deployment", "beatlytica-dashboard")
    assert deployment["metadata"]["namespace"] == jobs
    assert deployment["spec"]["replicas"] == values["dashboard"]["replicas"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = build_parser().parse_args(container["args"])
    assert (args.command, args.serve, args.port) == ("dashboard", True, port)
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/_stcore/health", "port": "http"}
    assert container["envFrom"] == [{"configMapRef": {"name": "beatlytica-settings"}}]
    assert [c for c in settings_configmaps(docs) if c["metadata"].get("namespace") == jobs]
    assert container["resources"] == values["dashboard"]["resources"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    service = one(docs, "Service", "beatlytica-dashboard")
    assert service["metadata"]["namespace"] == jobs
    assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    account = one(docs, "ServiceAccount", pod["serviceAccountName"])
    assert account["metadata"]["namespace"] == jobs
    assert pod["automountServiceAccountToken"] is False
    assert account["automountServiceAccountToken"] is False


def test_dashboard_reads_the_duckdb_warehouse_read_only_on_kind() -> None:
    """On kind the dashboard mounts the claim the pod tasks write, read-only, at the folder of
    BEATLYTICA_DUCKDB_PATH, the file the app opens (read-only too: data.load)."""
    docs = rendered("kind")
    data = settings_configmaps(docs)[0]["data"]
    settings = Settings(**{k.removeprefix(ENV_PREFIX).lower(): v for k, v in data.items()})
    pod = one(docs, "Deployment", "beatlytica-dashboard")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    claim_name = task_pod_templates("kind")["loader"]["spec"]["volumes"][1]
    claim_name = claim_name["persistentVolumeClaim"]["claimName"]
    assert volume["persistentVolumeClaim"] == {"claimName": claim_name, "readOnly": True}
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    assert Path(mount["mountPath"]) == settings.duckdb_file.parent
    claim = one(docs, "PersistentVolumeClaim", claim_name)
    deployment = one(docs, "Deployment", "beatlytica-dashboard")
    assert claim["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert "read_only=True" in (ROOT / "src/beatlytica/dashboard/data.py").read_text()


def test_dashboard_reads_bigquery_as_its_own_google_service_account() -> None:
    """On GKE no volume: the ServiceAccount is bound to the dashboard's Google service account,
    which k8s/gke/setup.sh lets read the marts dataset and run query jobs, nothing else."""
    docs, values = rendered("gke"), dashboard_values("gke")
    pod = one(docs, "Deployment", "beatlytica-dashboard")["spec"]["template"]["spec"]
    assert not [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    account = one(docs, "ServiceAccount", pod["serviceAccountName"])
    gsa = values["gcp"]["workloadIdentity"]["serviceAccounts"]["dashboard"]
    annotation = account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert annotation == f"{gsa}@my-gcp-project.iam.gserviceaccount.com"
    script = (ROOT / "k8s" / "gke" / "setup.sh").read_text()
    roles = re.findall(rf"^dataset_role {gsa} (\w+) (\S+)$", script, re.M)
    assert roles == [(values["warehouse"]["bigquery"]["dataset"], "roles/bigquery.dataViewer")]
    project_roles = re.findall(rf"serviceAccount:\$\(gsa {gsa}\)\" --role (\S+)", script)
    assert project_roles == ["roles/bigquery.jobUser"]
    assert not re.search(rf"^bucket_role {gsa} ", script, re.M), "the dashboard reads no bucket"


def test_dashboard_network_policy_admits_its_port(any_env: str) -> None:
    """The jobs namespace denies everything: the dashboard's policy opens its port to clients,
    and lets it resolve names and, on BigQuery, reach the Google APIs."""
    docs, values = rendered(any_env), dashboard_values(any_env)
    policy = one(docs, "NetworkPolicy", "beatlytica-dashboard")
    assert policy["metadata"]["namespace"] == values["jobs"]["namespace"]
    labels = one(docs, "Deployment", "beatlytica-dashboard")["spec"]["template"]["metadata"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels["labels"].items()
    assert policy["spec"]["ingress"] == [
        {"ports": [{"protocol": "TCP", "port": values["dashboard"]["port"]}]}
    ]
    egress_ports = {
        (p["protocol"], p["port"])
        for rule in policy["spec"]["egress"]
        for p in rule.get("ports", [])
    }
    assert {("UDP", 53), ("TCP", 53)} <= egress_ports
    assert (("TCP", 443) in egress_ports) == (values["warehouse"]["backend"] == "bigquery")


def test_pod_task_policy_selects_the_pod_tasks_only() -> None:
    """The pod tasks' egress policy selects the labels of the pod templates, so the dashboard in
    the same namespace gets only its own policy's flows."""
    for env in ENVIRONMENTS:
        selector = one(rendered(env), "NetworkPolicy", "beatlytica-pod-tasks")["spec"]
        for pod in task_pod_templates(env).values():
            labels = pod["metadata"]["labels"]
            assert selector["podSelector"]["matchLabels"].items() <= labels.items()
        dashboard = one(rendered(env), "Deployment", "beatlytica-dashboard")
        assert not selector["podSelector"]["matchLabels"].items() <= (
            dashboard["spec"]["template"]["metadata"]["labels"].items()
        )


@pytest.mark.parametrize("replicas", [1, 2, 3])
def test_dashboard_gets_a_disruption_budget_with_more_than_one_replica(replicas: int) -> None:
    docs = render_chart(merge(chart_values("kind"), {"dashboard": {"replicas": replicas}}))
    budgets = [
        p
        for p in objects(docs, "PodDisruptionBudget")
        if p["metadata"]["name"] == "beatlytica-dashboard"
    ]
    if replicas == 1:
        assert not budgets
        return
    (budget,) = budgets
    assert budget["metadata"]["namespace"] == "beatlytica-jobs"
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "dashboard"


def test_dashboard_can_be_switched_off() -> None:
    docs = render_chart(merge(chart_values("kind"), {"dashboard": {"enabled": False}}))
    assert not [d for d in docs if d["metadata"]["name"] == "beatlytica-dashboard"]


# --- the umbrella chart -------------------------------------------------------------------------


def helm_lock_digest(chart: dict[str, Any], lock: dict[str, Any]) -> str:
    """Chart.lock's digest as Helm computes it (resolver.HashReq): sha256 of the JSON of the
    dependencies in Chart.yaml and in the lock, with Go's field order and omitempty."""

    def dependency(d: dict[str, Any]) -> dict[str, Any]:
        out = {"name": d["name"]}
        if d.get("version"):
            out["version"] = d["version"]
        out["repository"] = d.get("repository", "")
        for key in ("condition", "tags", "enabled", "import-values", "alias"):
            if d.get(key):
                out[key] = d[key]
        return out

    data = [
        [dependency(d) for d in chart["dependencies"]],
        [dependency(d) for d in lock["dependencies"]],
    ]
    return "sha256:" + hashlib.sha256(json.dumps(data, separators=(",", ":")).encode()).hexdigest()


def test_umbrella_pins_the_upstream_charts() -> None:
    deps = {d["name"]: d for d in load_yaml(PLATFORM / "Chart.yaml")["dependencies"]}
    assert {n: (d["version"], d["repository"]) for n, d in deps.items()} == {
        "strimzi-kafka-operator": ("1.2.0", "oci://quay.io/strimzi-helm"),
        "spark-operator": ("2.5.2", "https://kubeflow.github.io/spark-operator"),
        "airflow": ("1.22.0", "https://airflow.apache.org"),
        "beatlytica": (load_yaml(CHART / "Chart.yaml")["version"], "file://../beatlytica"),
    }
    # the pins are the versions whose CRDs and values the tests read
    assert STRIMZI.name == f"strimzi-{deps['strimzi-kafka-operator']['version']}"
    assert SPARK_OPERATOR.name == f"spark-operator-{deps['spark-operator']['version']}"


def test_chart_lock_is_in_sync() -> None:
    chart, lock = load_yaml(PLATFORM / "Chart.yaml"), load_yaml(PLATFORM / "Chart.lock")
    pinned = [(d["name"], d["version"], d["repository"]) for d in chart["dependencies"]]
    assert [(d["name"], d["version"], d["repository"]) for d in lock["dependencies"]] == pinned
    assert lock["digest"] == helm_lock_digest(chart, lock)


def helm_dependency_build(tmp_path: Path, lock: str | None = None) -> str:
    """`helm dependency build` of a copy of the umbrella (with ``lock`` as its Chart.lock), with
    no repositories configured and no network; its stderr."""
    shutil.copytree(PLATFORM, tmp_path / "platform")
    shutil.copytree(CHART, tmp_path / "beatlytica")
    if lock is not None:
        (tmp_path / "platform" / "Chart.lock").write_text(lock)
    result = subprocess.run(
        [str(HELM), "dependency", "build", "platform"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0, "the upstream repositories cannot be reached here"
    return result.stderr


def test_helm_accepts_the_lock(tmp_path: Path) -> None:
    """`helm dependency build` checks the lock before it needs the network: offline it fails for
    the repositories it has no definition of, never for a lock out of sync with Chart.yaml."""
    stderr = helm_dependency_build(tmp_path)
    assert "out of sync" not in stderr, stderr
    assert "no repository definition" in stderr, stderr


def test_helm_rejects_a_lock_out_of_sync(tmp_path: Path) -> None:
    """...and the same Helm does check it: a lock of other dependencies is refused."""
    lock = (PLATFORM / "Chart.lock").read_text().replace("version: 2.5.2", "version: 2.5.1")
    stderr = helm_dependency_build(tmp_path, lock)
    assert "out of sync" in stderr, stderr


def local_umbrella(tmp_path: Path) -> Path:
    """A copy of the umbrella with only its local dependency, built (`helm dependency build`
    of a `file://` chart works offline; the upstream charts cannot be fetched here)."""
    platform = tmp_path / "platform"
    shutil.copytree(PLATFORM, platform)
    shutil.copytree(CHART, tmp_path / "beatlytica")
    chart = load_yaml(platform / "Chart.yaml")
    chart["dependencies"] = [d for d in chart["dependencies"] if d["name"] == "beatlytica"]
    (platform / "Chart.yaml").write_text(yaml.safe_dump(chart))
    (platform / "Chart.lock").unlink()
    built = helm("dependency", "build", str(platform))
    assert built.returncode == 0, built.stderr
    return platform


def test_umbrella_renders_beatlytica_with_each_environment(tmp_path: Path) -> None:
    """The umbrella with only its local dependency: its values files reach Beatlytica's chart
    through the umbrella, `global` included."""
    platform = local_umbrella(tmp_path)
    for env in ENVIRONMENTS:
        result = helm(
            "template",
            RELEASE,
            str(platform),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
            "--values",
            str(platform / f"values-{env}.yaml"),
        )
        assert result.returncode == 0, result.stderr
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        expected = {(d["kind"], d["metadata"]["name"]) for d in rendered(env)}
        assert {(d["kind"], d["metadata"]["name"]) for d in docs} == expected


def test_umbrella_lints_strict_with_each_environment(tmp_path: Path) -> None:
    """`helm lint --strict` of the umbrella (with its local dependency) and each values file."""
    platform = local_umbrella(tmp_path)
    for env in ENVIRONMENTS:
        result = helm(
            "lint",
            "--strict",
            str(platform),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
            "--values",
            str(platform / f"values-{env}.yaml"),
        )
        assert result.returncode == 0, result.stdout + result.stderr


def leaf_paths(values: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(values, dict) and values:
        for key, value in values.items():
            yield from leaf_paths(value, (*prefix, str(key)))
    else:
        yield prefix


def documented(path: tuple[str, ...], upstream: Any) -> bool:
    """Whether ``path`` is a key of the upstream values: every step exists, and the first step
    into a free-form map (`{}` upstream: annotations, resources, ...) ends the check."""
    node = upstream
    for key in path:
        if isinstance(node, dict) and not node:
            return True
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


@pytest.mark.parametrize(
    ("subchart", "upstream"),
    [
        ("strimzi-kafka-operator", STRIMZI / "values.yaml"),
        ("spark-operator", SPARK_OPERATOR / "values.yaml"),
    ],
)
def test_operator_values_are_upstream_keys(env: str, subchart: str, upstream: Path) -> None:
    reference = load_yaml(upstream)
    unknown = [
        ".".join(p)
        for p in leaf_paths(environment_values(env)[subchart])
        if not documented(p, reference)
    ]
    assert not unknown, f"not in {upstream}: {unknown}"


def test_spark_operator_runs_our_namespace_with_its_webhook() -> None:
    values = environment_values("kind")["spark-operator"]
    assert values["webhook"]["enable"] is True
    skaffold = load_yaml(ROOT / "skaffold.yaml")
    namespaces = {
        release["namespace"]
        for profile in skaffold["profiles"]
        for release in profile["deploy"]["helm"]["releases"]
    }
    assert values["spark"]["jobNamespaces"] == sorted(namespaces) == [NAMESPACE]


#: the Airflow chart 1.22.0 values this project sets, as documented in the chart's values.yaml
#: (https://github.com/apache/airflow/blob/helm-chart/1.22.0/chart/values.yaml); `config.*` is
#: airflow.cfg and is checked against Airflow's own configuration reference instead
AIRFLOW_CHART_KEYS = {
    "airflowVersion",
    "defaultAirflowRepository",
    "defaultAirflowTag",
    "images.airflow.repository",
    "images.airflow.tag",
    "images.airflow.pullPolicy",
    "executor",
    "allowPodLaunching",
    "allowJobLaunching",
    "multiNamespaceMode",
    "postgresql.enabled",
    "data.metadataSecretName",
    "fernetKeySecretName",
    "apiSecretKeySecretName",
    "jwtSecretName",
    "redis.enabled",
    "statsd.enabled",
    "pgbouncer.enabled",
    "dags.persistence.enabled",
    "dags.gitSync.enabled",
    "extraEnvFrom",
    "env",
    "networkPolicies.enabled",
    "workers.persistence.enabled",
    "triggerer.persistence.enabled",
    "migrateDatabaseJob.useHelmHooks",
    "migrateDatabaseJob.applyCustomEnv",
    "createUserJob.useHelmHooks",
    "createUserJob.applyCustomEnv",
    "createUserJob.env",
    "createUserJob.args",
    *(
        f"{component}.{key}"
        for component in ("scheduler", "triggerer", "apiServer", "dagProcessor")
        for key in ("serviceAccount.name", "serviceAccount.annotations", "resources")
    ),
    "scheduler.extraVolumes",
    "scheduler.extraVolumeMounts",
    "apiServer.service.type",
    "apiServer.service.ports",
}
#: keys whose value is free-form (a map or a list of the chart's choosing)
AIRFLOW_FREE_FORM = (
    "serviceAccount.annotations",
    "resources",
    "service.ports",
    "extraVolumes",
    "extraVolumeMounts",
)


def test_airflow_values_are_documented_keys(env: str) -> None:
    unknown = []
    for path in leaf_paths(environment_values(env)["airflow"]):
        dotted = ".".join(path)
        if path[0] == "config" or dotted in AIRFLOW_CHART_KEYS:
            continue
        if any(
            dotted.startswith(f"{key}.")
            for key in AIRFLOW_CHART_KEYS
            if key.endswith(AIRFLOW_FREE_FORM)
        ):
            continue
        unknown.append(dotted)
    assert not unknown, unknown


def test_airflow_config_options_exist(env: str) -> None:
    spec = importlib.util.find_spec("airflow")  # located, not imported: that takes seconds
    assert spec and spec.origin
    reference = load_yaml(Path(spec.origin).parent / "config_templates" / "config.yml")
    for section, options in environment_values(env)["airflow"]["config"].items():
        for option in options:
            assert option in reference[section]["options"], f"[{section}] {option}"


def test_airflow_runs_pod_tasks_only_through_beatlytica(env: str) -> None:
    values = environment_values(env)
    airflow = values["airflow"]
    assert airflow["executor"] in ("LocalExecutor", "KubernetesExecutor")
    assert airflow["allowPodLaunching"] is False and airflow["multiNamespaceMode"] is False
    assert airflow["airflowVersion"] == "3.3.2"
    assert "name: beatlytica-settings" in airflow["extraEnvFrom"]
    assert airflow["postgresql"]["enabled"] is False
    chart_airflow = load_yaml(CHART / "values.yaml")["airflow"]
    database = merge(chart_airflow, values["beatlytica"]["airflow"])["database"]
    assert airflow["data"]["metadataSecretName"] == database["secretName"]
    prefix = chart_airflow["secrets"]["prefix"]
    assert airflow["fernetKeySecretName"] == f"{prefix}-fernet-key"
    assert airflow["apiSecretKeySecretName"] == f"{prefix}-api-secret-key"
    assert airflow["jwtSecretName"] == f"{prefix}-jwt-secret"


def test_airflows_admin_password_is_generated_never_admin(env: str) -> None:
    """The create-user job takes the admin's password from the Secret Beatlytica's chart
    generates (a new random value per install, kept across upgrades by the cluster test), and
    no values file writes a password."""
    airflow = environment_values(env)["airflow"]
    job = airflow["createUserJob"]
    (variable,) = [e for e in job["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    ref = variable["valueFrom"]["secretKeyRef"]
    command = " ".join(job["args"])
    assert job["args"][:2] == ["bash", "-c"]
    assert command.count("--password") == 1
    assert f'--password "${variable["name"]}"' in command
    assert "--username admin" in command and "--role Admin" in command

    def secret(docs: list[dict[str, Any]]) -> str:
        return one(docs, "Secret", ref["name"])["data"][ref["key"]]

    first, second = secret(rendered(env)), secret(rendered_again(env))
    passwords = {base64.b64decode(first).decode(), base64.b64decode(second).decode()}
    assert len(passwords) == 2 and all(len(p) == 24 and p.isalnum() for p in passwords)
    assert "admin" not in passwords
    # nothing in any values file names a password (the chart's defaultUser stays unused)
    assert not [p for p in leaf_paths(airflow) if "password" in p[-1].lower()]


def test_gke_task_logs_go_to_the_bucket() -> None:
    values = environment_values("gke")
    logging = values["airflow"]["config"]["logging"]
    assert logging["remote_logging"] == "True"
    bucket = values["beatlytica"]["lake"]["bucket"]
    assert logging["remote_base_log_folder"] == f"gs://{bucket}/airflow-logs"


def test_no_zookeeper_and_no_bitnami() -> None:
    for path in [*PLATFORM.rglob("*.yaml"), *CHART.rglob("*.yaml"), *CHART.rglob("*.tpl")]:
        text = path.read_text().lower()
        assert "zookeeper" not in text, path
        assert "bitnami" not in text.replace("no bitnami", ""), path


if __name__ == "__main__":
    update_schema_settings()


def test_one_version_everywhere_helm_needs_a_literal() -> None:
    """pyproject.toml's version is the project's; the Python package and the images' default tag
    read it, and the places Helm needs as literals (Chart.yaml, the Airflow chart's image tags)
    repeat it, checked here."""
    import tomllib

    import beatlytica

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert beatlytica.__version__ == version
    assert Settings.model_fields["image_tag"].default == version
    for chart in (CHART, CHART.parent / "platform"):
        meta = load_yaml(chart / "Chart.yaml")
        assert (meta["version"], meta["appVersion"]) == (version, version), chart.name
    platform = load_yaml(CHART.parent / "platform" / "Chart.yaml")
    (ours,) = [d for d in platform["dependencies"] if d["name"] == "beatlytica"]
    assert ours["version"] == version
    airflow = load_yaml(CHART.parent / "platform" / "values.yaml")["airflow"]
    assert airflow["defaultAirflowTag"] == airflow["images"]["airflow"]["tag"] == version
    assert load_yaml(CHART / "values.yaml")["images"]["tag"] == ""  # the appVersion
    app = one(rendered(DEFAULTS), "SparkApplication", "beatlytica-stream")["spec"]
    assert app["image"].endswith(f"/beatlytica-spark:{version}")
