"""The event model and every schema derived from it agree field for field."""

from __future__ import annotations

import hashlib

import duckdb
import pytest
from google.cloud.bigquery import SchemaField
from pyspark.sql import types as T

from beatlytica import events, schemas
from beatlytica.events import TOPIC_NAMES, TOPICS, FieldType, event_id, lake_fields

EVENTSIM_COMMON = {
    "ts",
    "sessionId",
    "level",
    "itemInSession",
    "zip",
    "city",
    "state",
    "lat",
    "lon",
    "userAgent",
    "userId",
    "lastName",
    "firstName",
    "gender",
    "registration",
    # optional: Eventsim's --tag option writes it with the user's details
    "tag",
}


def test_topics_are_eventsims_four() -> None:
    assert TOPIC_NAMES == (
        "listen_events",
        "page_view_events",
        "auth_events",
        "status_change_events",
    )


@pytest.mark.parametrize(
    ("topic", "extra"),
    [
        ("listen_events", {"artist", "song", "duration", "auth"}),
        ("page_view_events", {"page", "auth", "method", "status", "artist", "song", "duration"}),
        ("auth_events", {"success"}),
        ("status_change_events", {"auth"}),
    ],
)
def test_fields_match_eventsim(topic: str, extra: set[str]) -> None:
    assert set(TOPICS[topic].field_names) == EVENTSIM_COMMON | extra
    assert not TOPICS[topic].field("tag").required


def test_eventsim_types() -> None:
    listen = TOPICS["listen_events"]
    assert listen.field("ts").type is FieldType.EPOCH_MILLIS
    assert listen.field("registration").type is FieldType.EPOCH_MILLIS
    assert listen.field("sessionId").type is FieldType.LONG
    assert listen.field("userId").type is FieldType.LONG
    assert listen.field("itemInSession").type is FieldType.INT
    assert listen.field("zip").type is FieldType.STRING
    assert listen.field("duration").type is FieldType.DOUBLE
    assert TOPICS["auth_events"].field("success").type is FieldType.BOOLEAN
    assert not listen.field("userId").required


def test_snake_case_columns() -> None:
    assert events.to_snake_case("itemInSession") == "item_in_session"
    assert events.to_snake_case("userAgent") == "user_agent"
    assert events.to_snake_case("event_id") == "event_id"
    for topic in TOPIC_NAMES:
        columns = [f.column for f in lake_fields(topic)]
        assert len(columns) == len(set(columns)), topic


@pytest.mark.parametrize("topic", TOPIC_NAMES)
def test_json_schema_agrees_with_model(topic: str) -> None:
    schema = schemas.json_schema(topic)
    model = TOPICS[topic]
    assert list(schema["properties"]) == list(model.field_names)
    assert schema["required"] == list(model.required_names)
    expected = {
        "long": "integer",
        "int": "integer",
        "epoch_millis": "integer",
        "double": "number",
        "string": "string",
        "boolean": "boolean",
    }
    for f in model.fields:
        prop = schema["properties"][f.name]
        assert prop["type"] == expected[f.type.value], f.name
        assert prop.get("enum") == (list(f.allowed) if f.allowed else None)


@pytest.mark.parametrize("topic", TOPIC_NAMES)
def test_spark_schemas_agree_with_model(topic: str) -> None:
    payload = schemas.spark_payload_schema(topic)
    model = TOPICS[topic]
    spark_types = {
        FieldType.LONG: T.LongType(),
        FieldType.INT: T.IntegerType(),
        FieldType.EPOCH_MILLIS: T.LongType(),
        FieldType.DOUBLE: T.DoubleType(),
        FieldType.STRING: T.StringType(),
        FieldType.BOOLEAN: T.BooleanType(),
    }
    assert [(s.name, s.dataType) for s in payload.fields] == [
        (f.name, spark_types[f.type]) for f in model.fields
    ]
    lake = schemas.spark_lake_schema(topic)
    assert [s.name for s in lake.fields] == [f.column for f in lake_fields(topic)]
    assert lake["ts"].dataType == T.TimestampType()
    assert lake["registration"].dataType == T.TimestampType()
    assert lake["item_in_session"].dataType == T.IntegerType()
    assert not lake["event_id"].nullable and lake["user_id"].nullable


@pytest.mark.parametrize("topic", TOPIC_NAMES)
def test_bigquery_schema_agrees_with_model(topic: str) -> None:
    fields = schemas.bigquery_schema(topic)
    assert all(isinstance(f, SchemaField) for f in fields)
    by_name = {f.name: f for f in fields}
    expected = [f.column for f in lake_fields(topic)] + ["event_date", "event_hour", "loaded_at"]
    assert [f.name for f in fields] == expected
    assert by_name["ts"].field_type == "TIMESTAMP"
    assert by_name["session_id"].field_type == "INT64"
    assert by_name["session_id"].mode == "REQUIRED"
    assert by_name["user_id"].mode == "NULLABLE"
    assert by_name["event_date"].field_type == "DATE"
    assert by_name["lat"].field_type == "FLOAT64"
    assert by_name["loaded_at"].field_type == "TIMESTAMP"


@pytest.mark.parametrize("topic", TOPIC_NAMES)
def test_duckdb_columns_create_a_real_table(topic: str) -> None:
    columns = schemas.duckdb_columns(topic)
    not_null = set(schemas.duckdb_not_null(topic))
    ddl = ", ".join(f'"{c}" {t}{" NOT NULL" if c in not_null else ""}' for c, t in columns.items())
    con = duckdb.connect()
    con.execute(f"create table t ({ddl})")
    described = con.execute("describe t").fetchall()
    assert [row[0] for row in described] == [f.column for f in lake_fields(topic)] + [
        "event_date",
        "event_hour",
        "loaded_at",
    ]
    types = {row[0]: row[1] for row in described}
    assert types["ts"] == "TIMESTAMP WITH TIME ZONE"
    assert types["session_id"] == "BIGINT"
    assert types["item_in_session"] == "INTEGER"
    assert {row[0] for row in described if row[2] == "NO"} == not_null


def test_event_id_is_sha256_of_topic_and_coordinates() -> None:
    payload = {"ts": 1793491423172, "sessionId": 12, "itemInSession": 3, "userId": 9}
    expected = hashlib.sha256(b"listen_events|12|3|1793491423172").hexdigest()[:32]
    assert event_id("listen_events", payload) == expected
    # a listen and its NextSong page view share coordinates, not ids
    assert event_id("page_view_events", payload) != expected
    # other fields do not matter: the id is the event's coordinates
    assert event_id("listen_events", {**payload, "userId": 10}) == expected


@pytest.mark.parametrize(
    "bad", [{"ts": 1, "sessionId": 2}, {"ts": "1", "sessionId": 2, "itemInSession": 0}]
)
def test_event_id_names_the_missing_field(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="event_id needs integer"):
        event_id("listen_events", bad)


def test_partition_key() -> None:
    assert events.partition_key({"userId": 5, "sessionId": 9}) == b"5"
    assert events.partition_key({"sessionId": 9}) == b"9"


@pytest.mark.parametrize("topic", TOPIC_NAMES)
def test_arrow_schema_agrees_with_model(topic: str) -> None:
    import pyarrow as pa

    schema = schemas.arrow_lake_schema(topic)
    assert schema.names == [f.column for f in lake_fields(topic)] + ["event_date", "event_hour"]
    assert schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("event_hour").type == pa.int32()
    assert schema.field("session_id").type == pa.int64()
    assert not schema.field("event_id").nullable and schema.field("user_id").nullable
    assert schemas.arrow_lake_schema(topic, with_partitions=False).names == schema.names[:-2]


def test_the_id_digest_is_the_same_in_python_duckdb_and_bigquery_sql() -> None:
    import duckdb
    import sqlglot

    from beatlytica.events import id_digest, id_digest_sql

    ids = [
        event_id("listen_events", {"sessionId": s, "itemInSession": 0, "ts": 1}) for s in range(50)
    ]
    con = duckdb.connect()
    con.execute("create table t (event_id varchar)")
    con.executemany("insert into t values (?)", [[i] for i in ids])
    assert con.execute(f"select {id_digest_sql('duckdb')} from t").fetchone()[0] == id_digest(ids)
    assert con.execute(f"select {id_digest_sql('duckdb')} from t where false").fetchone()[0] == 0
    # a lost event and a duplicated one keep the count, not the digest
    assert id_digest([*ids[1:], ids[2]]) != id_digest(ids)
    bigquery = f"select {id_digest_sql('bigquery')} from `p.d.t`"
    assert sqlglot.parse_one(bigquery, read="bigquery").sql("bigquery")
    assert "cast(concat('0x', substr(event_id, 1, 15)) as int64)" in bigquery
