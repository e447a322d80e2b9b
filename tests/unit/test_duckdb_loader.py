"""`beatlytica load` into DuckDB from a lake written the way the streaming job writes it:
committed files only, one row per event, the interval replaced in one transaction; the files
streamed (DuckDB's Parquet reader for a local lake, a pyarrow stream otherwise), and DuckDB's
memory bounded by BEATLYTICA_LOADER_MEMORY_LIMIT_MB."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from beatlytica.lake import filesystem, local_paths, raw_table_uri
from beatlytica.loader import interval_files, load
from beatlytica.schemas import arrow_lake_schema, duckdb_columns
from beatlytica.settings import Settings
from beatlytica.warehouse.duckdb_backend import DuckDBWarehouse

TOPIC = "listen_events"
FILE_SCHEMA = arrow_lake_schema(TOPIC, with_partitions=False)
HOUR = datetime(2026, 11, 1, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BEATLYTICA_"):
            monkeypatch.delenv(name)


def event(event_id: str, ts: datetime, offset: int = 0, **values: Any) -> dict[str, Any]:
    """A lake row of TOPIC; Kafka metadata from ``offset`` unless given."""
    row: dict[str, Any] = {}
    for field in FILE_SCHEMA:
        if pa.types.is_string(field.type):
            row[field.name] = f"{field.name}-{event_id}"
        elif pa.types.is_integer(field.type):
            row[field.name] = 1
        elif pa.types.is_floating(field.type):
            row[field.name] = 1.5
        elif pa.types.is_timestamp(field.type):
            row[field.name] = ts
        else:
            raise AssertionError(field)
    row.update(
        event_id=event_id,
        ts=ts,
        kafka_partition=0,
        kafka_offset=offset,
        kafka_timestamp=ts + timedelta(seconds=offset),
    )
    row.update(values)
    return row


class Lake:
    """TOPIC's file-sink table under ``lake_uri``: Parquet files in partition folders, the
    committed ones named in the commit log ``_spark_metadata/0``, as the streaming job writes."""

    def __init__(self, lake_uri: str, gcs_endpoint: str | None = None) -> None:
        self.uri = lake_uri
        self.table = raw_table_uri(lake_uri, TOPIC)
        self.fs, self.root = filesystem(self.table, gcs_endpoint)
        self.committed: list[str] = []

    def write(
        self,
        hour: datetime,
        name: str,
        table: pa.Table | list[dict[str, Any]],
        *,
        commit: bool = True,
    ) -> None:
        folder = f"event_date={hour:%Y-%m-%d}/event_hour={hour:%H}"
        self.fs.create_dir(f"{self.root}/{folder}", recursive=True)
        if isinstance(table, list):
            table = pa.Table.from_pylist(table, schema=FILE_SCHEMA)
        pq.write_table(table, f"{self.root}/{folder}/{name}", filesystem=self.fs)
        if commit:
            self.committed.append(f"{self.table}/{folder}/{name}")
            self.fs.create_dir(f"{self.root}/_spark_metadata", recursive=True)
            entries = [
                {"path": p, "size": 1, "isDir": False, "action": "add"} for p in self.committed
            ]
            with self.fs.open_output_stream(f"{self.root}/_spark_metadata/0") as out:
                out.write("\n".join(["v1", *map(json.dumps, entries)]).encode())


def settings_for(lake: Lake, tmp_path: Path, **values: Any) -> Settings:
    return Settings(
        home=tmp_path / "home",
        lake_uri=lake.uri,
        duckdb_path=tmp_path / "w.duckdb",
        topics=TOPIC,
        **values,
    )


def rows(settings: Settings) -> dict[str, dict[str, Any]]:
    con = duckdb.connect(str(settings.duckdb_file), read_only=True)
    try:
        cursor = con.execute(f"select * from raw.{TOPIC}")
        names = [d[0] for d in cursor.description]
        return {r[0]: dict(zip(names, r, strict=True)) for r in cursor.fetchall()}
    finally:
        con.close()


@pytest.fixture(params=["read_parquet", "arrow_stream"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways the warehouse reads files: DuckDB's Parquet reader (local lakes) and the
    pyarrow stream (gs:// lakes, and local paths DuckDB would take for a glob)."""
    if request.param == "arrow_stream":
        monkeypatch.setattr("beatlytica.lake.local_paths", lambda files: None)
    return str(request.param)


def test_an_interval_becomes_its_committed_events_once_each(tmp_path: Path, reader: str) -> None:
    lake = Lake((tmp_path / "lake").as_uri())
    h = HOUR
    lake.write(h - timedelta(hours=1), "part-0.parquet", [event("e0", h - timedelta(minutes=10))])
    lake.write(
        h,
        "part-1.parquet",
        [
            event("e1", h + timedelta(minutes=10), 10, artist="first"),
            event("e2", h + timedelta(minutes=20), 11),
        ],
    )
    # e1 again, a later Kafka record of it (a producer retry): the first one stays
    last = h + timedelta(hours=1, microseconds=-1)
    lake.write(
        h,
        "part-2.parquet",
        [event("e1", h + timedelta(minutes=10), 50, artist="again"), event("e3", last, 12)],
    )
    lake.write(h, "part-3-of-a-killed-batch.parquet", [event("e4", h)], commit=False)
    lake.write(
        h + timedelta(hours=1),
        "part-4.parquet",
        [
            event("e6", h + timedelta(minutes=70)),
            event("e7", h + timedelta(minutes=105)),
        ],
    )
    lake.write(h + timedelta(hours=2), "part-5.parquet", [event("e8", h + timedelta(minutes=130))])
    settings = settings_for(lake, tmp_path)

    load(settings, (TOPIC,), h - timedelta(hours=5), h + timedelta(hours=5))
    assert sorted(rows(settings)) == ["e0", "e1", "e2", "e3", "e6", "e7", "e8"]
    con = duckdb.connect(str(settings.duckdb_file))
    con.execute(
        f"insert into raw.{TOPIC} select * replace ('stale' as event_id) "
        f"from raw.{TOPIC} where event_id = 'e2'"
    )
    con.close()

    start, end = h, h + timedelta(minutes=90)
    [result] = load(settings, (TOPIC,), start, end)
    assert (result.files, result.rows) == (3, 4)
    loaded = rows(settings)
    # the stale row of the interval is gone, rows outside it are untouched
    assert sorted(loaded) == ["e0", "e1", "e2", "e3", "e6", "e7", "e8"]
    e1 = loaded["e1"]
    assert (e1["artist"], e1["kafka_offset"]) == ("first", 10)
    assert e1["ts"] == h + timedelta(minutes=10)
    assert (e1["event_date"], e1["event_hour"]) == (date(2026, 11, 1), 5)
    assert loaded["e6"]["event_hour"] == 6 and loaded["e1"]["loaded_at"] is not None


def test_a_reload_changes_nothing_and_an_empty_interval_is_emptied(
    tmp_path: Path, reader: str
) -> None:
    lake = Lake((tmp_path / "lake").as_uri())
    lake.write(
        HOUR, "part-0.parquet", [event(f"e{i}", HOUR + timedelta(minutes=i), i) for i in range(60)]
    )
    settings = settings_for(lake, tmp_path)
    end = HOUR + timedelta(hours=1)
    load(settings, (TOPIC,), HOUR, end)
    before = {
        k: {c: v for c, v in r.items() if c != "loaded_at"} for k, r in rows(settings).items()
    }
    load(settings, (TOPIC,), HOUR, end)
    after = {k: {c: v for c, v in r.items() if c != "loaded_at"} for k, r in rows(settings).items()}
    assert after == before and len(after) == 60
    warehouse = DuckDBWarehouse.from_settings(settings)
    try:
        assert warehouse.replace_interval(TOPIC, [], HOUR, HOUR + timedelta(minutes=30)) == 0
        assert warehouse.count(TOPIC, HOUR, end) == 30
    finally:
        warehouse.close()


def test_files_and_a_table_older_than_the_model_load_with_nulls_in_its_new_columns(
    tmp_path: Path, reader: str
) -> None:
    """An upgrade: the raw table and some lake files predate the model's newer columns (the
    lake's tag and extra_fields). The table gains them; old files read them as nulls, next to
    new files that have them."""
    new_columns = ("tag", "extra_fields")
    old_schema = pa.schema([f for f in FILE_SCHEMA if f.name not in new_columns])
    lake = Lake((tmp_path / "lake").as_uri())
    old = [{k: v for k, v in event("old", HOUR).items() if k not in new_columns}]
    lake.write(HOUR, "part-0.parquet", pa.Table.from_pylist(old, schema=old_schema))
    settings = settings_for(lake, tmp_path)
    columns = ", ".join(
        f"{name} {kind}" for name, kind in duckdb_columns(TOPIC).items() if name not in new_columns
    )
    con = duckdb.connect(str(settings.duckdb_file))
    con.execute("create schema raw")
    con.execute(f"create table raw.{TOPIC} ({columns})")
    con.close()

    load(settings, (TOPIC,), HOUR, HOUR + timedelta(hours=1))
    assert {k: (r["tag"], r["extra_fields"]) for k, r in rows(settings).items()} == {
        "old": (None, None)
    }
    lake.write(HOUR, "part-1.parquet", [event("new", HOUR, 1, extra_fields='{"shard":3}')])
    load(settings, (TOPIC,), HOUR, HOUR + timedelta(hours=1))
    assert {k: (r["tag"], r["extra_fields"]) for k, r in rows(settings).items()} == {
        "old": (None, None),
        "new": ("tag-new", '{"shard":3}'),
    }


def test_a_lake_folder_with_glob_characters_reads_the_listed_files_only(tmp_path: Path) -> None:
    """DuckDB would expand such a path as a pattern: the pyarrow stream reads it instead."""
    lake = Lake((tmp_path / "lake [1]*?").as_uri())
    lake.write(HOUR, "part-0.parquet", [event("e1", HOUR)])
    lake.write(HOUR, "part-1.parquet", [event("orphan", HOUR)], commit=False)
    settings = settings_for(lake, tmp_path)
    files = interval_files(settings, TOPIC, HOUR, HOUR + timedelta(hours=1))
    assert local_paths(files) == [
        f"{tmp_path}/lake [1]*?/raw/{TOPIC}/event_date=2026-11-01/event_hour=05/part-0.parquet"
    ]
    [result] = load(settings, (TOPIC,), HOUR, HOUR + timedelta(hours=1))
    assert result.rows == 1 and list(rows(settings)) == ["e1"]


def test_the_memory_limit_setting_is_duckdbs(tmp_path: Path) -> None:
    assert Settings().loader_memory_limit_mb == 1024
    with pytest.raises(ValidationError, match="greater than or equal to 64"):
        Settings(loader_memory_limit_mb=10)
    settings = Settings(duckdb_path=tmp_path / "w.duckdb", loader_memory_limit_mb=128)
    warehouse = DuckDBWarehouse.from_settings(settings)
    try:
        setting = lambda name: warehouse.con.execute(  # noqa: E731
            f"select current_setting('{name}')"
        ).fetchone()[0]
        assert setting("memory_limit") == "128.0 MiB"
        assert setting("temp_directory") == f"{tmp_path / 'w.duckdb'}.tmp"
        assert setting("threads") <= 2
    finally:
        warehouse.close()


def test_the_loader_pod_holds_duckdbs_memory_limit_and_the_process_around_it() -> None:
    from beatlytica.settings import Settings
    from tests.unit.test_helm_charts import CHART, load_yaml

    limit = load_yaml(CHART / "values.yaml")["jobs"]["resources"]["loader"]["limits"]["memory"]
    assert limit.endswith("Mi")
    assert int(limit.removesuffix("Mi")) >= Settings().loader_memory_limit_mb + 384
