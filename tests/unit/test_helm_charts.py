"""The Helm charts, proven offline: Beatlytica's own chart is rendered with `helm template` for
each environment (kind, GKE) and every object is checked, core kinds with kubernetes-validate
(strict, for the GKE Kubernetes version) and custom resources against the pinned upstream CRDs
in ../shared/upstream; the umbrella chart's pins, lock and values are checked against the
upstream charts' documented values. Nothing here needs a cluster or the network.
"""

from __future__ import annotations

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
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from beatlytica.events import TOPIC_NAMES
from beatlytica.settings import ENV_PREFIX, Settings
from tests.conftest import SHARED
from tests.helpers import ROOT

HELM = ROOT / ".tools" / "bin" / "helm"
CHART = ROOT / "charts" / "beatlytica"
PLATFORM = ROOT / "charts" / "platform"
SCHEMA = CHART / "values.schema.json"
#: the oldest GKE minor the charts support (the kind node image is the same version)
KUBE_VERSION = "1.33.0"
RELEASE, NAMESPACE = "beatlytica", "beatlytica"
ENVIRONMENTS = ("kind", "gke")
STRIMZI = SHARED / "upstream" / "strimzi-1.2.0"
SPARK_OPERATOR = SHARED / "upstream" / "spark-operator-2.5.2"
SETTINGS = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
#: settings that never come from values: each pod reads its Kafka user from its KafkaUser Secret
PER_POD_SETTINGS = {f"{ENV_PREFIX}KAFKA_USERNAME", f"{ENV_PREFIX}KAFKA_PASSWORD"}


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
        result = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                      "--kube-version", KUBE_VERSION, "--values", f.name, *extra)  # fmt: skip
    if result.returncode:
        raise RenderError(result.stderr)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def _rendered(env: str) -> str:
    return json.dumps(render_chart(environment_values(env)["beatlytica"]))


def rendered(env: str) -> list[dict[str, Any]]:
    """The chart rendered for ``env`` (once per test session), as fresh objects."""
    return json.loads(_rendered(env))


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
    files = [*sorted(STRIMZI.glob("*-Crd-*.yaml")),
             SPARK_OPERATOR / "sparkoperator.k8s.io_sparkapplications.yaml"]  # fmt: skip
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
    }, f"the upstream CRDs under {SHARED / 'upstream'} (BEATLYTICA_SHARED_DIR)"


def test_core_objects_pass_kubernetes_validate_strict(docs: list[dict[str, Any]]) -> None:
    core = [d for d in docs if not is_custom(d)]
    assert len(core) > 20
    for doc in core:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_custom_resources_pass_the_pinned_crds(docs: list[dict[str, Any]]) -> None:
    custom = [d for d in docs if is_custom(d)]
    assert {d["kind"] for d in custom} == {
        "Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "SparkApplication"}  # fmt: skip
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
def test_a_wrong_field_in_a_custom_resource_fails(kind: str, path: tuple[str, ...],
                                                  value: Any) -> None:  # fmt: skip
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


def test_helm_lint_passes_for_every_environment(env: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(environment_values(env)["beatlytica"], f)
        f.flush()
        result = helm("lint", "--strict", str(CHART), "--namespace", NAMESPACE,
                      "--kube-version", KUBE_VERSION, "--values", f.name)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kafka": {"clusterNmae": "x"}}, "clusterNmae"),
        ({"producer": {"replica": 3}}, "replica"),
        ({"settings": {"extra": {"BEATLYTICA_STREAM_TRIGER": "1 minute"}}}, "STREAM_TRIGER"),
        ({"settings": {"extra": {"BEATLYTICA_KAFKA_PASSWORD": "secret"}}}, "KAFKA_PASSWORD"),
        ({"warehouse": {"backend": "postgres"}}, "warehouse/backend"),
        ({"warehouse": {"backend": "bigquery"}}, "project"),
        ({"stream": {"driver": {"memory": "1 GB"}}}, "1 GB"),
        ({"bogus": True}, "bogus"),
    ],
)
def test_values_schema_rejects_what_is_not_documented(values: dict[str, Any],
                                                      message: str) -> None:  # fmt: skip
    base = environment_values("kind")["beatlytica"]
    with pytest.raises(RenderError, match=message):
        render_chart(merge(base, values))


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
    assert settings.kafka_security_protocol == "SASL_PLAINTEXT"
    assert settings.settings_configmap == "beatlytica-settings"
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
    assert "BEATLYTICA_GCS_ENDPOINT" not in data and "BEATLYTICA_DUCKDB_PATH" not in data
    assert not objects(docs, "Deployment"), "no emulator on GKE"
    assert not objects(docs, "PersistentVolumeClaim"), "no DuckDB volume on GKE"


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


def test_kafka_is_kraft_with_node_pools_and_no_zookeeper(docs: list[dict[str, Any]]) -> None:
    kafka = one(docs, "Kafka", "beatlytica")
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1"
    assert "zookeeper" not in json.dumps(kafka).lower()
    pools = objects(docs, "KafkaNodePool")
    assert {role for pool in pools for role in pool["spec"]["roles"]} == {"controller", "broker"}
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["authentication"]["type"] == "scram-sha-512" and listener["tls"] is False
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
    assert operations == {"beatlytica-producer": {"Write", "Describe"},
                          "beatlytica-stream": {"Read", "Describe"}}  # fmt: skip


def test_kafka_passwords_come_from_the_user_secrets(docs: list[dict[str, Any]]) -> None:
    """BEATLYTICA_KAFKA_PASSWORD is read from the Secret the user operator writes for the
    KafkaUser of the same name; no password is in the rendered chart."""
    producer = one(docs, "StatefulSet", "beatlytica-producer")["spec"]["template"]["spec"]
    driver = one(docs, "SparkApplication", "beatlytica-stream")["spec"]["driver"]
    for env, user in ((producer["containers"][0]["env"], "beatlytica-producer"),
                      (driver["env"], "beatlytica-stream")):  # fmt: skip
        by_name = {e["name"]: e for e in env}
        assert by_name["BEATLYTICA_KAFKA_USERNAME"]["value"] == user
        secret = by_name["BEATLYTICA_KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": user, "key": "password"}


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
        config = SimulationConfig(users=20, start=start, end=start + timedelta(hours=1),
                                  seed=args.seed, instance=args.instance)  # fmt: skip
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
    policy = app["restartPolicy"]
    assert policy["type"] == "OnFailure"
    assert policy["onFailureRetries"] > 0 and policy["onFailureRetryInterval"] > 0
    assert policy["onSubmissionFailureRetries"] > 0
    assert policy["onSubmissionFailureRetryInterval"] > 0
    for role in ("driver", "executor"):
        pod = app[role]
        assert pod["cores"] >= 1 and pod["memory"] and pod["coreLimit"]
        assert pod["serviceAccount"] == "beatlytica-spark"
        assert {"configMapRef": {"name": "beatlytica-settings"}} in pod["envFrom"]
    assert app["sparkConf"]["spark.ui.prometheus.enabled"] == "true"
    assert app["driver"]["annotations"]["prometheus.io/scrape"] == "true"


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
    for needle in ("GOOGLE_APPLICATION_CREDENTIALS", "private_key", "service_account.json",
                   "keyfile"):  # fmt: skip
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
            p for p in policies
            if p["metadata"].get("namespace", NAMESPACE) == namespace
            and p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
        ]  # fmt: skip
        assert selected, f"no NetworkPolicy selects {owner['kind']} {owner['metadata']['name']}"


def test_long_running_parts_have_disruption_budgets(docs: list[dict[str, Any]]) -> None:
    budgets = {p["metadata"]["name"]: p["spec"] for p in objects(docs, "PodDisruptionBudget")}
    assert budgets["beatlytica-producer"]["maxUnavailable"] == 1
    driver = budgets["beatlytica-stream-driver"]
    assert driver["minAvailable"] == 1
    assert driver["selector"]["matchLabels"]["spark-role"] == "driver"


def test_pods_run_as_non_root(docs: list[dict[str, Any]]) -> None:
    for owner, spec in pod_templates(docs):
        name = owner["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in spec.get("initContainers", []) + spec["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name


def test_images_are_ours_and_pulled_if_not_present(env: str, docs: list[dict[str, Any]]) -> None:
    registry = environment_values(env)["beatlytica"]["images"]["registry"]
    ours = re.compile(rf"^{re.escape(registry)}/beatlytica-(producer|spark):0\.1\.0$")
    app = one(docs, "SparkApplication", "beatlytica-stream")["spec"]
    assert ours.match(app["image"]) and app["imagePullPolicy"] == "IfNotPresent"
    producer = one(docs, "StatefulSet", "beatlytica-producer")["spec"]["template"]["spec"]
    assert ours.match(producer["containers"][0]["image"])
    assert producer["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert settings_configmaps(docs)[0]["data"]["BEATLYTICA_IMAGE_REGISTRY"] == registry
    for _, spec in pod_templates(docs):
        for container in spec.get("initContainers", []) + spec["containers"]:
            assert not container["image"].endswith(":latest") and ":" in container["image"]
            assert "bitnami" not in container["image"]


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

    data = [[dependency(d) for d in chart["dependencies"]],
            [dependency(d) for d in lock["dependencies"]]]  # fmt: skip
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


def test_helm_accepts_the_lock(tmp_path: Path) -> None:
    """`helm dependency build` checks the lock before it needs the network: offline it must fail
    for the missing repositories, never for a lock out of sync with Chart.yaml."""
    shutil.copytree(PLATFORM, tmp_path / "platform")
    shutil.copytree(CHART, tmp_path / "beatlytica")
    result = subprocess.run(
        [str(HELM), "dependency", "build", "platform"], cwd=tmp_path, capture_output=True,
        text=True, timeout=120, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert "out of sync" not in result.stderr, result.stderr


def test_umbrella_renders_beatlytica_with_each_environment(tmp_path: Path) -> None:
    """The umbrella with only its local dependency (the upstream charts cannot be fetched here):
    its values files reach Beatlytica's chart through the umbrella, `global` included."""
    platform = tmp_path / "platform"
    shutil.copytree(PLATFORM, platform)
    shutil.copytree(CHART, tmp_path / "beatlytica")
    chart = load_yaml(platform / "Chart.yaml")
    chart["dependencies"] = [d for d in chart["dependencies"] if d["name"] == "beatlytica"]
    (platform / "Chart.yaml").write_text(yaml.safe_dump(chart))
    (platform / "Chart.lock").unlink()
    built = helm("dependency", "build", str(platform))
    assert built.returncode == 0, built.stderr
    for env in ENVIRONMENTS:
        result = helm("template", RELEASE, str(platform), "--namespace", NAMESPACE,
                      "--kube-version", KUBE_VERSION, "--values",
                      str(platform / f"values-{env}.yaml"))  # fmt: skip
        assert result.returncode == 0, result.stderr
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        expected = {(d["kind"], d["metadata"]["name"]) for d in rendered(env)}
        assert {(d["kind"], d["metadata"]["name"]) for d in docs} == expected


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
        ".".join(p) for p in leaf_paths(environment_values(env)[subchart])
        if not documented(p, reference)
    ]  # fmt: skip
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
    "airflowVersion", "defaultAirflowRepository", "defaultAirflowTag",
    "images.airflow.repository", "images.airflow.tag", "images.airflow.pullPolicy",
    "executor", "allowPodLaunching", "allowJobLaunching", "multiNamespaceMode",
    "postgresql.enabled", "data.metadataSecretName", "fernetKeySecretName",
    "apiSecretKeySecretName", "jwtSecretName", "redis.enabled", "statsd.enabled",
    "pgbouncer.enabled", "dags.persistence.enabled", "dags.gitSync.enabled", "extraEnvFrom",
    "env", "networkPolicies.enabled", "workers.persistence.enabled",
    "triggerer.persistence.enabled", "migrateDatabaseJob.useHelmHooks",
    "migrateDatabaseJob.applyCustomEnv", "createUserJob.useHelmHooks",
    "createUserJob.applyCustomEnv",
    *(f"{component}.{key}"
      for component in ("scheduler", "triggerer", "apiServer", "dagProcessor")
      for key in ("serviceAccount.name", "serviceAccount.annotations", "resources")),
    "apiServer.service.type", "apiServer.service.ports",
}  # fmt: skip
#: keys whose value is free-form (a map or a list of the chart's choosing)
AIRFLOW_FREE_FORM = ("serviceAccount.annotations", "resources", "service.ports")


def test_airflow_values_are_documented_keys(env: str) -> None:
    unknown = []
    for path in leaf_paths(environment_values(env)["airflow"]):
        dotted = ".".join(path)
        if path[0] == "config" or dotted in AIRFLOW_CHART_KEYS:
            continue
        if any(dotted.startswith(f"{key}.") for key in AIRFLOW_CHART_KEYS
               if key.endswith(AIRFLOW_FREE_FORM)):  # fmt: skip
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
