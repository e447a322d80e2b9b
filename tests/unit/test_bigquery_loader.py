"""The BigQuery backend without a network: the exact tables, jobs and SQL it would send."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlglot
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from beatlytica.errors import BeatlyticaError
from beatlytica.events import raw_table_fields
from beatlytica.schemas import bigquery_schema
from beatlytica.warehouse.bigquery_backend import BigQueryWarehouse

START = datetime(2026, 11, 1, 5, tzinfo=UTC)
END = datetime(2026, 11, 1, 6, tzinfo=UTC)
LAKE = "gs://beatlytica-lake/lake"
FILES = [
    f"{LAKE}/raw/listen_events/event_date=2026-11-01/event_hour=05/part-00000-a.c000.snappy.parquet",
    f"{LAKE}/raw/listen_events/event_date=2026-11-01/event_hour=05/part-00001-b.c000.snappy.parquet",
]


class FakeJob:
    def __init__(self, rows: list[dict[str, Any]] | None = None) -> None:
        self.rows = rows or []

    def result(self) -> list[dict[str, Any]]:
        return self.rows


class RecordingClient:
    """Records every call the backend makes, in order; answers like the real client."""

    def __init__(self, row_count: int = 42, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []
        self.row_count = row_count
        self.fail_on = fail_on
        self.schemas: dict[str, list[Any]] = {}

    def _record(self, name: str, arg: Any, **kwargs: Any) -> None:
        self.calls.append((name, arg, kwargs))
        if name == self.fail_on:
            raise gexc.Forbidden("Access Denied: Table test-project:raw.listen_events")

    def create_table(self, table: Any, exists_ok: bool = False) -> Any:
        self._record("create_table", table, exists_ok=exists_ok)
        return table

    def load_table_from_uri(self, uris: list[str], destination: str, job_config: Any) -> FakeJob:
        self._record("load_table_from_uri", uris, destination=destination, job_config=job_config)
        return FakeJob()

    def get_table(self, table_id: str) -> Any:
        self._record("get_table", table_id)
        # the raw table as the model makes it (or as the test sets it); a staging table bare
        if "__staging_" in table_id:
            return bigquery.Table(table_id)
        schema = self.schemas.get(table_id) or bigquery_schema(table_id.split(".")[2])
        return bigquery.Table(table_id, schema=schema)

    def update_table(self, table: Any, fields: list[str]) -> Any:
        self._record("update_table", table, fields=fields)
        return table

    def query(self, sql: str, job_config: Any) -> FakeJob:
        self._record("query", sql, job_config=job_config)
        return FakeJob([{"row_count": self.row_count, "id_digest": 7}])

    def delete_table(self, table_id: str, not_found_ok: bool = False) -> None:
        self._record("delete_table", table_id, not_found_ok=not_found_ok)

    def close(self) -> None:
        pass


@pytest.fixture
def client() -> RecordingClient:
    return RecordingClient()


@pytest.fixture
def warehouse(client: RecordingClient) -> BigQueryWarehouse:
    return BigQueryWarehouse(client, "test-project", "raw", LAKE)


def test_replacing_an_interval_sends_exactly_these_requests(warehouse, client) -> None:
    assert warehouse.replace_interval("listen_events", FILES, START, END) == 42
    names = [c[0] for c in client.calls]
    assert names == [
        "create_table",
        "get_table",
        "load_table_from_uri",
        "get_table",
        "update_table",
        "query",
        "delete_table",
    ]
    staging = "test-project.raw.listen_events__staging_20261101T0500_20261101T0600"

    _, table, kwargs = client.calls[0]
    assert kwargs == {"exists_ok": True}
    api = table.to_api_repr()
    assert api["tableReference"] == {
        "projectId": "test-project",
        "datasetId": "raw",
        "tableId": "listen_events",
    }
    assert api["timePartitioning"] == {"type": "DAY", "field": "ts"}
    assert api["clustering"] == {"fields": ["user_id"]}
    assert [f["name"] for f in api["schema"]["fields"]] == [
        f.column for f in raw_table_fields("listen_events")
    ]

    assert client.calls[1] == ("get_table", "test-project.raw.listen_events", {})

    _, uris, kwargs = client.calls[2]
    assert uris == FILES  # the committed files, never a wildcard
    assert kwargs["destination"] == staging
    config = kwargs["job_config"].to_api_repr()["load"]
    assert config["sourceFormat"] == "PARQUET"
    assert config["writeDisposition"] == "WRITE_TRUNCATE"
    assert config["hivePartitioningOptions"] == {
        "mode": "CUSTOM",
        "sourceUriPrefix": f"{LAKE}/raw/listen_events/{{event_date:DATE}}/{{event_hour:INTEGER}}",
        "requirePartitionFilter": False,
    }
    loaded_columns = [f["name"] for f in config["schema"]["fields"]]
    assert loaded_columns[0] == "event_id" and "event_hour" not in loaded_columns

    assert client.calls[4][2] == {"fields": ["expires"]}
    assert client.calls[4][1].expires > datetime.now(UTC)

    _, sql, kwargs = client.calls[5]
    assert sql == warehouse.replace_sql("listen_events", START, END)
    params = kwargs["job_config"].to_api_repr()["query"]["queryParameters"]
    assert params == [
        {
            "name": "start",
            "parameterType": {"type": "TIMESTAMP"},
            "parameterValue": {"value": "2026-11-01 05:00:00+00:00"},
        },
        {
            "name": "end",
            "parameterType": {"type": "TIMESTAMP"},
            "parameterValue": {"value": "2026-11-01 06:00:00+00:00"},
        },
    ]
    assert client.calls[6] == ("delete_table", staging, {"not_found_ok": True})


def test_a_raw_table_older_than_the_model_gains_its_new_columns(warehouse, client) -> None:
    """A table made before the model gained columns (the lake's tag and extra_fields) gets
    them appended, nullable, before the load inserts them; its own columns stay as they are."""
    table_id = "test-project.raw.listen_events"
    old = [f for f in bigquery_schema("listen_events") if f.name not in ("tag", "extra_fields")]
    client.schemas[table_id] = old
    warehouse.replace_interval("listen_events", FILES, START, END)
    updates = [c for c in client.calls if c[0] == "update_table"]
    assert updates[0][2] == {"fields": ["schema"]}
    evolved = updates[0][1].to_api_repr()
    assert evolved["tableReference"]["tableId"] == "listen_events"
    added = evolved["schema"]["fields"][len(old) :]
    assert [(f["name"], f["type"], f["mode"]) for f in added] == [
        ("tag", "STRING", "NULLABLE"),
        ("extra_fields", "STRING", "NULLABLE"),
    ]
    names = [c[0] for c in client.calls]
    assert names[:4] == ["create_table", "get_table", "update_table", "load_table_from_uri"]


def test_the_replace_script_is_valid_bigquery_sql(warehouse) -> None:
    script = warehouse.replace_sql("listen_events", START, END)
    statements = [s for s in sqlglot.parse(script, read="bigquery") if s is not None]
    kinds = [type(s).__name__ for s in statements]
    assert kinds == ["Transaction", "Delete", "Insert", "Commit", "Select"]
    delete, insert = statements[1], statements[2]
    assert delete.this.sql("bigquery") == "`test-project.raw.listen_events`"
    assert "ts >= @start AND ts < @end" in delete.sql("bigquery")
    insert_sql = insert.sql("bigquery")
    assert (
        "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY kafka_timestamp, "
        "kafka_partition, kafka_offset) = 1" in insert_sql
    )
    assert "listen_events__staging_20261101T0500_20261101T0600" in insert_sql
    assert "current_timestamp()" in insert_sql.lower()


def test_an_empty_interval_still_replaces_the_rows(warehouse, client) -> None:
    assert warehouse.replace_interval("auth_events", [], START, END) == 42
    names = [c[0] for c in client.calls]
    assert names == [
        "create_table",
        "get_table",
        "create_table",
        "get_table",
        "update_table",
        "query",
        "delete_table",
    ]


def test_the_fingerprint_query_counts_and_digests_the_interval(warehouse, client) -> None:
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, 1, tzinfo=UTC)
    assert warehouse.fingerprint("listen_events", start, end) == (42, 7)
    ((name, sql, kwargs),) = client.calls
    assert name == "query"
    assert sql == (
        "select count(*) as row_count, coalesce(bit_xor(cast(concat('0x', substr(event_id, 1, "
        "15)) as int64)), 0) as id_digest from `test-project.raw.listen_events` "
        "where ts >= @start and ts < @end"
    )
    assert sqlglot.parse_one(sql, read="bigquery")
    params = {p.name: p.value for p in kwargs["job_config"].query_parameters}
    assert params == {"start": start, "end": end}


def test_refuses_local_files_and_too_many_uris(warehouse) -> None:
    with pytest.raises(BeatlyticaError, match="gs:// lakes only"):
        warehouse.replace_interval("listen_events", ["file:///tmp/x.parquet"], START, END)
    with pytest.raises(BeatlyticaError, match="exceed BigQuery's 10000 URIs"):
        warehouse.replace_interval("listen_events", FILES * 5001, START, END)


def test_api_errors_become_one_clear_error() -> None:
    warehouse = BigQueryWarehouse(RecordingClient(fail_on="query"), "test-project", "raw", LAKE)
    with pytest.raises(BeatlyticaError, match="BigQuery load of listen_events failed: 403"):
        warehouse.replace_interval("listen_events", FILES, START, END)
