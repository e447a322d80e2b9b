"""Warehouse times on DuckDB: `beatlytica load` of the whole window and a full `dbt build`.

    .venv/bin/python -m benchmarks.warehouse --users 25000   # about 1M events
    .venv/bin/python -m benchmarks.warehouse --users 250000  # about 10M events

The lake is made the real way (generator -> Kafka -> Spark job) and is not timed here; the
load and the dbt build are, each as one command, the way Airflow runs them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from beatlytica.dbt_runner import run_dbt
from beatlytica.loader import load
from benchmarks.lakes import streamed_lake


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=25_000)
    parser.add_argument("--days", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, streamed_lake(Path(tmp), args.users,
                                                              args.days) as lake:  # fmt: skip
        print(f"lake     {lake.events:>11,} events (streamed in {lake.stream_s:.0f} s)")
        started = time.perf_counter()
        results = load(lake.settings, lake.settings.topics, lake.start, lake.end)
        load_s = time.perf_counter() - started
        rows = sum(r.rows for r in results)
        assert rows == lake.events, (rows, lake.events)
        print(f"load     {rows:>11,} rows   {load_s:>7.1f} s {rows / load_s:>10,.0f} rows/s")
        started = time.perf_counter()
        assert run_dbt(lake.settings, ["build", "--quiet"]) == 0
        build_s = time.perf_counter() - started
        print(f"dbt build {lake.events:>10,} events {build_s:>7.1f} s (all models and tests)")


if __name__ == "__main__":
    main()
