"""`beatlytica demo`: the embedded pipeline end to end on one machine.

Stages run in the order data flows, every one for real: a local Kafka broker, the generator,
the Spark job on local[2], the Airflow DAGs (their pod tasks as local processes) loading
DuckDB and building the dbt models, the dashboard export. Everything the demo starts is
stopped on exit, Ctrl-C included, and a rerun starts from fresh topics and an empty lake, so it
reproduces the same figures.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

from beatlytica.errors import BeatlyticaError
from beatlytica.settings import Settings, get_settings

log = logging.getLogger(__name__)

#: the demo runs the hourly DAG on day-long intervals unless BEATLYTICA_INTERVAL_MINUTES is set
DEMO_INTERVAL_MINUTES = 1440


@dataclass(frozen=True)
class DemoConfig:
    users: int = 3000
    days: float = 2.0
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    seed: int = 42

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


@contextlib.contextmanager
def local_kafka(settings: Settings) -> Iterator[str]:
    """The local broker for the demo's lifetime, with empty topics; a broker that was already
    running is left running."""
    from beatlytica import kafka_local

    broker = kafka_local.from_settings()
    started_here = broker.pid() is None
    topics = {t: settings.kafka_partitions for t in settings.topics}
    broker.start(topics)
    try:
        broker.reset_topics(topics)
        yield broker.bootstrap_servers
    finally:
        if started_here:
            broker.stop()


def reset_local_state(settings: Settings) -> None:
    """Fresh topics mean fresh offsets: the lake, its checkpoints, the warehouse and the local
    Airflow database start empty too, so a rerun reproduces the same figures."""
    lake = urlparse(settings.lake)
    if lake.scheme != "file":
        raise BeatlyticaError(
            f"the demo writes a local lake; BEATLYTICA_LAKE_URI is {settings.lake}"
        )
    if settings.warehouse != "duckdb":
        raise BeatlyticaError("the demo's warehouse is DuckDB; unset BEATLYTICA_WAREHOUSE")
    shutil.rmtree(lake.path, ignore_errors=True)
    shutil.rmtree(settings.home_dir / "airflow", ignore_errors=True)
    settings.duckdb_file.unlink(missing_ok=True)


def generate_into_kafka(settings: Settings, config: DemoConfig) -> dict[str, int]:
    from beatlytica.generator.runner import run
    from beatlytica.generator.simulation import Simulation, SimulationConfig
    from beatlytica.generator.sinks import KafkaSink

    simulation = Simulation(SimulationConfig(config.users, config.start, config.end, config.seed))
    sink = KafkaSink(
        settings.kafka_client_config(), settings.topics, settings.kafka_connect_timeout_s
    )
    result = run(simulation, sink, settings.topics)
    if result.report.total_failed:
        raise BeatlyticaError(f"{result.report.total_failed} events were not delivered")
    return dict(result.produced)


def stream_to_lake(settings: Settings) -> None:
    from spark_jobs.stream_events import run

    if settings.stream_trigger != "availableNow":
        settings = settings.model_copy(update={"stream_trigger": "availableNow"})
    if run(settings, "local[2]") != 0:
        raise BeatlyticaError("the streaming job failed; see its log lines above")


def lake_counts(settings: Settings) -> dict[str, tuple[int, int]]:
    """(events, quarantined) per topic, read through the commit logs."""
    import pyarrow.parquet as pq

    from beatlytica.lake import committed_files, quarantine_uri, raw_table_uri

    def rows(uri: str) -> int:
        return sum(pq.ParquetFile(urlparse(f).path).metadata.num_rows for f in committed_files(uri))

    return {
        t: (rows(raw_table_uri(settings.lake, t)), rows(quarantine_uri(settings.lake, t)))
        for t in settings.topics
    }


def intervals(start: datetime, end: datetime, minutes: int) -> list[tuple[datetime, datetime]]:
    """The DAG's data intervals that cover [start, end)."""
    step = timedelta(minutes=minutes)
    out = []
    while start < end:
        out.append((start, start + step))
        start += step
    return out


def run_dags(settings: Settings, config: DemoConfig) -> None:
    """beatlytica_hourly for every interval of the window, then beatlytica_daily per day."""
    from beatlytica.airflow_local import run_dag_interval

    hourly = intervals(config.start, config.end, settings.interval_minutes)
    daily = intervals(config.start, config.end, 24 * 60)
    for dag_id, runs in (("beatlytica_hourly", hourly), ("beatlytica_daily", daily)):
        for i, (start, end) in enumerate(runs, 1):
            print(
                f"      {dag_id} {i}/{len(runs)} [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M})",
                end="",
                flush=True,
            )
            started = datetime.now(UTC)
            run_dag_interval(settings, dag_id, start, end)
            print(f"  success in {(datetime.now(UTC) - started).total_seconds():.0f}s", flush=True)


def mart_rows(settings: Settings) -> dict[str, int]:
    import duckdb

    from beatlytica.warehouse.duckdb_backend import DBT_SCHEMA

    con = duckdb.connect(str(settings.duckdb_file), read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ? and "
                "(table_name like 'mart_%' or table_name like 'fact_%' or table_name like 'dim_%') "
                "order by 1",
                [DBT_SCHEMA],
            ).fetchall()
        ]
        counts: dict[str, int] = {}
        for n in names:
            row = con.execute(f"select count(*) from {DBT_SCHEMA}.{n}").fetchone()
            assert row is not None  # count(*) returns one row
            counts[n] = row[0]
        return counts
    finally:
        con.close()


def warehouse_counts(settings: Settings, config: DemoConfig) -> dict[str, int]:
    from beatlytica.warehouse import connect

    warehouse = connect(settings)
    try:
        return {t: warehouse.count(t, config.start, config.end) for t in settings.topics}
    finally:
        warehouse.close()


def demo_settings() -> Settings:
    """The settings of the demo: day-long DAG intervals and no retries, unless set."""
    os.environ.setdefault("BEATLYTICA_INTERVAL_MINUTES", str(DEMO_INTERVAL_MINUTES))
    os.environ.setdefault("BEATLYTICA_TASK_RETRIES", "0")
    get_settings.cache_clear()
    return get_settings()


def run_demo(config: DemoConfig) -> None:
    from beatlytica.dashboard import data as dashboard_data
    from beatlytica.dashboard import export

    settings = demo_settings()
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"Beatlytica demo: {config.users} users, {config.days:g} simulated days from "
        f"{config.start:%Y-%m-%d}; state in {settings.home_dir}",
        flush=True,
    )
    reset_local_state(settings)
    with local_kafka(settings) as bootstrap:
        print(f"[1/5] Kafka broker up on {bootstrap}, topics empty", flush=True)
        produced = generate_into_kafka(settings, config)
        print(f"[2/5] {sum(produced.values()):,} events produced to Kafka", flush=True)
        print("[3/5] Spark Structured Streaming, Kafka -> lake (availableNow)", flush=True)
        stream_to_lake(settings)
    counts = lake_counts(settings)
    print("[4/5] Airflow DAGs, run locally per data interval (dag.test)", flush=True)
    run_dags(settings, config)
    raw = warehouse_counts(settings, config)
    board = dashboard_data.load(settings)
    page = export.export(board, settings.home_dir / "dashboard" / "index.html")
    print("[5/5] dashboard exported", flush=True)

    print(f"\nEvents ({settings.lake})")
    print(f"  {'topic':<22} {'produced':>9} {'in lake':>9} {'quarantined':>11} {'warehouse':>9}")
    for topic in settings.topics:
        events, quarantined = counts[topic]
        print(
            f"  {topic:<22} {produced.get(topic, 0):>9,} {events:>9,} {quarantined:>11,} "
            f"{raw.get(topic, 0):>9,}"
        )
    print(f"\nWarehouse ({settings.duckdb_file})")
    for name, n in mart_rows(settings).items():
        print(f"  {name:<28} {n:>9,} rows")
    print(f"\nTop songs, {board.top_day}")
    for r in board.top_songs[:5]:
        print(f"  {r['song_rank']:>2}. {r['song_title']} — {r['artist_name']} ({r['streams']:,})")
    print(f"Top artists, {board.top_day}")
    for r in board.top_artists[:5]:
        print(f"  {r['artist_rank']:>2}. {r['artist_name']} ({r['streams']:,})")
    print("Daily active users")
    for r in board.active_users_daily:
        print(f"  {r['activity_date']}  {r['active_users']:,}")
    print(f"\nDashboard: {page}")
    print(f"dbt docs:  {settings.lake}/docs/dbt/index.html")
    print("Interactive dashboard: .venv/bin/beatlytica dashboard --serve")
    missing = {t for t in settings.topics if not counts[t][0] == raw.get(t) == produced.get(t, 0)}
    if missing:
        raise BeatlyticaError(f"not every produced event reached the warehouse: {sorted(missing)}")
