"""`beatlytica dbt …`: dbt with the project, profile, target and interval filled in from the
settings, so the dbt image, Airflow and a developer all run dbt the same way.

    beatlytica dbt build --start 2026-11-01T05:00:00 --end 2026-11-01T06:00:00 --select …

``--start``/``--end`` become the dbt vars ``data_interval_start``/``data_interval_end`` that the
incremental models filter on; everything else goes to dbt unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from beatlytica.errors import BeatlyticaError
from beatlytica.executables import executable
from beatlytica.settings import Settings

DBT_TARGETS = {"duckdb": "local", "bigquery": "bigquery"}

log = logging.getLogger(__name__)


def dbt_executable() -> str:
    return executable("dbt", "install the `dbt` extra")


def dbt_env(settings: Settings) -> dict[str, str]:
    """The environment the profile reads (profiles.yml uses env_var for all of it)."""
    env = dict(os.environ)
    env["BEATLYTICA_DBT_TARGET"] = DBT_TARGETS[settings.warehouse]
    env["BEATLYTICA_DUCKDB_PATH"] = str(settings.duckdb_file)
    env["BEATLYTICA_WAREHOUSE_RAW_SCHEMA"] = settings.warehouse_raw_schema
    env["BEATLYTICA_BIGQUERY_DATASET"] = settings.bigquery_dataset
    env["BEATLYTICA_BIGQUERY_LOCATION"] = settings.bigquery_location
    if settings.gcp_project:
        env["BEATLYTICA_GCP_PROJECT"] = settings.gcp_project
    env.setdefault("DBT_LOG_PATH", str(settings.home_dir / "logs" / "dbt"))
    env.setdefault("DBT_TARGET_PATH", str(settings.home_dir / "dbt-target"))
    return env


def interval_vars(start: datetime | None, end: datetime | None) -> dict[str, str]:
    if (start is None) != (end is None):
        raise BeatlyticaError("--start and --end go together")
    if start is None or end is None:
        return {}
    if end <= start:
        raise BeatlyticaError(f"interval end {end.isoformat()} is not after {start.isoformat()}")
    return {"data_interval_start": start.isoformat(), "data_interval_end": end.isoformat()}


def dbt_command(
    settings: Settings,
    args: Sequence[str],
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[str]:
    """The full dbt command line for ``args`` (a dbt subcommand and its options)."""
    if not args:
        raise BeatlyticaError("name a dbt command, e.g. `beatlytica dbt build`")
    project = settings.dbt_project_dir.expanduser().resolve()
    if not (project / "dbt_project.yml").exists():
        raise BeatlyticaError(f"no dbt project at {project} (BEATLYTICA_DBT_PROJECT_DIR)")
    command = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(project),
    ]
    variables = interval_vars(start, end)
    if variables:
        command += ["--vars", json.dumps(variables)]
    return command


def run_dbt(
    settings: Settings,
    args: Sequence[str],
    start: datetime | None = None,
    end: datetime | None = None,
) -> int:
    """Run dbt, streaming its output; returns dbt's exit code. On DuckDB, which has one writer,
    dbt starts once no other process (a loader, another dbt) writes the warehouse, and runs
    again should one take it in the moment between (dbt then fails before it changed anything),
    all within BEATLYTICA_DUCKDB_LOCK_TIMEOUT_SECONDS: two overlapping DAG runs build one after
    the other instead of failing."""
    command = dbt_command(settings, args, start, end)
    env = dbt_env(settings)
    if settings.warehouse != "duckdb":
        return subprocess.run(command, env=env, check=False).returncode

    from beatlytica.warehouse.duckdb_backend import LOCK_CONFLICT, wait_for_writer

    settings.duckdb_file.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + settings.duckdb_lock_timeout_seconds
    while True:
        wait_for_writer(settings.duckdb_file, max(deadline - time.monotonic(), 0))
        code, conflict = _echoed(command, env, LOCK_CONFLICT)
        if code == 0 or not conflict or time.monotonic() >= deadline:
            return code
        log.info(
            "another process took the DuckDB warehouse before dbt opened it; waiting to run "
            "dbt again",
            extra={"fields": {"warehouse": str(settings.duckdb_file)}},
        )


def _echoed(command: list[str], env: dict[str, str], marker: str) -> tuple[int, bool]:
    """Run ``command``, copying its output to ours line by line; its exit code, and whether
    ``marker`` appeared in the output."""
    seen = False
    with subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            seen = seen or marker in line
            sys.stdout.write(line)
            sys.stdout.flush()
    return process.returncode, seen


#: what `dbt docs generate` writes that the static docs site needs
DOCS_FILES = ("index.html", "manifest.json", "catalog.json")


def docs_target(settings: Settings) -> Path:
    return Path(dbt_env(settings)["DBT_TARGET_PATH"])


def publish_docs(settings: Settings) -> str:
    """Generate the dbt docs and copy the static site to ``<lake>/docs/dbt/``; returns its URI."""
    from beatlytica.lake import filesystem

    code = run_dbt(settings, ["docs", "generate"])
    if code != 0:
        raise BeatlyticaError(f"dbt docs generate exited with {code}")
    destination = f"{settings.lake}/docs/dbt"
    fs, root = filesystem(destination, settings.gcs_endpoint)
    fs.create_dir(root, recursive=True)
    for name in DOCS_FILES:
        with fs.open_output_stream(f"{root}/{name}") as out:
            out.write((docs_target(settings) / name).read_bytes())
    return destination
