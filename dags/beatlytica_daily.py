"""
### beatlytica_daily

Once a day, for the previous day:

1. **wait_for_hourly_runs**: the day reconciles (lake = raw tables = facts for every topic);
   until every hourly run of the day has landed it fails and is retried, holding no slot;
2. **dbt_build_marts**: the analytics marts behind the dashboard and the SCD2 user dimension;
3. **dbt_docs**: `dbt docs generate`, published to `<lake>/docs/dbt/`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DeltaDataIntervalTimetable, chain, dag

from beatlytica.orchestration import (
    DBT_TESTS_OF_SELECTION,
    INTERVAL_ARGS,
    default_args,
    pod_task,
)
from beatlytica.settings import get_settings
from beatlytica.timeparse import parse_utc

settings = get_settings()


@dag(
    dag_id="beatlytica_daily",
    schedule=DeltaDataIntervalTimetable(timedelta(days=1)),
    start_date=parse_utc(settings.dag_start_date),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    dagrun_timeout=timedelta(hours=8),
    tags=["beatlytica"],
    doc_md=__doc__,
)
def beatlytica_daily() -> None:
    wait_for_hourly_runs = pod_task(
        "wait_for_hourly_runs",
        "loader",
        ["reconcile", *INTERVAL_ARGS],
        retries=24,
        retry_delay=timedelta(minutes=10),
        retry_exponential_backoff=False,
    )
    dbt_build_marts = pod_task(
        "dbt_build_marts",
        "dbt",
        [
            "dbt",
            *INTERVAL_ARGS,
            "build",
            "--select",
            "marts.analytics",
            "dim_users",
            *DBT_TESTS_OF_SELECTION,
        ],
    )
    dbt_docs = pod_task("dbt_docs", "dbt", ["dbt-docs", "--publish"])
    chain(wait_for_hourly_runs, dbt_build_marts, dbt_docs)


beatlytica_daily()
