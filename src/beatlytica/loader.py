"""`beatlytica load`: committed lake files of an interval -> one raw table per topic.

The interval ``[start, end)`` of a topic is replaced, never appended to: the rows of the
interval are deleted and the interval's events inserted in one transaction, one row per
``event_id``. The id hashes the event's ts, so an event can only ever belong to the interval
that contains its ts: reruns and overlapping intervals cannot duplicate it.

The files are never read into memory whole: DuckDB reads them as its insert pulls rows (a
local lake through its own Parquet reader, a gs:// one as a stream of pyarrow record batches),
one event hour at a time, within BEATLYTICA_LOADER_MEMORY_LIMIT_MB (it spills beyond that).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from beatlytica.errors import BeatlyticaError
from beatlytica.lake import committed_files, files_in_interval, raw_table_uri
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
