"""When a data interval of the lake is complete: the lake sensor's rule.

The stream is past an interval once it is ``BEATLYTICA_INTERVAL_GRACE_MINUTES`` beyond the
interval's end, either way:

- in event time: some topic has committed events of an event hour starting at or after
  ``end + grace`` (producers that run ahead of the wall clock, and any busy stream);
- in wall-clock time: every topic's query has read all that Kafka held at a moment at or after
  ``end + grace`` (``<lake>/_progress/<topic>.json``, which the stream writes after each batch
  with no backlog and each idle trigger): a quiet stream, and history streamed at once.

Events that arrive later are late: their interval is reloaded by a later run
(:func:`beatlytica.loader.late_intervals`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from beatlytica.lake import committed_files, partition_of, progress_uri, raw_table_uri, read_json
from beatlytica.settings import Settings
from beatlytica.timeparse import parse_utc


@dataclass(frozen=True)
class Completeness:
    complete: bool
    reason: str


def completeness(settings: Settings, end: datetime) -> Completeness:
    """Whether the stream is past ``end`` plus the grace period, and why (or what it awaits)."""
    due = end + timedelta(minutes=settings.interval_grace_minutes)
    for topic in settings.topics:
        files = committed_files(raw_table_uri(settings.lake, topic), settings.gcs_endpoint)
        later = [p.start for f in files if (p := partition_of(f)) and p.start >= due]
        if later:
            return Completeness(
                True, f"{topic} has committed events of {min(later):%Y-%m-%d %H}:00 and later"
            )
    behind = []
    for topic in settings.topics:
        note = read_json(progress_uri(settings.lake, topic), settings.gcs_endpoint)
        read_all_before = parse_utc(str(note["read_all_before"])) if note else None
        if read_all_before is None or read_all_before < due:
            at = f"{read_all_before:%Y-%m-%d %H:%M:%S}" if read_all_before else "never"
            behind.append(f"{topic} (read all of Kafka at {at})")
    if not behind:
        return Completeness(True, f"every topic read all of Kafka after {due:%Y-%m-%d %H:%M}")
    return Completeness(
        False,
        f"the stream is not past {due:%Y-%m-%d %H:%M} yet: no committed event that late, and "
        + ", ".join(behind),
    )
