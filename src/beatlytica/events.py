"""The event model: the single source of truth for Beatlytica's four topics.

Field for field this is the JSON that Eventsim (the Interana/Confluent simulator and the
viirya fork used by the public streaming pipelines) writes to Kafka: camelCase names,
``ts``/``registration`` as epoch milliseconds, ``userId`` only while the user is identified.
Every other schema in the project (JSON Schema, Spark, BigQuery, DuckDB) is derived from the
definitions here by :mod:`beatlytica.schemas`; nothing else may spell a field list out.

This module imports nothing from the project and nothing outside the standard library.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FieldType(StrEnum):
    """Logical types of event fields, as they travel in Eventsim's JSON."""

    LONG = "long"
    INT = "int"
    DOUBLE = "double"
    STRING = "string"
    BOOLEAN = "boolean"
    #: a long holding epoch milliseconds in JSON; a UTC timestamp from the lake onwards
    EPOCH_MILLIS = "epoch_millis"
    #: types that exist only from the lake onwards (lake metadata columns)
    TIMESTAMP = "timestamp"
    DATE = "date"


@dataclass(frozen=True)
class Field:
    """One field of an Eventsim payload."""

    name: str
    type: FieldType
    required: bool
    description: str
    allowed: tuple[str, ...] | None = None

    @property
    def column(self) -> str:
        """The snake_case column name of this field in the lake and the warehouse."""
        return to_snake_case(self.name)

    @property
    def storage_type(self) -> FieldType:
        """The type the field has once Spark has parsed it (lake and warehouse)."""
        return FieldType.TIMESTAMP if self.type is FieldType.EPOCH_MILLIS else self.type


@dataclass(frozen=True)
class Topic:
    """A Kafka topic and the payload fields its events carry."""

    name: str
    description: str
    fields: tuple[Field, ...]
    #: the dbt fact model holding this topic's events one for one (reconcile compares them)
    fact_model: str | None = None

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def required_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"topic {self.name!r} has no field {name!r}")


def to_snake_case(name: str) -> str:
    """``itemInSession`` -> ``item_in_session``; already snake_case names are unchanged."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


# --- vocabularies -----------------------------------------------------------------------

LEVELS = ("free", "paid")
AUTH_STATES = ("Guest", "Logged In", "Logged Out", "Cancelled")
#: auth states in which Eventsim shows userId and the user's details
IDENTIFIED_AUTH_STATES = ("Logged In", "Cancelled")
HTTP_METHODS = ("GET", "PUT")
GENDERS = ("M", "F")
PAGES = (
    "Home",
    "NextSong",
    "Login",
    "Logout",
    "Register",
    "Submit Registration",
    "Upgrade",
    "Submit Upgrade",
    "Downgrade",
    "Submit Downgrade",
    "Settings",
    "Save Settings",
    "Cancel",
    "Cancellation Confirmation",
    "Help",
    "About",
    "Error",
)

# --- fields -----------------------------------------------------------------------------

_TS = Field("ts", FieldType.EPOCH_MILLIS, True, "Event time, epoch milliseconds (UTC).")
_SESSION_ID = Field("sessionId", FieldType.LONG, True, "Session identifier.")
_LEVEL = Field("level", FieldType.STRING, True, "Subscription level at the event.", LEVELS)
_ITEM = Field(
    "itemInSession", FieldType.INT, True, "Position of the event within its session, from 0."
)
_AUTH = Field("auth", FieldType.STRING, True, "Authentication state.", AUTH_STATES)

#: device details: Eventsim writes them on every event, identified or not
_DEVICE = (
    Field("zip", FieldType.STRING, True, "ZIP code of the device location (a string)."),
    Field("city", FieldType.STRING, True, "City of the device location."),
    Field("state", FieldType.STRING, True, "US state code of the device location."),
    Field("lat", FieldType.DOUBLE, True, "Latitude of the device location."),
    Field("lon", FieldType.DOUBLE, True, "Longitude of the device location."),
    Field("userAgent", FieldType.STRING, True, "Browser user agent."),
)

#: user details: present exactly when the user is identified (auth Logged In or Cancelled)
USER_DETAIL_FIELDS = (
    Field(
        "userId", FieldType.LONG, False, "User identifier; absent for guests and logged-out users."
    ),
    Field("lastName", FieldType.STRING, False, "User's last name."),
    Field("firstName", FieldType.STRING, False, "User's first name."),
    Field("gender", FieldType.STRING, False, "User's gender.", GENDERS),
    Field("registration", FieldType.EPOCH_MILLIS, False, "Registration time, epoch milliseconds."),
)

_SONG_REQUIRED = (
    Field("artist", FieldType.STRING, True, "Artist name."),
    Field("song", FieldType.STRING, True, "Song title."),
    Field("duration", FieldType.DOUBLE, True, "Song length in seconds."),
)
_SONG_OPTIONAL = tuple(
    Field(f.name, f.type, False, f.description + " Present on NextSong page views only.")
    for f in _SONG_REQUIRED
)


#: Eventsim's `--tag` option: the same text on the events of a run that carry the user's
#: details (written with them, after registration); absent without the option
TAG = Field(
    "tag",
    FieldType.STRING,
    False,
    "Text of Eventsim's --tag option, on events that carry the user's details; else absent.",
)


def _common(*head: Field) -> tuple[Field, ...]:
    """Eventsim's field order: ts, sessionId, topic fields, level, itemInSession, device, user,
    tag."""
    return (_TS, _SESSION_ID, *head, _LEVEL, _ITEM, *_DEVICE, *USER_DETAIL_FIELDS, TAG)


LISTEN_EVENTS = Topic(
    "listen_events",
    "One event per song played (the NextSong page).",
    (*_SONG_REQUIRED, *_common(_AUTH)),
    fact_model="fact_streams",
)
PAGE_VIEW_EVENTS = Topic(
    "page_view_events",
    "One event per page request of the web or mobile player.",
    (
        *_common(
            Field("page", FieldType.STRING, True, "Page requested.", PAGES),
            _AUTH,
            Field("method", FieldType.STRING, True, "HTTP method.", HTTP_METHODS),
            Field("status", FieldType.INT, True, "HTTP status code."),
        ),
        *_SONG_OPTIONAL,
    ),
    fact_model="fact_page_views",
)
AUTH_EVENTS = Topic(
    "auth_events",
    "One event per login attempt (the request after the Login page).",
    (
        *_common(),
        Field("success", FieldType.BOOLEAN, True, "Whether the login succeeded."),
    ),
)
STATUS_CHANGE_EVENTS = Topic(
    "status_change_events",
    "One event per subscription change (Submit Upgrade / Submit Downgrade); `level` is the "
    "level before the change.",
    _common(_AUTH),
)

TOPICS: Mapping[str, Topic] = {
    t.name: t for t in (LISTEN_EVENTS, PAGE_VIEW_EVENTS, AUTH_EVENTS, STATUS_CHANGE_EVENTS)
}
TOPIC_NAMES: tuple[str, ...] = tuple(TOPICS)


# --- lake metadata ------------------------------------------------------------------------

#: columns the streaming job adds in front of the payload columns in the lake
LAKE_METADATA_FIELDS = (
    Field("event_id", FieldType.STRING, True, "Deterministic event id, see event_id()."),
    Field("kafka_topic", FieldType.STRING, True, "Kafka topic the event was read from."),
    Field("kafka_partition", FieldType.INT, True, "Kafka partition."),
    Field("kafka_offset", FieldType.LONG, True, "Kafka offset within the partition."),
    Field("kafka_timestamp", FieldType.TIMESTAMP, True, "Kafka record timestamp."),
)
#: hive-style partition columns of the lake (directory names, not stored in the files)
LAKE_PARTITION_FIELDS = (
    Field("event_date", FieldType.DATE, True, "UTC date of ts."),
    Field(
        "event_hour",
        FieldType.INT,
        True,
        "UTC hour of ts, 0-23 (a two-digit folder name in the lake).",
    ),
)


#: the lake column after the payload's: what arrived beyond the model is kept, never dropped
EXTRA_FIELDS = Field(
    "extra_fields",
    FieldType.STRING,
    False,
    "The event's top-level JSON fields the model does not know, as a JSON object with their "
    "values as sent; null when there are none.",
)


def lake_fields(topic: str) -> tuple[Field, ...]:
    """The columns stored in a topic's lake Parquet files."""
    return (*LAKE_METADATA_FIELDS, *TOPICS[topic].fields, EXTRA_FIELDS)


#: the column the loader adds to every raw warehouse table (dbt's source freshness reads it)
LOADED_AT = Field("loaded_at", FieldType.TIMESTAMP, True, "When the loader wrote the row.")


def raw_table_fields(topic: str) -> tuple[Field, ...]:
    """The columns of a topic's raw warehouse table: the lake's, its partitions, loaded_at."""
    return (*lake_fields(topic), *LAKE_PARTITION_FIELDS, LOADED_AT)


# --- event ids ----------------------------------------------------------------------------

#: payload fields that identify an event within a topic, in the order they are hashed
EVENT_ID_FIELDS = ("sessionId", "itemInSession", "ts")
EVENT_ID_SEPARATOR = "|"
EVENT_ID_HEX_CHARS = 32


def event_id(topic: str, payload: Mapping[str, Any]) -> str:
    """A deterministic id for an Eventsim payload: the first 128 bits of
    sha256("<topic>|<sessionId>|<itemInSession>|<ts>") in hex.

    Eventsim emits a listen and a page view for the same request with the same
    (sessionId, itemInSession, ts); the topic keeps their ids apart.
    """
    parts = [topic]
    for name in EVENT_ID_FIELDS:
        value = payload.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(
                f"event_id needs integer {name!r} in a {topic} payload, found {value!r}"
            )
        parts.append(str(value))
    digest = hashlib.sha256(EVENT_ID_SEPARATOR.join(parts).encode()).hexdigest()
    return digest[:EVENT_ID_HEX_CHARS]


#: hex characters of an event id that make its part of an interval's digest (60 bits: a
#: signed 64-bit integer in every warehouse)
ID_DIGEST_HEX_CHARS = 15


def id_digest(event_ids: Iterable[str]) -> int:
    """The XOR of the ids' first 60 bits: with the count, what proves two layers hold the same
    set of events (a lost event and a duplicated one leave the count, not the digest). The ids
    are hashes already, so their bits are the digest; :func:`id_digest_sql` is the same in SQL."""
    digest = 0
    for event in event_ids:
        digest ^= int(event[:ID_DIGEST_HEX_CHARS], 16)
    return digest


def id_digest_sql(dialect: str, column: str = "event_id") -> str:
    """:func:`id_digest` as an aggregate of ``dialect`` (``duckdb`` or ``bigquery``); 0 when
    there are no rows, as in Python."""
    prefix = f"substr({column}, 1, {ID_DIGEST_HEX_CHARS})"
    if dialect == "duckdb":
        number = f"('0x' || {prefix})::bigint"
    elif dialect == "bigquery":
        number = f"cast(concat('0x', {prefix}) as int64)"
    else:
        raise ValueError(f"no id digest for the SQL dialect {dialect!r}")
    return f"coalesce(bit_xor({number}), 0)"


def partition_key(payload: Mapping[str, Any]) -> bytes:
    """The Kafka key of an event: userId when identified, else sessionId."""
    user_id = payload.get("userId")
    return str(user_id if user_id is not None else payload["sessionId"]).encode()
