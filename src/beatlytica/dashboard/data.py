"""The dashboard's figures, read from the analytics marts (DuckDB locally, BigQuery on GCP).

One query per panel, plain SQL both warehouses understand; the dbt models hold the logic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from beatlytica.settings import Settings

Rows = list[dict[str, Any]]
Fetch = Callable[[str], Rows]


@dataclass
class DashboardData:
    daily_streams: Rows = field(default_factory=list)
    hourly_streams: Rows = field(default_factory=list)
    top_songs: Rows = field(default_factory=list)
    top_artists: Rows = field(default_factory=list)
    top_day: date | None = None
    active_users_daily: Rows = field(default_factory=list)
    active_users_monthly: Rows = field(default_factory=list)
    conversions: Rows = field(default_factory=list)
    churn: Rows = field(default_factory=list)
    streams_by_state: Rows = field(default_factory=list)
    session_length: Rows = field(default_factory=list)
    level_by_gender: Rows = field(default_factory=list)
    data_quality: Rows = field(default_factory=list)

    @property
    def total_streams(self) -> int:
        return sum(int(r["streams"]) for r in self.daily_streams)


#: the counts of mart_data_quality_daily the dashboard shows, in order
DATA_QUALITY_COLUMNS = (
    "events",
    "artists_repaired",
    "songs_repaired",
    "names_repaired",
    "locations_repaired",
    "user_agents_unquoted",
    "registrations_after_event",
)


def queries(relation: Callable[[str], str]) -> dict[str, str]:
    r = relation
    return {
        "daily_streams": f"select stream_date, streams, listeners, listening_hours "
        f"from {r('mart_daily_streams')} order by stream_date",
        "hourly_streams": f"select stream_hour, streams from {r('mart_hourly_streams')} "
        "order by stream_hour",
        "active_users_daily": f"select activity_date, active_users, paid_users, free_users "
        f"from {r('mart_active_users_daily')} order by activity_date",
        "active_users_monthly": f"select activity_month, active_users from "
        f"{r('mart_active_users_monthly')} order by activity_month",
        "conversions": f"select change_date, upgrades, downgrades from "
        f"{r('mart_conversions_daily')} order by change_date",
        "churn": f"select churn_date, churned_users from {r('mart_churn_daily')} "
        "order by churn_date",
        "streams_by_state": f"select state, state_name, sum(streams) as streams from "
        f"{r('mart_streams_by_state')} group by state, state_name order by streams desc",
        "session_length": f"select session_date, sessions, avg_session_length_min, "
        f"avg_songs_per_session from {r('mart_session_length_daily')} order by session_date",
        "level_by_gender": f"select gender, level, users, share_of_gender from "
        f"{r('mart_level_by_gender')} order by gender, level",
        # what staging repaired, and what it let through, over the whole window per topic
        "data_quality": "select topic, "
        + ", ".join(f"sum({c}) as {c}" for c in DATA_QUALITY_COLUMNS)
        + f" from {r('mart_data_quality_daily')} group by topic order by topic",
    }


def top_queries(relation: Callable[[str], str], day: date) -> dict[str, str]:
    return {
        "top_songs": f"select song_rank, song_title, artist_name, streams from "
        f"{relation('mart_top_songs_daily')} where stream_date = date '{day.isoformat()}' "
        "order by song_rank",
        "top_artists": f"select artist_rank, artist_name, streams from "
        f"{relation('mart_top_artists_daily')} where stream_date = date '{day.isoformat()}' "
        "order by artist_rank",
    }


def collect(fetch: Fetch, relation: Callable[[str], str]) -> DashboardData:
    # the fields by name: each query fills the Rows field of its name
    panels: dict[str, Any] = {name: fetch(sql) for name, sql in queries(relation).items()}
    data = DashboardData(**panels)
    if data.daily_streams:
        # the busiest day's charts: with a partial first or last day, the fullest picture
        data.top_day = max(data.daily_streams, key=lambda r: r["streams"])["stream_date"]
        for name, sql in top_queries(relation, data.top_day).items():
            setattr(data, name, fetch(sql))
    return data


def load(settings: Settings) -> DashboardData:
    """The figures from the configured warehouse."""
    if settings.warehouse == "bigquery":
        from google.cloud import bigquery

        client = bigquery.Client(project=settings.gcp_project, location=settings.bigquery_location)

        def fetch_bq(sql: str) -> Rows:
            return [dict(row.items()) for row in client.query(sql).result()]

        return collect(
            fetch_bq, lambda m: f"`{settings.gcp_project}.{settings.bigquery_dataset}.{m}`"
        )

    import duckdb

    from beatlytica.warehouse.duckdb_backend import DBT_SCHEMA

    con = duckdb.connect(str(settings.duckdb_file), read_only=True)
    try:

        def fetch_duckdb(sql: str) -> Rows:
            cursor = con.execute(sql)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        return collect(fetch_duckdb, lambda m: f"{DBT_SCHEMA}.{m}")
    finally:
        con.close()
