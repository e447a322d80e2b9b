"""
### beatlytica_hourly

One run per data interval (`BEATLYTICA_INTERVAL_MINUTES`, an hour in the cluster):

1. **wait_for_lake**: the interval is complete in the lake: the stream is
   `BEATLYTICA_INTERVAL_GRACE_MINUTES` past its end (reschedule mode);
2. **load**: one mapped task per topic (`BEATLYTICA_TOPICS`) replaces the interval in the raw
   tables (loader image);
3. **reload_late**: earlier intervals (`BEATLYTICA_LATE_LOOKBACK_HOURS`) whose committed lake
   files changed since their load (late events) are loaded again; skipped when there are none;
4. **dbt_build_late**: the models of those intervals' days, when there were any;
5. **dbt_build**: the star schema and everything upstream of it (seeds, staging, sessions)
   for the interval (dbt image, the interval passed as dbt vars);
6. **source_freshness** and **reconcile**: lake = raw = facts per topic, or the run fails with
   the figures in the log.

Everything is keyed on the data interval: rerunning or backfilling an interval replaces it.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DeltaDataIntervalTimetable, chain, dag

from beatlytica.orchestration import (
    DBT_TESTS_OF_SELECTION,
    INTERVAL_ARGS,
    NOTHING_LATE,
    LakeIntervalSensor,
    default_args,
    late_args,
    mapped_pod_task,
    pod_task,
)
from beatlytica.settings import get_settings
from beatlytica.timeparse import parse_utc

settings = get_settings()


@dag(
    dag_id="beatlytica_hourly",
    schedule=DeltaDataIntervalTimetable(timedelta(minutes=settings.interval_minutes)),
    start_date=parse_utc(settings.dag_start_date),
    catchup=False,  # backfills are explicit: `airflow backfill create`
    max_active_runs=2,
    default_args=default_args(),
    dagrun_timeout=timedelta(hours=4),
    tags=["beatlytica"],
    doc_md=__doc__,
)
def beatlytica_hourly() -> None:
    wait_for_lake = LakeIntervalSensor(task_id="wait_for_lake")
    load = mapped_pod_task(
        "load", "loader", [["load", "--topic", topic, *INTERVAL_ARGS] for topic in settings.topics]
    )
    late = late_args(settings)
    reload_late = pod_task(
        "reload_late", "loader", ["load", "--late", *late], skip_on_exit_code=NOTHING_LATE
    )
    dbt_build_late = pod_task(
        "dbt_build_late",
        "dbt",
        ["dbt", *late, "build", "--select", "+marts", *DBT_TESTS_OF_SELECTION],
    )
    dbt_build = pod_task(
        "dbt_build",
        "dbt",
        ["dbt", *INTERVAL_ARGS, "build", "--select", "+marts.core", *DBT_TESTS_OF_SELECTION],
        trigger_rule="none_failed",  # also after a skipped dbt_build_late
    )
    source_freshness = pod_task("source_freshness", "dbt", ["dbt", "source", "freshness"])
    reconcile = pod_task("reconcile", "loader", ["reconcile", *INTERVAL_ARGS])
    chain(
        wait_for_lake, load, reload_late, dbt_build_late, dbt_build, [source_freshness, reconcile]
    )


beatlytica_hourly()
