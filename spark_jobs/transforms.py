"""Pure DataFrame transformations of the streaming job: parse, validate, enrich, quarantine.

Every function takes and returns DataFrames and touches no I/O, so the unit tests run them on
small DataFrames in a local SparkSession. Column lists and types come from the event model
(:mod:`beatlytica.events`, :mod:`beatlytica.schemas`), never from a copy here.

The session time zone must be UTC (the job sets it): event_date and event_hour are UTC.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from beatlytica.events import (
    EVENT_ID_FIELDS,
    EVENT_ID_HEX_CHARS,
    EVENT_ID_SEPARATOR,
    EXTRA_FIELDS,
    IDENTIFIED_AUTH_STATES,
    LAKE_PARTITION_FIELDS,
    TOPICS,
    USER_DETAIL_FIELDS,
    FieldType,
    lake_fields,
)
from beatlytica.schemas import spark_payload_schema
from beatlytica.settings import Settings
from beatlytica.timeparse import parse_utc, to_epoch_ms

#: the columns of Spark's Kafka source that :func:`parse` reads
KAFKA_SCHEMA = T.StructType(
    [
        T.StructField("key", T.BinaryType()),
        T.StructField("value", T.BinaryType()),
        T.StructField("topic", T.StringType()),
        T.StructField("partition", T.IntegerType()),
        T.StructField("offset", T.LongType()),
        T.StructField("timestamp", T.TimestampType()),
    ]
)
CORRUPT = "_corrupt_record"
PAYLOAD = "payload"
ERROR = "error"
#: the reason of a value that looks like a JSON object but does not parse as one
UNREADABLE_OBJECT = "malformed JSON object (broken, cut short, or nested over 1000 levels deep)"
#: columns of the quarantine files, in order
QUARANTINE_COLUMNS = (
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "kafka_key",
    "raw_value",
    ERROR,
    "quarantined_at",
    "quarantine_date",
)


@dataclass(frozen=True)
class Limits:
    """What the lake takes beyond the model's types: values up to ``max_event_bytes``, and
    event times ``ts`` from ``earliest_ms`` and every time field (``registration`` too, from
    1970) up to ``max_ahead_ms`` after the record's Kafka timestamp. Relative to the Kafka
    timestamp, not to the clock, so a replay of a batch decides exactly as the first run did.
    Outside the window an event would land in a partition no interval loads (seconds sent as
    milliseconds fall in 1970), or overflow a timestamp (Long.MaxValue milliseconds crashed
    every batch); a value over the size limit would carry megabytes of text into the
    dimensions. Each is quarantined instead."""

    earliest_ms: int
    max_ahead_ms: int
    max_event_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            to_epoch_ms(parse_utc(settings.stream_event_time_min)),
            settings.stream_event_time_max_ahead_hours * 3_600_000,
            settings.stream_max_event_bytes,
        )

    def describe_window(self) -> str:
        earliest = datetime.fromtimestamp(self.earliest_ms / 1000, UTC)
        return (
            f"before {earliest:%Y-%m-%dT%H:%M:%SZ} or over {self.max_ahead_ms // 3_600_000} h "
            "after the Kafka timestamp"
        )


#: the limits of the settings' defaults
DEFAULT_LIMITS = Limits.from_settings(Settings.model_construct())


#: id fields some Eventsim setups write as JSON strings ("123"): parsed as text, a string that
#: is an integer is the number, an empty string no id; anything else is the wrong type
TEXT_IDS = ("userId",)


def id_column(name: str) -> str:
    """The column of a parse holding the number of the text id ``name`` (null when none)."""
    return f"_{name}"


def parse(kafka: DataFrame, topic: str, limits: Limits = DEFAULT_LIMITS) -> DataFrame:
    """Kafka rows (key, value, topic, partition, offset, timestamp) -> Kafka metadata, the raw
    value as text, the parsed ``payload`` struct and an ``error`` (null when the row is valid).
    The key stays bytes (the quarantine keeps it as it came). A value over the size limit is
    not parsed at all."""
    model = TOPICS[topic]
    text_ids = [name for name in TEXT_IDS if name in model.field_names]
    schema = T.StructType(
        [
            T.StructField(f.name, T.StringType(), True) if f.name in text_ids else f
            for f in spark_payload_schema(topic).fields
        ]
    ).add(T.StructField(CORRUPT, T.StringType()))
    raw = F.col("value").cast("string")
    parsed = kafka.select(
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.col("key").alias("kafka_key"),
        raw.alias("raw_value"),
        F.from_json(
            F.when(F.length("value") <= limits.max_event_bytes, raw),
            schema,
            {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT},
        ).alias(PAYLOAD),
    )
    for name in text_ids:
        parsed = parsed.withColumn(id_column(name), F.col(PAYLOAD)[name].try_cast("long"))
    return parsed.withColumn(ERROR, validation_error(topic, limits))


def _listing(prefix: str, items: list[tuple[Column, Column]]) -> Column | None:
    """``prefix`` + the labels of the items whose condition holds, joined, or null when none
    does. A valid row pays for the conditions only, not for building an empty list."""
    if not items:
        return None
    any_holds = functools.reduce(lambda a, b: a | b, (condition for condition, _ in items))
    joined = F.concat_ws(", ", *(F.when(condition, label) for condition, label in items))
    return F.when(any_holds, F.concat(F.lit(prefix), joined))


def validation_error(topic: str, limits: Limits = DEFAULT_LIMITS) -> Column:
    """Why a parsed row cannot enter the lake, or null. Checked in order: an empty value, one
    over the size limit, bytes that are not UTF-8, a record of another topic, text that is not
    a JSON object, fields of the wrong type, missing required fields, an identified user
    without a userId, a user with some details but not all, event times outside the window,
    values outside a field's vocabulary."""
    model = TOPICS[topic]
    payload = F.col(PAYLOAD)
    raw = F.col("raw_value")
    is_object = F.from_json(raw, T.MapType(T.StringType(), T.StringType())).isNotNull()
    braced = F.ltrim(raw).startswith("{")
    wrong_types = [
        (
            payload[f.name].isNull() & F.get_json_object(raw, f"$.{f.name}").isNotNull(),
            F.lit(f"{f.name} (expected {f.type.value})"),
        )
        for f in model.fields
        if f.name not in TEXT_IDS
    ]
    missing = [(payload[f.name].isNull(), F.lit(f.name)) for f in model.fields if f.required]
    latest = F.unix_millis(F.col("kafka_timestamp")) + F.lit(limits.max_ahead_ms)
    # the floor is the event's (ts); an earlier registration is a fact about the user
    floors = {f.name: limits.earliest_ms if f.name == "ts" else 0 for f in model.fields}
    out_of_window = [
        (
            (payload[f.name] < F.lit(floors[f.name])) | (payload[f.name] > latest),
            F.concat(F.lit(f"{f.name}="), payload[f.name].cast("string")),
        )
        for f in model.fields
        if f.type is FieldType.EPOCH_MILLIS
    ]
    outside = [
        (
            ~payload[f.name].isin(*f.allowed),
            F.concat(F.lit(f"{f.name}="), payload[f.name].cast("string")),
        )
        for f in model.fields
        if f.allowed
    ]
    text_ids = [
        (
            (payload[name] != "") & F.col(id_column(name)).isNull(),
            F.lit(f"{name} (expected {model.field(name).type.value})"),
        )
        for name in TEXT_IDS
        if name in model.field_names
    ]
    checks = [
        F.when(raw.isNull(), F.lit("empty Kafka value")),
        F.when(
            F.octet_length(raw) > limits.max_event_bytes,
            F.concat(
                F.lit("value too large: "),
                F.octet_length(raw).cast("string"),
                F.lit(f" bytes (the limit is {limits.max_event_bytes})"),
            ),
        ),
        # JSON is UTF-8 (RFC 8259); the parser would replace what is not, silently
        F.when(~F.is_valid_utf8(raw), F.lit("value is not valid UTF-8")),
        F.when(
            F.col("kafka_topic") != topic,
            F.concat(F.lit("unknown topic "), F.col("kafka_topic"), F.lit(f" (expected {topic})")),
        ),
        # only rows Spark could not parse pay for the finer diagnosis
        F.when(
            payload[CORRUPT].isNotNull(),
            F.coalesce(
                # an object the parser gave up on: broken or cut short, or nested deeper than
                # its limit
                F.when(~is_object & braced, F.lit(UNREADABLE_OBJECT)),
                F.when(~is_object, F.lit("not a JSON object")),
                *[c for c in [_listing("wrong type: ", wrong_types)] if c is not None],
                F.lit("malformed JSON"),
            ),
        ),
        _listing("wrong type: ", text_ids),
        _listing("missing required fields: ", missing),
        anonymous_identified_user(topic),
        incomplete_user(topic),
        _listing(f"event time out of range ({limits.describe_window()}): ", out_of_window),
        _listing("value not allowed: ", outside),
    ]
    return F.coalesce(*(check for check in checks if check is not None))


def anonymous_identified_user(topic: str) -> Column | None:
    """The error of an event whose user is identified (auth Logged In or Cancelled, or a login
    that succeeded) but that carries no userId: it would count as nobody's listen."""
    names = TOPICS[topic].field_names
    if "userId" not in names:
        return None
    payload = F.col(PAYLOAD)
    if "auth" in names:
        identified, state = payload["auth"].isin(*IDENTIFIED_AUTH_STATES), payload["auth"]
    elif "success" in names:
        identified, state = payload["success"], F.lit("login succeeded")
    else:
        return None
    user_id = F.col(id_column("userId")) if "userId" in TEXT_IDS else payload["userId"]
    return F.when(
        identified & user_id.isNull(),
        F.concat(F.lit("missing userId of an identified user ("), state, F.lit(")")),
    )


def incomplete_user(topic: str) -> Column | None:
    """The error of an event with some of the user's details but not all (userId, names,
    gender, registration): the model's users are identified with all of them, or anonymous
    with none (the JSON schema's dependentRequired)."""
    names = TOPICS[topic].field_names
    details = [f.name for f in USER_DETAIL_FIELDS]
    if not set(details) <= set(names):
        return None
    payload = F.col(PAYLOAD)

    def present(name: str) -> Column:
        column = F.col(id_column(name)) if name in TEXT_IDS else payload[name]
        return column.isNotNull()

    some = functools.reduce(lambda a, b: a | b, (present(n) for n in details))
    return _listing(
        "incomplete user details, missing: ", [(some & ~present(n), F.lit(n)) for n in details]
    )


def event_id_column(topic: str) -> Column:
    """Spark's form of :func:`beatlytica.events.event_id` (a test proves they agree)."""
    parts = [F.lit(topic), *(F.col(PAYLOAD)[name].cast("string") for name in EVENT_ID_FIELDS)]
    digest = F.sha2(F.concat_ws(EVENT_ID_SEPARATOR, *parts), 256)
    return F.substring(digest, 1, EVENT_ID_HEX_CHARS)


def extra_fields_column(topic: str) -> Column:
    """The value's top-level fields the model does not know, as a JSON object with their values
    as sent (types and nesting kept), or null when there are none.

    Every member of a JSON object has exactly one colon after its name, so a value holds at
    most as many top-level fields as it has colons; it holds at least one per non-null field
    of the model. When the two counts are equal (most events: no colon inside a value) there is
    nothing else, found by counting bytes, without a second parse. Otherwise (a Firefox agent's
    "rv:", a field sent as null, a nested object, an unknown field) the keys are listed and the
    object of the unknown ones built."""
    raw = F.col("raw_value")
    known = TOPICS[topic].field_names
    present = functools.reduce(
        lambda a, b: a + b, (F.col(PAYLOAD)[name].isNotNull().cast("int") for name in known)
    )
    colons = F.octet_length(raw) - F.octet_length(F.replace(raw, F.lit(":"), F.lit("")))
    known_names = F.array(*(F.lit(name) for name in known))
    rest = F.map_filter(
        F.from_json(raw, T.MapType(T.StringType(), T.VariantType())),
        lambda key, _: ~F.array_contains(known_names, key),
    )
    # `rest` once only: used twice, Spark would hoist it out of the condition and parse
    # every row into a map
    return F.when(
        (colons > present) & (F.size(F.json_object_keys(raw)) > present),
        # a known field sent as JSON null is a key without a value: an empty map, no field
        F.nullif(F.to_json(rest), F.lit("{}")),
    )


def enrich(valid: DataFrame, topic: str) -> DataFrame:
    """Valid parsed rows -> the lake's columns: event_id, Kafka metadata, the payload in
    snake_case with epoch milliseconds as timestamps, the fields beyond the model
    (extra_fields), then event_date and event_hour."""
    payload = F.col(PAYLOAD)
    columns: list[Column] = []
    for f in lake_fields(topic):
        if f.name == "event_id":
            column = event_id_column(topic)
        elif f.name.startswith("kafka_"):
            column = F.col(f.name)
        elif f.name == EXTRA_FIELDS.name:
            column = extra_fields_column(topic)
        elif f.name in TEXT_IDS:
            column = F.col(id_column(f.name))
        elif f.type is FieldType.EPOCH_MILLIS:
            column = F.timestamp_millis(payload[f.name])
        else:
            column = payload[f.name]
        columns.append(column.alias(f.column))
    ts = F.timestamp_millis(payload["ts"])
    date_field, hour_field = LAKE_PARTITION_FIELDS
    return valid.select(
        *columns,
        F.to_date(ts).alias(date_field.column),
        # two digits in the folder name (event_hour=05), so listings sort by hour; readers
        # type the partition as the model's integer
        F.lpad(F.hour(ts).cast("string"), 2, "0").alias(hour_field.column),
    )


def split(parsed: DataFrame, topic: str) -> tuple[DataFrame, DataFrame]:
    """(lake rows, quarantine rows) of a parsed batch."""
    valid = enrich(parsed.where(F.col(ERROR).isNull()), topic)
    return valid, quarantine(parsed.where(F.col(ERROR).isNotNull()))


def quarantine(rejected: DataFrame) -> DataFrame:
    """Rejected rows with everything needed to replay them: the raw value, the Kafka
    coordinates, the error and the time, partitioned by the day they were quarantined. Key and
    value are the bytes that came (binary columns): a value that is not UTF-8 is kept as it is,
    and every reader (DuckDB, BigQuery, pyarrow) can still read the table."""
    now = F.current_timestamp()
    binary = {"kafka_key", "raw_value"}
    kept = [
        F.col(c).cast("binary").alias(c) if c in binary else F.col(c)
        for c in QUARANTINE_COLUMNS[:7]
    ]
    return rejected.select(
        *kept,
        now.alias("quarantined_at"),
        F.to_date(now).alias("quarantine_date"),
    )
