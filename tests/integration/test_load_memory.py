"""`beatlytica load` holds a bounded amount of memory, whatever the interval's size: the lake's
files stream into DuckDB, and DuckDB stays within BEATLYTICA_LOADER_MEMORY_LIMIT_MB (spilling
beyond it). The loader used to hold the whole interval as one Arrow table: it peaked at
2.2 GB on this test's lake, which loads in 0.3 GB (DuckDB's Parquet reader) and 0.5 GB (the
pyarrow stream) now."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.helpers import BEATLYTICA, ROOT, cli_env
from tests.unit.test_duckdb_loader import FILE_SCHEMA, HOUR, TOPIC, Lake

pytestmark = pytest.mark.integration

ROWS = 2_000_000
HOURS = 8
FILES_PER_HOUR = 2
LIMIT_MB = 128
#: the load's peak resident memory: the limit, the interpreter, pyarrow and DuckDB (about
#: 100 MB before anything is read), and the stream's batches and allocator caches
BOUND_MB = 640
#: a long string column, as the user agents are
USER_AGENT = "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36"


def write_lake(lake: Lake) -> int:
    """ROWS events of TOPIC over HOURS hours; returns the bytes they take in Arrow."""
    per_file = ROWS // (HOURS * FILES_PER_HOUR)
    total = 0
    for n in range(HOURS * FILES_PER_HOUR):
        hour = HOUR + timedelta(hours=n // FILES_PER_HOUR)
        ids = pa.array(range(n * per_file, (n + 1) * per_file), pa.int64())
        micros = pc.add(
            pc.multiply(pc.subtract(ids, n * per_file), 3_600_000_000 // per_file),
            int(hour.timestamp() * 1_000_000),
        )
        ts = pc.cast(micros, pa.timestamp("us", tz="UTC"))
        small = pc.cast(pc.bit_wise_and(ids, 1023), pa.string())
        columns = {}
        for field in FILE_SCHEMA:
            if field.name == "event_id":
                columns[field.name] = pc.utf8_lpad(pc.cast(ids, pa.string()), 32, "0")
            elif pa.types.is_timestamp(field.type):
                columns[field.name] = ts
            elif field.name == "user_agent":
                columns[field.name] = pc.binary_join_element_wise(USER_AGENT, small, "/")
            elif pa.types.is_string(field.type):
                columns[field.name] = pc.binary_join_element_wise(field.name, small, "-")
            elif pa.types.is_integer(field.type):
                columns[field.name] = pc.cast(pc.bit_wise_and(ids, 0xFFFF), field.type)
            else:
                columns[field.name] = pc.divide(pc.cast(ids, pa.float64()), 7.0)
        table = pa.table(columns).cast(FILE_SCHEMA)
        total += table.nbytes
        lake.write(hour, f"part-{n:05d}.parquet", table)
    return total


@pytest.mark.parametrize("folder", ["lake", "lake[stream]"], ids=["read_parquet", "arrow_stream"])
def test_a_large_interval_loads_within_the_memory_limit(tmp_path: Path, folder: str) -> None:
    """``lake[stream]`` is a path DuckDB would take for a pattern: it is read as a pyarrow
    stream, as a gs:// lake is."""
    lake = Lake((tmp_path / folder).as_uri())
    assert write_lake(lake) > BOUND_MB * 2**20, "the interval must not fit in the bound"
    env = cli_env(
        BEATLYTICA_HOME=str(tmp_path / "home"),
        BEATLYTICA_LAKE_URI=lake.uri,
        BEATLYTICA_DUCKDB_PATH=str(tmp_path / "w.duckdb"),
        BEATLYTICA_TOPICS=TOPIC,
        BEATLYTICA_LOADER_MEMORY_LIMIT_MB=str(LIMIT_MB),
    )
    end = HOUR + timedelta(hours=HOURS)
    with (tmp_path / "out").open("w+") as out, (tmp_path / "err").open("w+") as err:
        process = subprocess.Popen(
            [str(BEATLYTICA), "load", "--start", HOUR.isoformat(), "--end", end.isoformat()],
            stdout=out,
            stderr=err,
            env=env,
            cwd=ROOT,
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        assert process.returncode == 0, err.read()[-3000:]
        assert json.load(out) == {TOPIC: {"files": HOURS * FILES_PER_HOUR, "rows": ROWS}}
    peak_mb = usage.ru_maxrss / 1024
    assert peak_mb < BOUND_MB, f"the load peaked at {peak_mb:.0f} MB"
