"""Warehouse times on DuckDB: `beatlytica load` of the whole window and a full `dbt build`.

    .venv/bin/python -m benchmarks.warehouse --users 25000   # about 1M events
    .venv/bin/python -m benchmarks.warehouse --users 250000  # about 10M events
    .venv/bin/python -m benchmarks.warehouse --users 250000 --keep /var/tmp/wh10m  # lake kept

With --keep DIR the streamed lake stays in DIR and a later run with the same DIR reuses it
(the load and the build are timed afresh every run: the warehouse file is recreated).

The lake is made the real way (generator -> Kafka -> Spark job) and is not timed here; the
load and the dbt build are, each as one command, the way Airflow runs them. The load runs as
`beatlytica load` in a child process, so its peak resident memory is the load's alone
(BEATLYTICA_LOADER_MEMORY_LIMIT_MB, default 1024, bounds DuckDB's part of it). The last line
is for scripts:

    events=N load_s=L load_peak_rss_mb=M dbt_build_s=D
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from beatlytica.dbt_runner import docs_target, run_dbt
from beatlytica.settings import Settings
from benchmarks.lakes import ROOT, Lake, streamed_lake

BEATLYTICA = Path(sys.executable).parent / "beatlytica"


def load_in_child(settings: Settings, start: str, end: str, tmp: Path) -> tuple[int, float]:
    """`beatlytica load --start --end` in a child process; (rows loaded, its peak RSS in MB)."""
    env = {
        **os.environ,
        "BEATLYTICA_HOME": str(settings.home_dir),
        "BEATLYTICA_LAKE_URI": settings.lake,
        "BEATLYTICA_DUCKDB_PATH": str(settings.duckdb_file),
        "BEATLYTICA_TOPICS": ",".join(settings.topics),
        "BEATLYTICA_LOADER_MEMORY_LIMIT_MB": str(settings.loader_memory_limit_mb),
    }
    command = [str(BEATLYTICA), "load", "--start", start, "--end", end]
    with (tmp / "load.out").open("w+") as out, (tmp / "load.err").open("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)  # the child's own rusage
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if process.returncode != 0:
            sys.exit(f"beatlytica load exited with {process.returncode}:\n{err.read()[-3000:]}")
        report = json.load(out)
    return sum(r["rows"] for r in report.values()), usage.ru_maxrss / 1024  # KiB on Linux


@contextlib.contextmanager
def lake_in(tmp: Path, users: int, days: float, keep: Path | None) -> Iterator[Lake]:
    """A streamed lake: in ``tmp`` (removed after), or kept in ``keep`` and reused from there."""
    if keep is None:
        with streamed_lake(tmp, users, days) as lake:
            yield lake
        return
    record = keep / "lake.json"
    if record.exists():
        saved = json.loads(record.read_text())
        if (saved["users"], saved["days"]) != (users, days):
            sys.exit(f"{keep} holds a lake of {saved['users']} users x {saved['days']} days")
        settings = Settings(
            home=keep / "home", jars_dir=ROOT / ".cache/jars", dbt_project_dir=ROOT / "dbt"
        )
        start, end = (datetime.fromisoformat(saved[k]) for k in ("start", "end"))
        yield Lake(settings, saved["events"], 0.0, saved["stream_s"], start, end)
        return
    with streamed_lake(keep, users, days) as lake:
        shutil.rmtree(keep / "kafka", ignore_errors=True)  # the broker's copy is not needed
        saved = {"users": users, "days": days, "events": lake.events, "stream_s": lake.stream_s}
        times = {"start": lake.start.isoformat(), "end": lake.end.isoformat()}
        record.write_text(json.dumps(saved | times))
        yield lake


def slowest_nodes(target: Path, count: int = 12) -> list[tuple[float, str]]:
    """The slowest nodes of the last dbt run (dbt's run_results.json)."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    timed = sorted(((r["execution_time"], r["unique_id"]) for r in results), reverse=True)
    return timed[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=25_000)
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--keep", type=Path, help="keep the lake in this folder and reuse it")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        lake_in(Path(tmp), args.users, args.days, args.keep) as lake,
    ):
        lake.settings.duckdb_file.unlink(missing_ok=True)  # the load and the build from scratch
        print(f"lake     {lake.events:>11,} events (streamed in {lake.stream_s:.0f} s)")
        started = time.perf_counter()
        rows, peak_mb = load_in_child(
            lake.settings, lake.start.isoformat(), lake.end.isoformat(), Path(tmp)
        )
        load_s = time.perf_counter() - started
        assert rows == lake.events, (rows, lake.events)
        print(
            f"load     {rows:>11,} rows   {load_s:>7.1f} s {rows / load_s:>10,.0f} rows/s "
            f"{peak_mb:>7,.0f} MB peak RSS "
            f"(memory limit {lake.settings.loader_memory_limit_mb} MiB)"
        )
        started = time.perf_counter()
        assert run_dbt(lake.settings, ["build", "--quiet"]) == 0
        build_s = time.perf_counter() - started
        print(f"dbt build {lake.events:>10,} events {build_s:>7.1f} s (all models and tests)")
        for seconds, node in slowest_nodes(docs_target(lake.settings)):
            print(f"  {seconds:>6.1f} s  {node}")
        print(
            f"events={lake.events} load_s={load_s:.1f} load_peak_rss_mb={peak_mb:.0f} "
            f"dbt_build_s={build_s:.1f}"
        )


if __name__ == "__main__":
    main()
