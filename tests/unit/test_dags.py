"""The Airflow DAGs: import cleanly, have the intended graphs, and launch valid pods."""

from __future__ import annotations

import ast
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient

from beatlytica.errors import NOTHING_LATE
from beatlytica.events import TOPIC_NAMES
from beatlytica.settings import get_settings
from tests.helpers import KUBERNETES_VERSION, ROOT
from tests.unit.test_helm_charts import CHART, load_yaml, write_pod_templates

#: container resources per pod-task image, from the chart's values
RESOURCES = load_yaml(CHART / "values.yaml")["jobs"]["resources"]

DAGS = ROOT / "dags"
#: GKE's regular channel at the time of writing
START = datetime(2026, 11, 1, 5, tzinfo=UTC)
END = datetime(2026, 11, 1, 6, tzinfo=UTC)
ALLOWED_IMPORTS = {
    "__future__",
    "datetime",
    "airflow.sdk",
    "beatlytica.orchestration",
    "beatlytica.settings",
    "beatlytica.timeparse",
}


def load_dagbag(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, **env: str) -> Any:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    from airflow.dag_processing.dagbag import DagBag

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            bag = DagBag(dag_folder=str(DAGS))
    finally:
        get_settings.cache_clear()
    bag.caught_warnings = caught
    return bag


@pytest.fixture
def local_bag(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    return load_dagbag(monkeypatch, tmp_path, BEATLYTICA_RUNTIME="local")


@pytest.fixture
def cluster_bag(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    """The DAGs as the GKE release's scheduler loads them: its settings, the chart's pod
    templates mounted at BEATLYTICA_POD_TEMPLATE_DIR."""
    return load_dagbag(
        monkeypatch,
        tmp_path,
        BEATLYTICA_RUNTIME="kubernetes",
        BEATLYTICA_IMAGE_REGISTRY="europe-docker.pkg.dev/acme/beatlytica",
        BEATLYTICA_IMAGE_TAG="1.2.3",
        BEATLYTICA_POD_TEMPLATE_DIR=str(write_pod_templates("gke", tmp_path / "templates")),
    )


def test_dags_import_without_errors_or_deprecation_warnings(local_bag: Any) -> None:
    assert local_bag.import_errors == {}
    assert set(local_bag.dags) == {"beatlytica_hourly", "beatlytica_daily"}
    deprecations = [
        w
        for w in local_bag.caught_warnings
        if issubclass(w.category, DeprecationWarning) or "deprecat" in str(w.message).lower()
    ]
    assert deprecations == []


@pytest.mark.parametrize("path", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_dag_files_import_only_the_factory_and_settings(path: Any) -> None:
    tree = ast.parse(path.read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS


def _graph(dag: Any) -> dict[str, set[str]]:
    return {t.task_id: set(t.downstream_task_ids) for t in dag.tasks}


def test_hourly_graph(local_bag: Any) -> None:
    dag = local_bag.dags["beatlytica_hourly"]
    assert _graph(dag) == {
        "wait_for_lake": {"load"},
        "load": {"reload_late"},
        "reload_late": {"dbt_build_late"},
        "dbt_build_late": {"dbt_build"},
        "dbt_build": {"source_freshness", "reconcile"},
        "source_freshness": set(),
        "reconcile": set(),
    }
    # nothing late: `load --late` exits NOTHING_LATE, which skips it and the rebuild of its
    # days, and the interval's own build runs all the same
    reload_late = dag.get_task("reload_late")
    assert reload_late.arguments[:2] == ["load", "--late"]
    assert reload_late.skip_on_exit_code == NOTHING_LATE
    assert dag.get_task("dbt_build_late").trigger_rule == "all_success"
    assert dag.get_task("dbt_build").trigger_rule == "none_failed"
    late_window = reload_late.arguments[2:]
    assert dag.get_task("dbt_build_late").arguments[1:5] == late_window
    assert (
        "hours=24" in late_window[1] and late_window[3] == "{{ data_interval_start.isoformat() }}"
    )
    assert dag.timetable.delta == timedelta(minutes=60)
    assert dag.max_active_runs == 2 and not dag.catchup
    sensor = dag.get_task("wait_for_lake")
    assert sensor.mode == "reschedule"
    for task in dag.tasks:
        assert task.retries >= 1 and task.execution_timeout is not None, task.task_id
        assert task.on_failure_callback, task.task_id
    loads = dag.get_task("load").expand_input.value["arguments"]
    assert [a[2] for a in loads] == list(TOPIC_NAMES)


def test_adding_a_topic_setting_changes_the_mapping_not_the_dag(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    bag = load_dagbag(
        monkeypatch,
        tmp_path,
        BEATLYTICA_TOPICS="listen_events,auth_events",
        BEATLYTICA_INTERVAL_MINUTES="1440",
    )
    dag = bag.dags["beatlytica_hourly"]
    loads = dag.get_task("load").expand_input.value["arguments"]
    assert [a[2] for a in loads] == ["listen_events", "auth_events"]
    assert dag.timetable.delta == timedelta(days=1)


def test_daily_graph(local_bag: Any) -> None:
    dag = local_bag.dags["beatlytica_daily"]
    assert _graph(dag) == {
        "wait_for_hourly_runs": {"dbt_build_marts"},
        "dbt_build_marts": {"dbt_docs"},
        "dbt_docs": set(),
    }
    assert dag.get_task("wait_for_hourly_runs").retries == 24


def _pod_tasks(bag: Any) -> list[Any]:
    """Every pod task of both DAGs, mapped ones unmapped once per element."""
    tasks = []
    for dag in bag.dags.values():
        for task in dag.tasks:
            if type(task).__name__ == "MappedOperator":
                tasks += [
                    task.unmap({"arguments": a}) for a in task.expand_input.value["arguments"]
                ]
            elif hasattr(task, "build_pod_request_obj"):
                tasks.append(task)
    return tasks


def _render(task: Any) -> dict[str, Any]:
    from airflow.sdk.execution_time import macros

    context = {
        "data_interval_start": START,
        "data_interval_end": END,
        "ds": "2026-11-01",
        "macros": macros,
    }
    task.render_template_fields(context)
    pod = task.build_pod_request_obj(context=None, dry_run=True)
    return ApiClient().sanitize_for_serialization(pod)


def test_every_pod_is_a_valid_kubernetes_pod(cluster_bag: Any) -> None:
    tasks = _pod_tasks(cluster_bag)
    assert len(tasks) == len(TOPIC_NAMES) + 8  # loads + 5 hourly + 3 daily
    for task in tasks:
        pod = _render(task)
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
        spec = pod["spec"]
        container = spec["containers"][0]
        image = "loader" if container["args"][0] in ("load", "reconcile") else "dbt"
        assert pod["metadata"]["namespace"] == "beatlytica-jobs"
        assert (
            container["image"] == f"europe-docker.pkg.dev/acme/beatlytica/beatlytica-{image}:1.2.3"
        )
        assert container["command"] == ["beatlytica"]
        assert spec["serviceAccountName"] == "beatlytica-jobs"
        assert pod["metadata"]["labels"]["app.kubernetes.io/part-of"] == "beatlytica"
        assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == image
        assert container["envFrom"] == [{"configMapRef": {"name": "beatlytica-settings"}}]
        assert container["resources"] == RESOURCES[image]  # the chart's values
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        }
        if "--start" in container["args"]:
            # the interval, or for the late tasks the lookback before it
            late = task.task_id in ("reload_late", "dbt_build_late")
            i = container["args"].index("--start")
            assert container["args"][i : i + 4] == [
                "--start",
                "2026-10-31T05:00:00+00:00" if late else "2026-11-01T05:00:00+00:00",
                "--end",
                "2026-11-01T05:00:00+00:00" if late else "2026-11-01T06:00:00+00:00",
            ]


def test_an_invalid_pod_is_rejected(cluster_bag: Any) -> None:
    pod = _render(_pod_tasks(cluster_bag)[0])
    pod["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes"
    pod["spec"]["containers"][0]["unknownField"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def test_local_tasks_run_the_same_commands_as_the_pods(local_bag: Any, cluster_bag: Any) -> None:
    for dag_id in ("beatlytica_hourly", "beatlytica_daily"):
        local, cluster = local_bag.dags[dag_id], cluster_bag.dags[dag_id]
        for task in cluster.tasks:
            twin = local.get_task(task.task_id)
            if type(task).__name__ == "MappedOperator":
                assert twin.expand_input.value == task.expand_input.value
            elif hasattr(task, "arguments"):
                assert type(twin).__name__ == "LocalPodOperator"
                assert twin.arguments == task.arguments


def test_pod_tasks_mount_the_warehouse_volume_on_kind(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    bag = load_dagbag(
        monkeypatch,
        tmp_path,
        BEATLYTICA_RUNTIME="kubernetes",
        BEATLYTICA_DUCKDB_PATH="/var/lib/beatlytica/warehouse/warehouse.duckdb",
        BEATLYTICA_POD_TEMPLATE_DIR=str(write_pod_templates("kind", tmp_path / "templates")),
    )
    for task in _pod_tasks(bag):
        pod = _render(task)
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["warehouse"]["persistentVolumeClaim"] == {
            "claimName": "beatlytica-warehouse"
        }
        mounts = {m["name"]: m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
        assert mounts["warehouse"] == "/var/lib/beatlytica/warehouse"
        assert mounts["scratch"] == "/tmp"


def test_no_warehouse_volume_on_gke(cluster_bag: Any) -> None:
    pod = _render(_pod_tasks(cluster_bag)[0])
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["scratch"]


def test_a_missing_pod_template_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from airflow.sdk.exceptions import AirflowException

    bag = load_dagbag(
        monkeypatch,
        tmp_path,
        BEATLYTICA_RUNTIME="kubernetes",
        BEATLYTICA_POD_TEMPLATE_DIR=str(tmp_path / "nowhere"),
    )
    assert bag.import_errors == {}  # parsing needs no template: the DAG processor has none
    with pytest.raises(AirflowException, match=r"no pod template .*/nowhere/loader\.yaml"):
        _render(next(t for t in _pod_tasks(bag) if "loader" in t.image))


def test_pod_tasks_use_the_schedulers_account_in_the_cluster(cluster_bag: Any) -> None:
    for task in _pod_tasks(cluster_bag):
        assert task.in_cluster is True and task.config_file is None
        assert task.startup_timeout_seconds == 300
        assert task.log_events_on_failure is True
        assert task.on_finish_action.value == "delete_pod"


def test_an_airflow_outside_the_cluster_creates_pods_through_its_kubeconfig(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    bag = load_dagbag(
        monkeypatch,
        tmp_path,
        BEATLYTICA_RUNTIME="kubernetes",
        BEATLYTICA_KUBE_CONFIG_FILE="/etc/airflow/scheduler.kubeconfig",
        BEATLYTICA_POD_STARTUP_TIMEOUT_SECONDS="45",
        BEATLYTICA_TASK_RETRY_DELAY_SECONDS="5",
    )
    for task in _pod_tasks(bag):
        assert task.in_cluster is False
        assert task.config_file == "/etc/airflow/scheduler.kubeconfig"
        assert task.startup_timeout_seconds == 45
        if task.task_id != "wait_for_hourly_runs":  # that one waits for the hours on purpose
            assert task.retry_delay.total_seconds() == 5
