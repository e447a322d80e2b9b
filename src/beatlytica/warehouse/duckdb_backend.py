"""The DuckDB warehouse: a local database file, the embedded stack's default."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from beatlytica.errors import BeatlyticaError
from beatlytica.events import LOADED_AT
from beatlytica.schemas import duckdb_columns, duckdb_not_null
from beatlytica.settings import Settings
from beatlytica.warehouse import DEDUPE_ORDER, FACT_TS

#: the schema dbt's local target builds its models in (dbt/profiles.yml)
DBT_SCHEMA = "main"


def create_table_sql(schema: str, topic: str) -> str:
    not_null = set(duckdb_not_null(topic))
    columns = ",\n  ".join(
        f"{name} {kind}{' not null' if name in not_null else ''}"
        for name, kind in duckdb_columns(topic).items()
    )
    return f"create table if not exists {schema}.{topic} (\n  {columns}\n)"


def replace_sql(schema: str, topic: str) -> list[str]:
    """The statements that replace one interval (parameters: start, end, start, end), run in
    one transaction against a relation ``batch`` holding the interval's lake rows."""
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


class DuckDBWarehouse:
    def __init__(self, path: Path, schema: str, gcs_endpoint: str | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(path))
        except duckdb.IOException as e:
            raise BeatlyticaError(f"cannot open the DuckDB warehouse {path}: {e}") from None
        self.con.execute("set TimeZone = 'UTC'")
        self.schema = schema
        self.gcs_endpoint = gcs_endpoint
        self.con.execute(f"create schema if not exists {schema}")

    @classmethod
    def from_settings(cls, settings: Settings) -> DuckDBWarehouse:
        return cls(settings.duckdb_file, settings.warehouse_raw_schema, settings.gcs_endpoint)

    def replace_interval(self, topic: str, files: list[str], start: datetime, end: datetime) -> int:
        from beatlytica.lake import read_lake_files

        self.con.execute(create_table_sql(self.schema, topic))
        self.con.register("batch", read_lake_files(files, topic, self.gcs_endpoint))
        params = {"start": start, "end": end}
        try:
            self.con.execute("begin transaction")
            try:
                for statement in replace_sql(self.schema, topic):
                    self.con.execute(statement, params)
                self.con.execute("commit")
            except BaseException:
                self.con.execute("rollback")
                raise
        finally:
            self.con.unregister("batch")
        return self.count(topic, start, end)

    def count(self, topic: str, start: datetime, end: datetime) -> int:
        self.con.execute(create_table_sql(self.schema, topic))
        row = self.con.execute(
            f"select count(*) from {self.schema}.{topic} where ts >= $start and ts < $end",
            {"start": start, "end": end},
        ).fetchone()
        return int(row[0]) if row else 0

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
