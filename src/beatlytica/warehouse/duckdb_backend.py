"""The DuckDB warehouse: a local database file, the embedded stack's default."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb

from beatlytica.errors import BeatlyticaError
from beatlytica.events import LAKE_PARTITION_FIELDS, LOADED_AT, id_digest_sql
from beatlytica.schemas import duckdb_columns, duckdb_not_null
from beatlytica.settings import Settings
from beatlytica.warehouse import DEDUPE_ORDER, FACT_TS

log = logging.getLogger(__name__)

#: the schema dbt's local target builds its models in (dbt/profiles.yml)
DBT_SCHEMA = "main"


def create_table_sql(schema: str, topic: str) -> str:
    not_null = set(duckdb_not_null(topic))
    columns = ",\n  ".join(
        f"{name} {kind}{' not null' if name in not_null else ''}"
        for name, kind in duckdb_columns(topic).items()
    )
    return f"create table if not exists {schema}.{topic} (\n  {columns}\n)"


def evolve_table_sql(schema: str, topic: str) -> list[str]:
    """What gives a raw table made before the model gained columns those columns (nullable,
    appended); no-ops for a table that has them."""
    not_null = set(duckdb_not_null(topic))
    return [
        f"alter table {schema}.{topic} add column if not exists {name} {kind}"
        for name, kind in duckdb_columns(topic).items()
        if name not in not_null
    ]


def replace_sql(schema: str, topic: str) -> list[str]:
    """The statements that replace one interval (parameters: start, end), run in one
    transaction: the delete, then the insert from the relation ``batch`` of the interval's
    lake rows (see DuckDBWarehouse.replace_interval)."""
    lake_columns = [c for c in duckdb_columns(topic) if c != LOADED_AT.column]
    columns = ", ".join(lake_columns)
    order = ", ".join(DEDUPE_ORDER)
    return [
        f"delete from {schema}.{topic} where ts >= $start and ts < $end",
        f"insert into {schema}.{topic} ({columns}, {LOADED_AT.column})\n"
        f"select {columns}, current_timestamp from batch\n"
        f"where ts >= $start and ts < $end\n"
        f"qualify row_number() over (partition by event_id order by {order}) = 1",
    ]


#: memory per DuckDB thread: a limit of N MiB runs at most N / 64 threads (see DuckDBWarehouse)
MEMORY_PER_THREAD_MB = 64

#: characters that make a read_parquet path a glob pattern in DuckDB
_GLOB_CHARS = frozenset("*?[")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def lake_view_sql(topic: str, paths: list[str], stored: set[str] | None = None) -> str:
    """A temporary view ``batch`` of the lake rows of ``paths`` (local Parquet files, exactly
    these: never a folder or a glob) typed as the raw table's columns, the partition columns
    read from the hive-style folder names (``event_hour=05`` -> 5). DuckDB reads the files
    as the query pulls rows, so memory does not grow with their size. Columns none of the
    files stores (``stored``: files written before the model gained them) read as nulls."""
    lake_columns = {c: t for c, t in duckdb_columns(topic).items() if c != LOADED_AT.column}
    partitions_ = {f.column for f in LAKE_PARTITION_FIELDS}
    select = ",\n  ".join(
        f"cast({c if stored is None or c in stored or c in partitions_ else 'null'} as {t}) as {c}"
        for c, t in lake_columns.items()
    )
    partitions = ", ".join(
        f"{_literal(f.column)}: {_literal(lake_columns[f.column])}" for f in LAKE_PARTITION_FIELDS
    )
    files = ", ".join(_literal(p) for p in paths)
    return (
        f"create or replace temp view batch as\nselect\n  {select}\n"
        f"from read_parquet([{files}], hive_partitioning = true, union_by_name = true, "
        f"hive_types = {{{partitions}}})"
    )


def _open(path: Path, lock_timeout_s: float) -> duckdb.DuckDBPyConnection:
    """Connect to the database file; while another process holds it (DuckDB has one writer:
    a second loader, dbt, reconcile), wait up to ``lock_timeout_s`` for it, then fail saying
    who holds it."""
    deadline = time.monotonic() + lock_timeout_s
    waiting = False
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as e:
            held = LOCK_CONFLICT in str(e)
            if not held or time.monotonic() >= deadline:
                after = f" after waiting {lock_timeout_s:.0f} s" if held and waiting else ""
                raise BeatlyticaError(
                    f"cannot open the DuckDB warehouse {path}{after}: {e}"
                ) from None
            if not waiting:
                log.info(
                    f"waiting for the DuckDB warehouse {path}: {str(e).splitlines()[0]}",
                    extra={"fields": {"warehouse": str(path), "timeout_s": lock_timeout_s}},
                )
                waiting = True
            time.sleep(0.5)


def wait_for_writer(path: Path, lock_timeout_s: float) -> None:
    """Return once no other process writes the database file (it could be opened for writing
    just now), waiting up to ``lock_timeout_s``; fail as `_open` does."""
    _open(path, lock_timeout_s).close()


#: how DuckDB's error names a database file another process holds
LOCK_CONFLICT = "Conflicting lock is held"


class DuckDBWarehouse:
    """``memory_limit_mb`` (BEATLYTICA_LOADER_MEMORY_LIMIT_MB) is DuckDB's ``memory_limit``:
    what a query needs beyond it spills to ``<database file>.tmp`` next to the database file,
    and DuckDB runs no more threads than the limit has room for."""

    def __init__(
        self,
        path: Path,
        schema: str,
        gcs_endpoint: str | None = None,
        memory_limit_mb: int | None = None,
        lock_timeout_s: float = 0,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.con = _open(path, lock_timeout_s)
        self.con.execute("set TimeZone = 'UTC'")
        if memory_limit_mb is not None:
            self.con.execute(f"set memory_limit = '{int(memory_limit_mb)}MiB'")
            # each thread of a query that spills pins buffers of its own: with too many threads
            # for the limit (2 in 64 MiB), the query fails out of memory instead of spilling
            row = self.con.execute("select current_setting('threads')").fetchone()
            assert row is not None  # a select without a from returns one row
            threads = int(row[0])
            most = max(1, memory_limit_mb // MEMORY_PER_THREAD_MB)
            if threads > most:
                self.con.execute(f"set threads = {most}")
        self.con.execute(f"set temp_directory = {_literal(str(path.parent / f'{path.name}.tmp'))}")
        # rows of an insert need not keep the order they were read in: DuckDB then streams
        # them without buffering
        self.con.execute("set preserve_insertion_order = false")
        self.schema = schema
        self.gcs_endpoint = gcs_endpoint
        self.con.execute(f"create schema if not exists {schema}")

    @classmethod
    def from_settings(cls, settings: Settings) -> DuckDBWarehouse:
        return cls(
            settings.duckdb_file,
            settings.warehouse_raw_schema,
            settings.gcs_endpoint,
            settings.loader_memory_limit_mb,
            settings.duckdb_lock_timeout_seconds,
        )

    def _register_batch(self, topic: str, files: list[str]) -> Callable[[], object]:
        """Make ``batch`` the lake rows of ``files``, streamed: local files through DuckDB's
        own Parquet reader, others (gs://) as a pyarrow stream DuckDB pulls batches from.
        Returns what drops it again."""
        from beatlytica.lake import lake_batches, local_paths

        paths = local_paths(files)
        if paths is not None and not any(_GLOB_CHARS & set(p) for p in paths):
            files_ = ", ".join(_literal(p) for p in paths)
            stored = {
                row[0]
                for row in self.con.execute(
                    f"select distinct name from parquet_schema([{files_}])"
                ).fetchall()
            }
            self.con.execute(lake_view_sql(topic, paths, stored))
            return lambda: self.con.execute("drop view if exists temp.batch")
        self.con.register("batch", lake_batches(files, topic, self.gcs_endpoint))
        return lambda: self.con.unregister("batch")

    def replace_interval(self, topic: str, files: list[str], start: datetime, end: datetime) -> int:
        """One transaction: the interval's rows are deleted, then the events of ``files``
        inserted by one statement, which DuckDB streams from the files and deduplicates within
        its memory limit (spilling the rest). One statement, not one per lake partition: many
        small inserts go through the write-ahead log and are written again at the checkpoint,
        which made the load of ten million events about a fifth slower."""
        self.con.execute(create_table_sql(self.schema, topic))
        for statement in evolve_table_sql(self.schema, topic):
            self.con.execute(statement)
        delete, insert = replace_sql(self.schema, topic)
        params = {"start": start, "end": end}
        self.con.execute("begin transaction")
        drop_batch: Callable[[], object] | None = None
        try:
            self.con.execute(delete, params)
            if files:
                try:
                    drop_batch = self._register_batch(topic, files)
                    self.con.execute(insert, params)
                except duckdb.Error as e:
                    raise BeatlyticaError(
                        f"cannot load {topic} for [{start.isoformat()}, {end.isoformat()}): "
                        f"reading its committed lake files failed, nothing was loaded: "
                        f"{str(e).splitlines()[0]}"
                    ) from None
                drop_batch()
                drop_batch = None
            self.con.execute("commit")
        except BaseException:
            self.con.execute("rollback")
            if drop_batch is not None:  # after the rollback: the transaction refuses it before
                drop_batch()
            raise
        return self.count(topic, start, end)

    def count(self, topic: str, start: datetime, end: datetime) -> int:
        self.con.execute(create_table_sql(self.schema, topic))
        row = self.con.execute(
            f"select count(*) from {self.schema}.{topic} where ts >= $start and ts < $end",
            {"start": start, "end": end},
        ).fetchone()
        return int(row[0]) if row else 0

    def fingerprint(self, topic: str, start: datetime, end: datetime) -> tuple[int, int]:
        self.con.execute(create_table_sql(self.schema, topic))
        row = self.con.execute(
            f"select count(*), {id_digest_sql('duckdb')} from {self.schema}.{topic} "
            "where ts >= $start and ts < $end",
            {"start": start, "end": end},
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def count_model(self, model: str, start: datetime, end: datetime) -> int:
        try:
            row = self.con.execute(
                f"select count(*) from {DBT_SCHEMA}.{model} "
                f"where {FACT_TS} >= $start and {FACT_TS} < $end",
                {"start": start, "end": end},
            ).fetchone()
        except duckdb.CatalogException:
            raise BeatlyticaError(f"no dbt model {model} in the warehouse; run dbt first") from None
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.con.close()
