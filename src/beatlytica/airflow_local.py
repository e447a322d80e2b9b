"""Run the Airflow DAGs on this machine: `beatlytica dag-run DAG --start … --end …`.

The same DAG files as in the cluster, with ``BEATLYTICA_RUNTIME=local`` (pod tasks become local
processes; with ``kubernetes`` they are pods, created through BEATLYTICA_KUBE_CONFIG_FILE), a
SQLite metadata database under ``<home>/airflow``, and Airflow's ``dag.test()`` for one data
interval. Each run happens in a fresh Python process, so Airflow's configuration is read from
the environment prepared here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import TypedDict, cast

from beatlytica.errors import BeatlyticaError
from beatlytica.settings import Settings


def airflow_env(settings: Settings) -> dict[str, str]:
    home = settings.home_dir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        # local processes by default; pods when BEATLYTICA_RUNTIME=kubernetes (with
        # BEATLYTICA_KUBE_CONFIG_FILE naming the cluster and the account to use)
        "BEATLYTICA_RUNTIME": settings.runtime,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_dir.expanduser().resolve()),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
    }


class RunSummary(TypedDict):
    """The line a child process prints for its run: the run's state and each task's, and the
    file holding the run's whole log (its tasks' output among it)."""

    dag_id: str
    state: str
    tasks: dict[str, str]
    log: str


def run_log_file(settings: Settings, dag_id: str, start: datetime) -> Path:
    """Where a local run's whole log is kept: ``<home>/logs/dag-runs/<dag>/<start>.log``."""
    return settings.home_dir / "logs" / "dag-runs" / dag_id / f"{start:%Y-%m-%dT%H%M%S}.log"


def run_dag_interval(settings: Settings, dag_id: str, start: datetime, end: datetime) -> RunSummary:
    """Run ``dag_id`` for the data interval [start, end) in a child process; returns the run's
    summary (state and task states) and raises when the run did not succeed."""
    command = [
        sys.executable,
        "-m",
        "beatlytica.airflow_local",
        dag_id,
        start.isoformat(),
        end.isoformat(),
    ]
    result = subprocess.run(command, env=airflow_env(settings), capture_output=True, text=True)
    log_file = run_log_file(settings, dag_id, start)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text(result.stdout + result.stderr)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (result.stderr or result.stdout)[-4000:]
        raise BeatlyticaError(f"the local Airflow run of {dag_id} crashed:\n{tail}")
    summary = cast(RunSummary, {**json.loads(lines[-1]), "log": str(log_file)})
    if summary["state"] != "success":
        log_tail = (result.stdout + result.stderr)[-8000:]
        raise BeatlyticaError(
            f"{dag_id} for [{start.isoformat()}, {end.isoformat()}) ended {summary['state']}: "
            f"{summary['tasks']} (whole log: {log_file})\n{log_tail}"
        )
    return summary


def _child(dag_id: str, start: datetime, end: datetime) -> int:
    """In the child process: metadata DB, DagBag, one dag.test() for the interval."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    db.initdb()
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise BeatlyticaError(f"DAG import errors: {bag.import_errors}")
    dag = bag.dags[dag_id]
    # a manual run of a data-interval timetable covers (logical date - interval, logical date]
    run = dag.test(logical_date=end)
    if (run.data_interval_start, run.data_interval_end) != (start, end):
        raise BeatlyticaError(
            f"{dag_id} runs intervals of {run.data_interval_end - run.data_interval_start}, "
            f"not [{start.isoformat()}, {end.isoformat()}); set BEATLYTICA_INTERVAL_MINUTES"
        )
    tasks = {
        f"{ti.task_id}[{ti.map_index}]" if ti.map_index >= 0 else ti.task_id: str(ti.state)
        for ti in run.get_task_instances()
    }
    print(json.dumps({"dag_id": dag_id, "state": str(run.state), "tasks": tasks}), flush=True)
    return 0 if str(run.state) == "success" else 1


if __name__ == "__main__":
    from beatlytica.timeparse import parse_utc

    sys.exit(_child(sys.argv[1], parse_utc(sys.argv[2]), parse_utc(sys.argv[3])))
