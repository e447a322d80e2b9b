"""Hostile input through the streaming job's parsing, property-based (Hypothesis): real events
with fields replaced by arbitrary JSON (huge numbers, strings where numbers belong, nesting,
nulls), fields removed or added, and values that are not JSON or not UTF-8, in one micro-batch
on a local SparkSession. Whatever comes in, every record comes out once, in the lake or in the
quarantine with a reason, and what reaches the lake is exactly what was sent, in the model's
types."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beatlytica.events import TOPICS, event_id
from beatlytica.schemas import json_schema
from spark_jobs.transforms import ERROR, parse, split
from tests.unit.test_transforms import KAFKA_TS, kafka_rows

TOPIC = "listen_events"
FIELDS = [f.name for f in TOPICS[TOPIC].fields]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def records(draw: st.DrawFn, bases: list[dict[str, Any]]) -> str | bytes:
    """A real listen event, changed: or a value that is no event at all."""
    kind = draw(st.sampled_from(["changed", "changed", "changed", "bytes", "truncated"]))
    base = dict(draw(st.sampled_from(bases)))
    if kind == "bytes":
        return draw(st.binary(max_size=40))
    if kind == "truncated":
        text = json.dumps(base)
        return text[: draw(st.integers(min_value=0, max_value=len(text) - 1))]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        field = draw(st.sampled_from(FIELDS) | st.text(min_size=1, max_size=8))
        if draw(st.booleans()):
            base[field] = draw(json_values)
        else:
            base.pop(field, None)
    return json.dumps(base)


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_record_lands_once_in_the_lake_or_the_quarantine(
    spark: Any, sample_events: dict[str, list[dict[str, Any]]], data: st.DataObject
) -> None:
    bases = sample_events[TOPIC][:20]
    values = data.draw(st.lists(records(bases), min_size=1, max_size=40))
    valid, rejected = split(parse(kafka_rows(spark, TOPIC, list(values)), TOPIC), TOPIC)
    lake, quarantine = valid.collect(), rejected.collect()

    # once each: nothing dropped, nothing twice
    offsets = sorted([r.kafka_offset for r in lake] + [r.kafka_offset for r in quarantine])
    assert offsets == list(range(len(values)))
    assert all(r[ERROR] for r in quarantine), "a quarantined record without its reason"

    # what reached the lake is what was sent, and an event by the model's own schema; but a
    # text field takes any JSON value as its text (Spark's from_json rule, docs/lake.md), so
    # only numbers, times and enums are held to their JSON types here
    validator = jsonschema.Draft202012Validator(_numbers_typed(json_schema(TOPIC)))
    for row in lake:
        sent = values[row.kafka_offset]
        payload = json.loads(sent)
        assert validator.is_valid(payload), (sent, list(validator.iter_errors(payload))[:1])
        assert row.ts.replace(tzinfo=UTC).timestamp() * 1000 == payload["ts"], sent
        assert row.event_id == event_id(TOPIC, payload), sent
        assert row.session_id == payload["sessionId"], sent
        assert row.item_in_session == payload["itemInSession"], sent
        if isinstance(payload.get("song"), str):
            assert row.song == payload["song"], sent
        assert row.kafka_timestamp.replace(tzinfo=UTC) == KAFKA_TS


def _numbers_typed(schema: dict[str, Any]) -> dict[str, Any]:
    for prop in schema["properties"].values():
        if prop["type"] == "string" and "enum" not in prop:
            del prop["type"]
    return schema
