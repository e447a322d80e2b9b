"""The one factory for Airflow pod tasks, and the lake sensor.

DAG files import this module and the settings, nothing else of the project. A pod task runs
``beatlytica <arguments>`` from one of the images:

- ``BEATLYTICA_RUNTIME=kubernetes``: a KubernetesPodOperator in the jobs namespace, with the
  image's resources, the jobs service account, the settings ConfigMap as environment, and a
  locked-down security context.
- ``BEATLYTICA_RUNTIME=local``: a :class:`LocalPodOperator` that runs the very same command and
  arguments as a local process with the same environment (the embedded stack's settings).

Heavy imports (the Kubernetes client, pyarrow) happen in the function that needs them, never at
DAG-parse time.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

# re-exported: the DAGs' skip code of `load --late` (DAG files import the factory only)
from beatlytica.errors import NOTHING_LATE as NOTHING_LATE
from beatlytica.executables import executable
from beatlytica.settings import Settings, get_settings

log = logging.getLogger(__name__)

#: the interval every pod task works on, as `beatlytica` options (Airflow templates)
INTERVAL_ARGS = [
    "--start",
    "{{ data_interval_start.isoformat() }}",
    "--end",
    "{{ data_interval_end.isoformat() }}",
]


def late_args(settings: Settings) -> list[str]:
    """The window before the data interval that a run checks for late events, as `beatlytica`
    options (BEATLYTICA_LATE_LOOKBACK_HOURS)."""
    hours = settings.late_lookback_hours
    return [
        "--start",
        f"{{{{ (data_interval_start - macros.timedelta(hours={hours})).isoformat() }}}}",
        "--end",
        "{{ data_interval_start.isoformat() }}",
    ]


#: a partial `dbt build` runs the tests of its models and their ancestors only, not those
#: of downstream models it did not build (dbt's default would run those against stale tables)
DBT_TESTS_OF_SELECTION = ["--indirect-selection", "buildable"]


def image_ref(settings: Settings, image: str) -> str:
    return f"{settings.image_registry}/beatlytica-{image}:{settings.image_tag}"


def pod_template_file(settings: Settings, image: str) -> Path:
    """The pod of ``image``'s tasks: security context, user, volumes, labels, resources, the
    settings as environment (the chart's ConfigMap beatlytica-pod-templates, its one home)."""
    return settings.pod_template_dir / f"{image}.yaml"


def _kubernetes_kwargs(settings: Settings, task_id: str, image: str) -> dict[str, Any]:
    """What a pod task adds to its image's pod template: the name, image, command, arguments
    (the operator's), and how Airflow creates, follows and removes the pod."""
    return {
        "pod_template_file": str(pod_template_file(settings, image)),
        "name": f"beatlytica-{task_id.replace('_', '-')}",
        "image": image_ref(settings, image),
        "cmds": ["beatlytica"],
        # in the cluster: the scheduler's ServiceAccount; outside it: a kubeconfig of its own
        "in_cluster": settings.kube_config_file is None,
        "config_file": str(settings.kube_config_file) if settings.kube_config_file else None,
        "get_logs": True,
        "startup_timeout_seconds": settings.pod_startup_timeout_seconds,
        # a pod that cannot start (image, volume) fails its task with the pod's events
        "log_events_on_failure": True,
        # every pod goes when its task ends: its log and, on failure, its events are in the
        # task's log already; a kept pod that never started (a bad image) would hold its CPU
        # request forever and starve the pod tasks after it
        "on_finish_action": "delete_pod",
    }


class LocalPodOperator(BaseOperator):
    """The local stand-in of a pod task: ``beatlytica <arguments>`` as a subprocess with the
    same environment, its output in the task log, its exit code as the task's outcome."""

    template_fields: Sequence[str] = ("arguments", "env_vars")

    def __init__(
        self,
        *,
        image: str,
        arguments: list[str],
        env_vars: dict[str, str] | None = None,
        skip_on_exit_code: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image = image
        self.arguments = arguments
        self.env_vars = env_vars or {}
        self.skip_on_exit_code = skip_on_exit_code
        self._process: subprocess.Popen[str] | None = None

    def execute(self, context: Any) -> None:
        command = [beatlytica_executable(), *map(str, self.arguments)]
        self.log.info("running (%s image, locally): %s", self.image, " ".join(command))
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **self.env_vars},
            start_new_session=True,
        )
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.log.info("%s", line.rstrip())
        code = self._process.wait()
        if code != 0 and code == self.skip_on_exit_code:
            raise AirflowSkipException(f"`{' '.join(command)}` exited with {code}: skipped")
        if code != 0:
            raise AirflowException(f"`{' '.join(command)}` ({self.image} image) exited with {code}")

    def on_kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)


def beatlytica_executable() -> str:
    return executable("beatlytica", "install the project next to Airflow")


def _operator(settings: Settings) -> tuple[type[BaseOperator], Any]:
    if settings.runtime == "kubernetes":
        from beatlytica.pod_operator import BeatlyticaPodOperator

        return BeatlyticaPodOperator, _kubernetes_kwargs
    return LocalPodOperator, lambda s, t, image: {"image": image}


def pod_task(task_id: str, image: str, arguments: list[str], **kwargs: Any) -> BaseOperator:
    """One task running ``beatlytica <arguments>`` in ``image`` (see the module docstring)."""
    settings = get_settings()
    operator, image_kwargs = _operator(settings)
    return operator(
        task_id=task_id, arguments=arguments, **image_kwargs(settings, task_id, image), **kwargs
    )


def mapped_pod_task(task_id: str, image: str, arguments: list[list[str]], **kwargs: Any) -> Any:
    """One mapped task instance per argument list (dynamic task mapping)."""
    settings = get_settings()
    operator, image_kwargs = _operator(settings)
    return operator.partial(
        task_id=task_id, **image_kwargs(settings, task_id, image), **kwargs
    ).expand(arguments=arguments)


class LakeIntervalSensor(BaseSensorOperator):
    """Waits until the data interval is complete in the lake: the stream is past its end plus
    BEATLYTICA_INTERVAL_GRACE_MINUTES (:mod:`beatlytica.completeness`: in event time, or having
    read all of Kafka after that moment), so the load sees every event that was on time.

    It reads the file sink's commit log (beatlytica.lake), not an object prefix: a prefix
    sensor would fire on files of a batch that never committed. Runs in reschedule mode, so
    it holds no worker slot between pokes; the same code checks gs:// and local lakes.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", timedelta(minutes=1))
        kwargs.setdefault("timeout", timedelta(hours=3))
        super().__init__(**kwargs)

    def poke(self, context: Any) -> bool:
        from beatlytica.completeness import completeness

        start, end = context["data_interval_start"], context["data_interval_end"]
        found = completeness(get_settings(), end)
        self.log.info("[%s, %s): %s", start, end, found.reason)
        return found.complete


def on_failure(context: Any) -> None:
    """Failure callback: one line that says what failed, for which interval, and where to look."""
    ti = context.get("task_instance") or context.get("ti")
    log.error(
        "beatlytica task failed: dag=%s task=%s map_index=%s interval=[%s, %s) try=%s error=%s",
        getattr(ti, "dag_id", "?"),
        getattr(ti, "task_id", "?"),
        getattr(ti, "map_index", -1),
        context.get("data_interval_start"),
        context.get("data_interval_end"),
        getattr(ti, "try_number", "?"),
        context.get("exception"),
    )


def default_args() -> dict[str, Any]:
    """Task defaults of every Beatlytica DAG: retries with exponential backoff, a timeout,
    and the failure summary."""
    settings = get_settings()
    return {
        "owner": "beatlytica",
        "retries": settings.task_retries,
        "retry_delay": timedelta(seconds=settings.task_retry_delay_seconds),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=15),
        "execution_timeout": timedelta(minutes=30),
        "on_failure_callback": on_failure,
    }
