"""Streaming job throughput: events per second from the local broker to the lake on local[2].

    .venv/bin/python -m benchmarks.stream [--users 60000] [--days 2]

Produces the simulated window into a fresh local broker, then times one availableNow run of
the job (all four topics, raw and quarantine queries) into a temporary lake and prints the
events read per second of wall time, Spark start-up included.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from beatlytica.events import TOPIC_NAMES
from beatlytica.lake import committed_files, raw_table_uri
from benchmarks.lakes import streamed_lake


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=60_000)
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        streamed_lake(Path(tmp), args.users, args.days, args.master) as lake,
    ):
        print(f"produced {lake.events:,} events in {lake.generate_s:.1f} s")
        files = sum(len(committed_files(raw_table_uri(lake.settings.lake, t))) for t in TOPIC_NAMES)
        print(
            f"stream   {lake.events:>10,} events {lake.stream_s:>7.1f} s "
            f"{lake.events / lake.stream_s:>9,.0f} events/s ({args.master}, {files} files)"
        )


if __name__ == "__main__":
    main()
