"""`beatlytica reconcile`: per topic, the interval's committed events in the lake = rows in the
raw table = rows that reached the facts; quarantined records are counted apart, and so are the
lake's events that no interval of the DAGs will ever load (event time before their first).

Any mismatch is an error that prints the whole table of figures, so a failed Airflow task says
exactly which layer lost or gained events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from beatlytica.errors import BeatlyticaError
from beatlytica.events import TOPICS, id_digest
from beatlytica.lake import committed_files, quarantine_uri, raw_table_uri, read_lake_files
from beatlytica.loader import interval_files
from beatlytica.settings import Settings
from beatlytica.warehouse import Warehouse, connect

log = logging.getLogger(__name__)

#: the fact model each topic's events must reach one for one (from the event model)
FACTS = {name: topic.fact_model for name, topic in TOPICS.items() if topic.fact_model}


@dataclass(frozen=True)
class Figures:
    topic: str
    lake: int
    raw: int
    fact: int | None
    quarantined: int
    #: committed lake events before the DAGs' first interval (BEATLYTICA_DAG_START_DATE)
    outside: int = 0
    #: :func:`beatlytica.events.id_digest` of the lake's and the raw table's event ids
    lake_digest: int = 0
    raw_digest: int = 0

    @property
    def same_events(self) -> bool:
        """The same set of events, not only as many: a lost event and a duplicated one (or a
        stale row) keep the count and change the digest."""
        return self.lake == self.raw and self.lake_digest == self.raw_digest

    @property
    def ok(self) -> bool:
        return self.same_events and (self.fact is None or self.fact == self.raw)


def lake_events(settings: Settings, topic: str, start: datetime, end: datetime) -> int:
    """Distinct event ids with ts in [start, end) in the committed lake files."""
    return lake_fingerprint(settings, topic, start, end)[0]


def lake_fingerprint(
    settings: Settings, topic: str, start: datetime, end: datetime
) -> tuple[int, int]:
    """(distinct event ids, their id digest) with ts in [start, end) in the committed lake
    files."""
    import pyarrow.compute as pc

    files = interval_files(settings, topic, start, end)
    table = read_lake_files(files, topic, settings.gcs_endpoint)
    # an independent count: what the writer put in each file's footer; a reader that returns
    # fewer or more rows (a damaged page it did not notice) fails the reconciliation
    written = footer_rows(files, settings.gcs_endpoint)
    if written != table.num_rows:
        raise BeatlyticaError(
            f"the committed {topic} files of [{start.isoformat()}, {end.isoformat()}) hold "
            f"{written} rows by their footers, but {table.num_rows} were read: a damaged file "
            "(find it with `beatlytica lake repair-file`, docs/lake.md)"
        )
    in_interval = table.filter((pc.field("ts") >= start) & (pc.field("ts") < end))
    ids = pc.unique(in_interval.column("event_id")).to_pylist()
    return len(ids), id_digest(ids)


def footer_rows(files: list[str], gcs_endpoint: str | None) -> int:
    """The rows the writer recorded in the files' footers."""
    import pyarrow.parquet as pq

    from beatlytica.lake import filesystem

    total = 0
    for uri in files:
        fs, path = filesystem(uri, gcs_endpoint)
        with fs.open_input_file(path) as source:
            total += pq.read_metadata(source).num_rows
    return total


def outside_intervals(settings: Settings, topic: str) -> int:
    """Committed lake events of ``topic`` whose ts lies before the DAGs' first interval: in the
    lake, and never loaded by any run (the stream's event-time window quarantines anything
    earlier than BEATLYTICA_STREAM_EVENT_TIME_MIN; the gap between the two is counted here)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from beatlytica.lake import files_in_interval, filesystem
    from beatlytica.timeparse import parse_utc

    first = parse_utc(settings.dag_start_date)
    table = raw_table_uri(settings.lake, topic)
    files = files_in_interval(
        committed_files(table, settings.gcs_endpoint), datetime(1970, 1, 1, tzinfo=UTC), first
    )
    total = 0
    for uri in files:
        fs, path = filesystem(uri, settings.gcs_endpoint)
        ts = pq.read_table(path, columns=["ts"], filesystem=fs).column("ts")
        total += int(pc.sum(pc.less(ts, first)).as_py() or 0)
    return total


def quarantined(settings: Settings, topic: str, start: datetime, end: datetime) -> int:
    """Quarantined records whose Kafka timestamp lies in [start, end) (they have no event time)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from beatlytica.lake import filesystem

    uri = quarantine_uri(settings.lake, topic)
    files = committed_files(uri, settings.gcs_endpoint)
    if not files:
        return 0
    fs, _ = filesystem(uri, settings.gcs_endpoint)
    paths = [filesystem(f, settings.gcs_endpoint)[1] for f in files]
    stamps = pq.ParquetDataset(paths, filesystem=fs).read(columns=["kafka_timestamp"])
    column = stamps.column("kafka_timestamp")
    return int(pc.sum(pc.and_(pc.greater_equal(column, start), pc.less(column, end))).as_py() or 0)


def reconcile(
    settings: Settings, start: datetime, end: datetime, warehouse: Warehouse | None = None
) -> list[Figures]:
    owned = warehouse is None
    warehouse = warehouse or connect(settings)
    try:
        figures = []
        for topic in settings.topics:
            fact = FACTS.get(topic)
            lake, lake_digest = lake_fingerprint(settings, topic, start, end)
            raw, raw_digest = warehouse.fingerprint(topic, start, end)
            figures.append(
                Figures(
                    topic=topic,
                    lake=lake,
                    raw=raw,
                    lake_digest=lake_digest,
                    raw_digest=raw_digest,
                    fact=warehouse.count_model(fact, start, end) if fact else None,
                    quarantined=quarantined(settings, topic, start, end),
                    outside=outside_intervals(settings, topic),
                )
            )
    finally:
        if owned:
            warehouse.close()
    return figures


def render(figures: list[Figures]) -> str:
    header = f"{'topic':<22} {'lake':>9} {'raw':>9} {'fact':>9} {'quarantined':>11}"
    lines = [f"{header} {'outside':>9}  status"]
    for f in figures:
        fact = "-" if f.fact is None else f"{f.fact:,}"
        different = f.lake == f.raw and f.lake_digest != f.raw_digest
        status = "ok" if f.ok else "DIFFERENT" if different else "MISMATCH"
        lines.append(
            f"{f.topic:<22} {f.lake:>9,} {f.raw:>9,} {fact:>9} {f.quarantined:>11,} "
            f"{f.outside:>9,}  {status}"
        )
    if any(f.lake == f.raw and f.lake_digest != f.raw_digest for f in figures):
        lines.append(
            "DIFFERENT: as many rows, not the same events (one lost, another duplicated or stale)"
        )
    if any(f.outside for f in figures):
        lines.append(
            "outside: lake events before the DAGs' first interval (BEATLYTICA_DAG_START_DATE), "
            "which no run loads"
        )
    return "\n".join(lines)
