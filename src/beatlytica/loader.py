"""`beatlytica load`: committed lake files of an interval -> one raw table per topic.

The interval ``[start, end)`` of a topic is replaced, never appended to: the rows of the
interval are deleted and the interval's events inserted in one transaction, one row per
``event_id``. The id hashes the event's ts, so an event can only ever belong to the interval
that contains its ts: reruns and overlapping intervals cannot duplicate it.

The files are never read into memory whole: DuckDB reads them as its insert pulls rows (a
local lake through its own Parquet reader, a gs:// one as a stream of pyarrow record batches),
one statement per topic and interval, within BEATLYTICA_LOADER_MEMORY_LIMIT_MB (it spills beyond
that).

After each topic's interval the loader notes the files it loaded (``<lake>/_loads/``, a load
manifest). Events that arrive after their interval was loaded land in new committed files of the
interval; :func:`late_intervals` finds the intervals whose files differ from their manifest, and
``beatlytica load --late`` reloads them (every hourly run does, over
BEATLYTICA_LATE_LOOKBACK_HOURS).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from beatlytica.errors import BeatlyticaError
from beatlytica.lake import (
    committed_files,
    files_in_interval,
    load_manifest_uri,
    raw_table_uri,
    read_json,
    write_json,
)
from beatlytica.settings import Settings
from beatlytica.warehouse import Warehouse, connect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadResult:
    topic: str
    files: int
    rows: int


def interval_files(settings: Settings, topic: str, start: datetime, end: datetime) -> list[str]:
    """Committed lake files of ``topic`` whose event hour overlaps ``[start, end)``."""
    table = raw_table_uri(settings.lake, topic)
    return files_in_interval(committed_files(table, settings.gcs_endpoint), start, end)


def load(
    settings: Settings,
    topics: tuple[str, ...],
    start: datetime,
    end: datetime,
    *,
    require_data: bool = False,
    warehouse: Warehouse | None = None,
) -> list[LoadResult]:
    """Replace ``[start, end)`` of each topic's raw table with the interval's lake events."""
    if end <= start:
        raise BeatlyticaError(f"interval end {end.isoformat()} is not after {start.isoformat()}")
    unknown = [t for t in topics if t not in settings.topics]
    if unknown:
        raise BeatlyticaError(f"unknown topics {unknown}; BEATLYTICA_TOPICS is {settings.topics}")
    files = {t: interval_files(settings, t, start, end) for t in topics}
    empty = [t for t, f in files.items() if not f]
    if require_data and empty:
        raise BeatlyticaError(
            f"no committed lake data for {', '.join(empty)} in [{start.isoformat()}, "
            f"{end.isoformat()}) under {settings.lake}/raw"
        )
    owned = warehouse is None
    warehouse = warehouse or connect(settings)
    results = []
    try:
        for topic in topics:
            rows = warehouse.replace_interval(topic, files[topic], start, end)
            # written once the interval is in: a loader that dies in between fails its task,
            # and the retry writes it
            manifest = {
                "topic": topic,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "files": files[topic],
                "rows": rows,
            }
            write_json(
                load_manifest_uri(settings.lake, topic, start, end), manifest, settings.gcs_endpoint
            )
            results.append(LoadResult(topic, len(files[topic]), rows))
            log.info(
                "loaded",
                extra={
                    "fields": {
                        "topic": topic,
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                        "files": len(files[topic]),
                        "rows": rows,
                        "warehouse": settings.warehouse,
                    }
                },
            )
    finally:
        if owned:
            warehouse.close()
    return results


def grid(settings: Settings, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The DAG's data intervals (BEATLYTICA_INTERVAL_MINUTES from BEATLYTICA_DAG_START_DATE)
    that lie inside ``[start, end)``."""
    from beatlytica.timeparse import parse_utc

    step = timedelta(minutes=settings.interval_minutes)
    first = parse_utc(settings.dag_start_date)
    at = first + max(-(-(start - first) // step), 0) * step  # the first one at or after start
    intervals = []
    while at + step <= end:
        intervals.append((at, at + step))
        at += step
    return intervals


@dataclass(frozen=True)
class LateInterval:
    topic: str
    start: datetime
    end: datetime
    #: committed files of the interval that its load did not see (late events), and files it
    #: loaded that the lake no longer has (a repaired or dropped file)
    added: tuple[str, ...]
    removed: tuple[str, ...]


def late_intervals(
    settings: Settings, topics: tuple[str, ...], start: datetime, end: datetime
) -> list[LateInterval]:
    """The DAG intervals in ``[start, end)`` that were loaded (they have a load manifest) and
    whose committed lake files have changed since. Intervals not loaded yet are their own
    runs' business."""
    late = []
    intervals = grid(settings, start, end)
    for topic in topics:
        files = committed_files(raw_table_uri(settings.lake, topic), settings.gcs_endpoint)
        for first, last in intervals:
            uri = load_manifest_uri(settings.lake, topic, first, last)
            manifest = read_json(uri, settings.gcs_endpoint)
            if manifest is None:
                continue
            loaded = manifest.get("files")
            if not isinstance(loaded, list):
                raise BeatlyticaError(f"{uri} lists no files")
            now = set(files_in_interval(files, first, last))
            added, removed = now - set(loaded), set(loaded) - now
            if added or removed:
                late.append(
                    LateInterval(topic, first, last, tuple(sorted(added)), tuple(sorted(removed)))
                )
    return late


def reload_late(
    settings: Settings, topics: tuple[str, ...], start: datetime, end: datetime
) -> list[tuple[LateInterval, LoadResult]]:
    """Reload every interval :func:`late_intervals` finds; one warehouse connection."""
    late = late_intervals(settings, topics, start, end)
    if not late:
        return []
    reloaded = []
    warehouse = connect(settings)
    try:
        for interval in late:
            log.info(
                "reloading a late interval",
                extra={
                    "fields": {
                        "topic": interval.topic,
                        "start": interval.start.isoformat(),
                        "end": interval.end.isoformat(),
                        "added_files": len(interval.added),
                        "removed_files": len(interval.removed),
                    }
                },
            )
            (result,) = load(
                settings, (interval.topic,), interval.start, interval.end, warehouse=warehouse
            )
            reloaded.append((interval, result))
    finally:
        warehouse.close()
    return reloaded
