"""Streaming job cost: events/s, CPU per event and lake bytes per event on local[2].

    .venv/bin/python -m benchmarks.stream [--users 60000] [--days 2] [--threads]

Produces the simulated window into a fresh local broker (3 partitions per topic), starts Spark
(timed apart: ``startup_s``), then times one availableNow run of the job over all four topics
into a temporary lake. CPU is the driver's: this Python process and the Spark JVM it launched
(with any process under it), read from /proc before and after the run. Lake bytes are the raw
tables' committed Parquet files. ``--threads`` also prints the Spark JVM's CPU by thread name
(compilers, collector, tasks). The last line is the machine-readable summary:

    events=N seconds=S events_per_s=R cpu_us_per_event=C lake_bytes_per_event=B startup_s=T
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from beatlytica.events import TOPIC_NAMES
from beatlytica.lake import committed_files, filesystem, raw_table_uri
from benchmarks.lakes import backlog

TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(c) for c in children]
    return found


def _tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process and its live descendants (/proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
        return own + sum(_tree_cpu_s(child) for child in _children(pid))
    except FileNotFoundError:
        return 0.0


def driver_cpu_s(spark: Any) -> float:
    """This process's CPU (every thread) and the Spark JVM's (the gateway's process)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    jvm = spark.sparkContext._gateway.proc.pid
    return usage.ru_utime + usage.ru_stime + _tree_cpu_s(jvm)


def jvm_threads_cpu_s(spark: Any) -> dict[str, float]:
    """CPU seconds of the Spark JVM's live threads, grouped by name (digits dropped)."""
    groups: dict[str, float] = {}
    jvm = spark.sparkContext._gateway.proc.pid
    for task in Path(f"/proc/{jvm}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        group = "".join(c for c in name if not c.isdigit()).strip(" -#")
        groups[group] = groups.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
    return groups


def lake_bytes(lake: str) -> tuple[int, int]:
    """(bytes, files) of the committed Parquet files of every raw table."""
    total = files = 0
    for topic in TOPIC_NAMES:
        for uri in committed_files(raw_table_uri(lake, topic)):
            fs, path = filesystem(uri)
            total += fs.get_file_info(path).size
            files += 1
    return total, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=60_000)
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--threads", action="store_true", help="print the JVM CPU by thread")
    args = parser.parse_args()
    from spark_jobs.stream_events import build_session, stream

    with tempfile.TemporaryDirectory() as tmp, backlog(Path(tmp), args.users, args.days) as work:
        print(f"produced {work.events:,} events in {work.generate_s:.1f} s", flush=True)
        started = time.perf_counter()
        spark = build_session(work.settings, args.master)
        spark.range(1).count()  # the JVM and its executors are up
        startup_s = time.perf_counter() - started
        try:
            cpu_before, started = driver_cpu_s(spark), time.perf_counter()
            assert stream(spark, work.settings) == 0
            seconds = time.perf_counter() - started
            cpu_s = driver_cpu_s(spark) - cpu_before
            if args.threads:
                threads = jvm_threads_cpu_s(spark)
                for name, spent in sorted(threads.items(), key=lambda kv: -kv[1])[:15]:
                    print(f"  {spent:7.1f} CPU s  {name}")
        finally:
            spark.stop()
        size, files = lake_bytes(work.settings.lake)
    events = work.events
    print(f"{files} committed files, {size:,} bytes, {cpu_s:.1f} CPU s ({args.master})")
    print(
        f"events={events} seconds={seconds:.1f} events_per_s={events / seconds:.0f} "
        f"cpu_us_per_event={cpu_s / events * 1e6:.1f} lake_bytes_per_event={size / events:.1f} "
        f"startup_s={startup_s:.1f}"
    )


if __name__ == "__main__":
    main()
