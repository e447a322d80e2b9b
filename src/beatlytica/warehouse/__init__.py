"""The warehouse behind one small interface: DuckDB locally, BigQuery on GCP.

A backend owns one raw table per topic (columns from :func:`beatlytica.events.raw_table_fields`)
and replaces a time interval of it with the committed lake files that cover the interval.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from beatlytica.settings import Settings

#: the order rows of one event_id are ranked in; the first is kept (earliest Kafka record)
DEDUPE_ORDER = ("kafka_timestamp", "kafka_partition", "kafka_offset")
#: the event-time column of the dbt facts
FACT_TS = "event_ts"


class Warehouse(Protocol):
    def replace_interval(self, topic: str, files: list[str], start: datetime, end: datetime) -> int:
        """Make the rows of ``topic`` with ts in [start, end) exactly the events of ``files`` in
        that interval, one row per event_id; returns the rows now in the interval."""
        ...

    def count(self, topic: str, start: datetime, end: datetime) -> int:
        """Rows of ``topic`` with ts in [start, end)."""
        ...

    def fingerprint(self, topic: str, start: datetime, end: datetime) -> tuple[int, int]:
        """(rows, id digest) of ``topic`` with ts in [start, end): the digest is
        :func:`beatlytica.events.id_digest` of their event ids."""
        ...

    def count_model(self, model: str, start: datetime, end: datetime) -> int:
        """Rows of the dbt fact ``model`` (dbt target schema) with event_ts in [start, end)."""
        ...

    def close(self) -> None: ...


def connect(settings: Settings) -> Warehouse:
    """The configured backend (BEATLYTICA_WAREHOUSE)."""
    if settings.warehouse == "bigquery":
        from beatlytica.warehouse.bigquery_backend import BigQueryWarehouse

        return BigQueryWarehouse.from_settings(settings)
    from beatlytica.warehouse.duckdb_backend import DuckDBWarehouse

    return DuckDBWarehouse.from_settings(settings)
