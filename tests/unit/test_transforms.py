"""The streaming job's pure transformations on small DataFrames in a local SparkSession."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pyspark.sql import types as T

from beatlytica.events import event_id
from beatlytica.schemas import spark_lake_schema
from beatlytica.settings import Settings
from spark_jobs.transforms import (
    KAFKA_SCHEMA,
    QUARANTINE_COLUMNS,
    UNREADABLE_OBJECT,
    Limits,
    parse,
    split,
)

KAFKA_TS = datetime(2026, 11, 2, 0, 0, 5, tzinfo=UTC)
KAFKA_MS = int(KAFKA_TS.timestamp() * 1000)
EARLIEST_MS = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp() * 1000)
OUT_OF_RANGE = (
    "event time out of range (before 2000-01-01T00:00:00Z or over 24 h after the Kafka timestamp): "
)


def kafka_rows(
    spark: Any, topic: str, values: list[str | bytes | None], source_topic: str | None = None
):
    """Kafka records as the source delivers them; text is sent as UTF-8, bytes as they are."""
    rows = [
        (b"1", v.encode() if isinstance(v, str) else v, source_topic or topic, 0, offset, KAFKA_TS)
        for offset, v in enumerate(values)
    ]
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


def _first(sample_events: dict[str, list[dict[str, Any]]], topic: str, **match: Any):
    return next(e for e in sample_events[topic] if all(e.get(k) == v for k, v in match.items()))


def test_valid_events_become_lake_rows_with_the_model_schema(spark, sample_events) -> None:
    topic = "listen_events"
    payloads = sample_events[topic][:50]
    valid, rejected = split(
        parse(kafka_rows(spark, topic, [json.dumps(p) for p in payloads]), topic), topic
    )
    assert rejected.count() == 0
    expected = spark_lake_schema(topic)
    assert [(f.name, f.dataType) for f in valid.schema.fields] == [
        *((f.name, f.dataType) for f in expected.fields),
        ("event_date", T.DateType()),
        ("event_hour", T.StringType()),  # the folder name; readers type it INT
    ]
    rows = valid.collect()
    assert len(rows) == 50
    for payload, row in zip(payloads, rows, strict=True):
        assert row.event_id == event_id(topic, payload)  # Spark and Python agree
        assert row.session_id == payload["sessionId"]
        assert row.item_in_session == payload["itemInSession"]
        assert row.ts == datetime.fromtimestamp(payload["ts"] / 1000, UTC).replace(tzinfo=None)
        assert row.kafka_topic == topic and row.kafka_partition == 0
        assert row.user_agent == payload["userAgent"]


def test_event_ids_agree_for_every_topic(spark, sample_events) -> None:
    for topic, events in sample_events.items():
        payloads = events[:20]
        valid, _ = split(
            parse(kafka_rows(spark, topic, [json.dumps(p) for p in payloads]), topic), topic
        )
        assert [r.event_id for r in valid.collect()] == [event_id(topic, p) for p in payloads]


def test_partition_columns_are_utc(spark, sample_events) -> None:
    payload = dict(_first(sample_events, "listen_events"))
    payload["ts"] = int(datetime(2026, 11, 1, 23, 59, 59, 999000, tzinfo=UTC).timestamp() * 1000)
    late = dict(payload, ts=payload["ts"] - 5 * 3_600_000, itemInSession=99)
    valid, _ = split(
        parse(
            kafka_rows(spark, "listen_events", [json.dumps(payload), json.dumps(late)]),
            "listen_events",
        ),
        "listen_events",
    )
    rows = valid.collect()
    assert (rows[0].event_date, rows[0].event_hour) == (date(2026, 11, 1), "23")
    assert (rows[1].event_date, rows[1].event_hour) == (date(2026, 11, 1), "18")


def test_guests_have_no_user_columns(spark, sample_events) -> None:
    guest = _first(sample_events, "page_view_events", auth="Guest")
    valid, rejected = split(
        parse(kafka_rows(spark, "page_view_events", [json.dumps(guest)]), "page_view_events"),
        "page_view_events",
    )
    row = valid.collect()[0]
    assert rejected.count() == 0
    assert row.user_id is None and row.registration is None and row.first_name is None
    assert row.artist is None  # song fields only on NextSong page views


def nested(depth: int) -> str:
    """A JSON array ``depth`` levels deep."""
    return "[" * depth + "]" * depth


@pytest.fixture(scope="module")
def good(sample_events) -> dict[str, Any]:
    return dict(_first(sample_events, "listen_events", auth="Logged In"))


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda g: "not json at all", "not a JSON object"),
        (lambda g: "[1, 2, 3]", "not a JSON object"),
        (lambda g: '{"ts": 1, "sessionId": ', UNREADABLE_OBJECT),
        # deeper than the JSON parser goes (1000 levels, the value's object counted)
        (lambda g: json.dumps(g)[:-1] + f', "x": {nested(1000)}}}', UNREADABLE_OBJECT),
        (lambda g: nested(20_000), "not a JSON object"),
        # a 10 MB value is not parsed, only measured (BEATLYTICA_STREAM_MAX_EVENT_BYTES)
        (
            lambda g: json.dumps({**g, "song": "x" * 10_000_000}),
            "value too large: 10000",
        ),
        (lambda g: "x" * 10_000_000, "value too large: 10000000 bytes (the limit is 65536)"),
        (lambda g: json.dumps({**g, "ts": "yesterday"}), "wrong type: ts (expected epoch_millis)"),
        (
            lambda g: json.dumps({**g, "itemInSession": 1.5}),
            "wrong type: itemInSession (expected int)",
        ),
        (
            lambda g: json.dumps({k: v for k, v in g.items() if k != "sessionId"}),
            "missing required fields: sessionId",
        ),
        (lambda g: "{}", "missing required fields: artist, song, duration, ts, sessionId"),
        (lambda g: json.dumps({**g, "level": "gold"}), "value not allowed: level=gold"),
        (lambda g: None, "empty Kafka value"),
        # event times outside the window: each would overflow a timestamp or land where no
        # interval loads it
        (lambda g: json.dumps({**g, "ts": 2**63 - 1}), f"{OUT_OF_RANGE}ts=9223372036854775807"),
        (
            lambda g: json.dumps({**g, "registration": 2**63 - 1}),
            f"{OUT_OF_RANGE}registration=9223372036854775807",
        ),
        (lambda g: json.dumps({**g, "ts": g["ts"] // 1000}), f"{OUT_OF_RANGE}ts="),  # seconds
        (lambda g: json.dumps({**g, "ts": -1}), f"{OUT_OF_RANGE}ts=-1"),
        (lambda g: json.dumps({**g, "registration": -1}), f"{OUT_OF_RANGE}registration=-1"),
        (lambda g: json.dumps({**g, "ts": 4102444800000}), f"{OUT_OF_RANGE}ts=4102444800000"),
        (lambda g: json.dumps({**g, "ts": KAFKA_MS + 24 * 3_600_000 + 1}), f"{OUT_OF_RANGE}ts="),
        (
            lambda g: json.dumps({**g, "userId": None}),
            "missing userId of an identified user (Logged In)",
        ),
        (
            lambda g: json.dumps({**g, "userId": ""}),
            "missing userId of an identified user (Logged In)",
        ),
        (lambda g: json.dumps({**g, "userId": "u-17"}), "wrong type: userId (expected long)"),
        (
            lambda g: json.dumps({**g, "userId": "99999999999999999999"}),
            "wrong type: userId (expected long)",
        ),
        # users are identified with all their details or anonymous with none (found by
        # tests/unit/test_transforms_properties.py)
        (
            lambda g: json.dumps({k: v for k, v in g.items() if k != "lastName"}),
            "incomplete user details, missing: lastName",
        ),
        (
            lambda g: json.dumps({**g, "gender": None, "registration": None}),
            "incomplete user details, missing: gender, registration",
        ),
    ],
)
def test_malformed_records_are_quarantined_with_their_error(spark, good, mutate, error) -> None:
    value = mutate(good)
    valid, rejected = split(
        parse(kafka_rows(spark, "listen_events", [json.dumps(good), value]), "listen_events"),
        "listen_events",
    )
    assert valid.count() == 1
    assert rejected.columns == list(QUARANTINE_COLUMNS)
    row = rejected.collect()[0]
    assert row.error.startswith(error), row.error
    assert row.raw_value == (None if value is None else value.encode())
    assert (row.kafka_topic, row.kafka_partition, row.kafka_offset) == ("listen_events", 0, 1)
    assert row.quarantined_at is not None and row.quarantine_date is not None


def test_event_times_at_the_window_edges_are_kept_and_a_poison_one_is_quarantined(
    spark, good
) -> None:
    """Long.MaxValue milliseconds once crashed every batch ("long overflow") forever: the batch
    now writes its valid rows, the edges of the window included, and quarantines that one."""
    edges = [EARLIEST_MS, KAFKA_MS + 24 * 3_600_000]
    values = [json.dumps({**good, "ts": ts, "itemInSession": i}) for i, ts in enumerate(edges)]
    values.append(json.dumps({**good, "ts": 2**63 - 1}))
    valid, rejected = split(
        parse(kafka_rows(spark, "listen_events", values), "listen_events"), "listen_events"
    )
    rows = valid.collect()  # every column computed, the timestamps among them
    assert sorted(int(r.ts.replace(tzinfo=UTC).timestamp() * 1000) for r in rows) == edges
    assert [r.raw_value for r in rejected.collect()] == [values[-1].encode()]


def test_the_window_comes_from_the_settings(spark, good) -> None:
    limits = Limits.from_settings(
        Settings(stream_event_time_min="2026-11-01T12:00:00", stream_event_time_max_ahead_hours=0)
    )
    early = json.dumps(
        {**good, "ts": int(datetime(2026, 11, 1, 11, tzinfo=UTC).timestamp() * 1000)}
    )
    ahead = json.dumps({**good, "ts": KAFKA_MS + 1})
    frame = kafka_rows(spark, "listen_events", [early, ahead])
    valid, rejected = split(parse(frame, "listen_events", limits), "listen_events")
    assert valid.count() == 0
    errors = [r.error for r in rejected.orderBy("kafka_offset").collect()]
    assert errors[0].startswith("event time out of range (before 2026-11-01T12:00:00Z or over 0 h")
    assert errors[1].endswith(f"ts={KAFKA_MS + 1}")


def test_the_size_and_depth_limits_are_inclusive(spark, good) -> None:
    """A value of exactly the size limit is parsed, one byte more is not; JSON 1000 levels deep
    is an event (its extra field kept), 1001 levels is not."""
    limit = 4096
    limits = Limits.from_settings(Settings(stream_max_event_bytes=limit))
    bare = len(json.dumps({**good, "song": ""}).encode())
    at_limit, over = (json.dumps({**good, "song": "s" * (n - bare)}) for n in (limit, limit + 1))
    deepest = json.dumps(good)[:-1] + f', "x": {nested(999)}}}'
    values = [at_limit, over, deepest]
    assert [len(v.encode()) for v in values[:2]] == [limit, limit + 1]
    valid, rejected = split(
        parse(kafka_rows(spark, "listen_events", values), "listen_events", limits),
        "listen_events",
    )
    kept = {r.kafka_offset: r for r in valid.collect()}
    assert sorted(kept) == [0, 2]
    assert kept[0].song == "s" * (limit - bare)
    assert kept[2].extra_fields.replace(" ", "") == f'{{"x":{nested(999)}}}'
    assert [r.error for r in rejected.collect()] == [
        f"value too large: {limit + 1} bytes (the limit is {limit})"
    ]


def test_a_user_id_written_as_a_string_of_digits_is_the_number(spark, good, sample_events) -> None:
    guest = _first(sample_events, "page_view_events", auth="Guest")
    values = [json.dumps({**good, "userId": str(good["userId"])}), json.dumps(good)]
    valid, rejected = split(
        parse(kafka_rows(spark, "listen_events", values), "listen_events"), "listen_events"
    )
    assert rejected.count() == 0
    assert [r.user_id for r in valid.collect()] == [good["userId"]] * 2
    # an empty string is no id: a guest's page view stays a guest's
    frame = kafka_rows(spark, "page_view_events", [json.dumps({**guest, "userId": ""})])
    valid, rejected = split(parse(frame, "page_view_events"), "page_view_events")
    assert rejected.count() == 0 and valid.collect()[0].user_id is None


def test_fields_beyond_the_model_are_kept_as_sent(spark, good) -> None:
    """Eventsim's --tag lands in its typed column; any other top-level field is kept, value and
    type as sent, in extra_fields (null when there is none, a known field sent as null too)."""
    values = [
        # as Eventsim writes it: tag last, the value ending with a newline
        json.dumps({**good, "tag": "run-7"}) + "\n",
        json.dumps({**good, "tag": "run-7", "shard": 3, "meta": {"a": [1, "x"]}, "s": "3"}),
        json.dumps(good),
        json.dumps(
            {
                **good,
                "userId": None,
                "auth": "Logged Out",
                "firstName": None,
                "lastName": None,
                "gender": None,
                "registration": None,
            }
        ),
        # colons inside values, and JSON written with spaces around them
        json.dumps({**good, "userAgent": "Mozilla/5.0 (rv:133.0) Gecko"}),
        json.dumps({**good, "x:y": "a:b"}, separators=(" , ", " : ")),
    ]
    valid, rejected = split(
        parse(kafka_rows(spark, "listen_events", values), "listen_events"), "listen_events"
    )
    assert rejected.count() == 0
    rows = valid.orderBy("kafka_offset").collect()
    assert [(r.tag, r.extra_fields) for r in rows] == [
        ("run-7", None),
        ("run-7", '{"shard":3,"meta":{"a":[1,"x"]},"s":"3"}'),
        (None, None),
        (None, None),
        (None, None),
        (None, '{"x:y":"a:b"}'),
    ]
    # the model's fields never reach extra_fields, whatever their order
    assert json.loads(rows[1].extra_fields).keys().isdisjoint(good)


def test_a_value_that_is_not_utf8_is_quarantined_byte_for_byte(spark, good) -> None:
    """The parser would have replaced the bad bytes with U+FFFD and let the event in."""
    broken = json.dumps({**good, "artist": "Sigur XX"}).encode().replace(b"XX", b"R\xf3s\xff")
    frame = spark.createDataFrame(
        [(b"\xfe\xff", broken, "listen_events", 0, 0, KAFKA_TS)], KAFKA_SCHEMA
    )
    valid, rejected = split(parse(frame, "listen_events"), "listen_events")
    assert valid.count() == 0
    row = rejected.collect()[0]
    assert row.error == "value is not valid UTF-8"
    assert (row.raw_value, row.kafka_key) == (broken, b"\xfe\xff")


def test_records_of_another_topic_are_quarantined(spark, good) -> None:
    frame = kafka_rows(spark, "listen_events", [json.dumps(good)], source_topic="plays")
    valid, rejected = split(parse(frame, "listen_events"), "listen_events")
    assert valid.count() == 0
    assert rejected.collect()[0].error == "unknown topic plays (expected listen_events)"
