"""Schemas derived from the event model: JSON Schema, Spark, BigQuery, DuckDB.

Each function reads :mod:`beatlytica.events` and nothing else; heavy libraries (pyspark,
google-cloud-bigquery) are imported inside the function that needs them, so importing this
module stays cheap for the generator, the loader and Airflow's DAG parser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from beatlytica.events import (
    IDENTIFIED_AUTH_STATES,
    LAKE_PARTITION_FIELDS,
    TOPICS,
    USER_DETAIL_FIELDS,
    Field,
    FieldType,
    lake_fields,
    raw_table_fields,
)

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from google.cloud.bigquery import SchemaField
    from pyspark.sql.types import StructType

_JSON_TYPES = {
    FieldType.LONG: "integer",
    FieldType.INT: "integer",
    FieldType.EPOCH_MILLIS: "integer",
    FieldType.DOUBLE: "number",
    FieldType.STRING: "string",
    FieldType.BOOLEAN: "boolean",
}
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


def json_schema(topic: str, *, strict: bool = False) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a topic's payload.

    ``strict`` also rejects fields the model does not know: the pipeline takes them (the lake
    keeps them in ``extra_fields``), the generator's tests prove it writes none.
    """
    t = TOPICS[topic]
    properties: dict[str, Any] = {}
    for f in t.fields:
        prop: dict[str, Any] = {"type": _JSON_TYPES[f.type], "description": f.description}
        if f.type in (FieldType.INT,):
            prop["minimum"], prop["maximum"] = _INT32
        elif f.type in (FieldType.LONG, FieldType.EPOCH_MILLIS):
            prop["minimum"], prop["maximum"] = _INT64
        if f.allowed:
            prop["enum"] = list(f.allowed)
        properties[f.name] = prop
    user_detail_names = [f.name for f in USER_DETAIL_FIELDS]
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://beatlytica.dev/schemas/{topic}.json",
        "title": topic,
        "description": t.description,
        "type": "object",
        "properties": properties,
        "required": list(t.required_names),
        "additionalProperties": not strict,
        # identified users carry all their details, anonymous ones none of them
        "dependentRequired": {
            name: [other for other in user_detail_names if other != name]
            for name in user_detail_names
        },
    }
    if "auth" in t.field_names:
        schema["if"] = {"properties": {"auth": {"enum": list(IDENTIFIED_AUTH_STATES)}}}
        schema["then"] = {"required": ["userId"]}
        schema["else"] = {"not": {"required": ["userId"]}}
    elif "success" in t.field_names:
        # a login that succeeded identifies the user; a failed one leaves them anonymous
        schema["if"] = {"properties": {"success": {"const": True}}}
        schema["then"] = {"required": ["userId"]}
        schema["else"] = {"not": {"required": ["userId"]}}
    return schema


def spark_payload_schema(topic: str) -> StructType:
    """The StructType Spark's ``from_json`` parses a topic's Kafka value with (JSON names)."""
    from pyspark.sql import types as T

    spark_types = {
        FieldType.LONG: T.LongType(),
        FieldType.INT: T.IntegerType(),
        FieldType.EPOCH_MILLIS: T.LongType(),
        FieldType.DOUBLE: T.DoubleType(),
        FieldType.STRING: T.StringType(),
        FieldType.BOOLEAN: T.BooleanType(),
    }
    return T.StructType(
        [T.StructField(f.name, spark_types[f.type], True) for f in TOPICS[topic].fields]
    )


def spark_lake_schema(topic: str) -> StructType:
    """The StructType of a topic's lake files (snake_case columns, timestamps converted)."""
    from pyspark.sql import types as T

    spark_types = {
        FieldType.LONG: T.LongType(),
        FieldType.INT: T.IntegerType(),
        FieldType.DOUBLE: T.DoubleType(),
        FieldType.STRING: T.StringType(),
        FieldType.BOOLEAN: T.BooleanType(),
        FieldType.TIMESTAMP: T.TimestampType(),
        FieldType.DATE: T.DateType(),
    }
    return T.StructType(
        [
            T.StructField(f.column, spark_types[f.storage_type], not f.required)
            for f in lake_fields(topic)
        ]
    )


def arrow_lake_schema(topic: str, *, with_partitions: bool = True) -> pa.Schema:
    """The Arrow schema of a topic's lake rows as readers see them (partitions typed)."""
    import pyarrow as pa

    arrow_types = {
        FieldType.LONG: pa.int64(),
        FieldType.INT: pa.int32(),
        FieldType.DOUBLE: pa.float64(),
        FieldType.STRING: pa.string(),
        FieldType.BOOLEAN: pa.bool_(),
        FieldType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
        FieldType.DATE: pa.date32(),
    }
    fields = (*lake_fields(topic), *(LAKE_PARTITION_FIELDS if with_partitions else ()))
    return pa.schema(
        [pa.field(f.column, arrow_types[f.storage_type], not f.required) for f in fields]
    )


_BQ_TYPES = {
    FieldType.LONG: "INT64",
    FieldType.INT: "INT64",
    FieldType.DOUBLE: "FLOAT64",
    FieldType.STRING: "STRING",
    FieldType.BOOLEAN: "BOOL",
    FieldType.TIMESTAMP: "TIMESTAMP",
    FieldType.DATE: "DATE",
}


def _bq_field(f: Field) -> SchemaField:
    from google.cloud.bigquery import SchemaField

    return SchemaField(
        f.column,
        _BQ_TYPES[f.storage_type],
        mode="REQUIRED" if f.required else "NULLABLE",
        description=f.description,
    )


def bigquery_schema(topic: str) -> list[SchemaField]:
    """BigQuery schema of a topic's raw table (lake columns, partitions, loaded_at)."""
    return [_bq_field(f) for f in raw_table_fields(topic)]


_DUCKDB_TYPES = {
    FieldType.LONG: "BIGINT",
    FieldType.INT: "INTEGER",
    FieldType.DOUBLE: "DOUBLE",
    FieldType.STRING: "VARCHAR",
    FieldType.BOOLEAN: "BOOLEAN",
    FieldType.TIMESTAMP: "TIMESTAMP WITH TIME ZONE",
    FieldType.DATE: "DATE",
}


def duckdb_columns(topic: str) -> dict[str, str]:
    """DuckDB column types of a topic's raw table, in order, keyed by column name."""
    return {f.column: _DUCKDB_TYPES[f.storage_type] for f in raw_table_fields(topic)}


def duckdb_not_null(topic: str) -> tuple[str, ...]:
    """Columns of a topic's raw DuckDB table that are NOT NULL."""
    return tuple(f.column for f in raw_table_fields(topic) if f.required)
