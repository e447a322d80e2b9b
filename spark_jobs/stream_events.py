"""The streaming job: Kafka topics -> the raw Parquet lake, exactly once, with a quarantine.

Per topic two queries read the topic: ``<topic>.raw`` writes the valid events to
``<lake>/raw/<topic>/event_date=…/event_hour=…/`` and ``<topic>.quarantine`` writes the
rejected records to ``<lake>/quarantine/<topic>/``. Both use Spark's file sink, whose commit
log (``_spark_metadata``) together with the Kafka offsets in the query's checkpoint
(``<lake>/_checkpoints/<topic>/<query>``) makes the output exactly once across restarts.

Run it with spark-submit (the Spark operator does, in the cluster) or with
``beatlytica stream`` locally. Exits non-zero when a query fails, so the operator's restart
policy can act.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from beatlytica.lake import checkpoint_uri, quarantine_uri, raw_table_uri
from beatlytica.settings import Settings, get_settings
from beatlytica.timeparse import parse_trigger

log = logging.getLogger("beatlytica.stream")

PARTITION_COLUMNS = ("event_date", "event_hour")

#: Spark settings the job's output depends on (the lake's types and partitions are UTC)
SESSION_CONFIG = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.streaming.stopGracefullyOnShutdown": "true",
    "spark.ui.showConsoleProgress": "false",
}


#: the Hadoop GCS connector for gs:// lakes. Hadoop 3.5's core-default.xml gives some fs.gs.*
#: sizes as "64m", which the connector cannot parse: they are restated in bytes.
GCS_CONFIG = {
    "spark.hadoop.fs.gs.impl": "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem",
    "spark.hadoop.fs.AbstractFileSystem.gs.impl": "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFS",
    "spark.hadoop.fs.gs.block.size": str(64 << 20),
    "spark.hadoop.fs.gs.rewrite.max.chunk.size": str(512 << 20),
    "spark.hadoop.fs.gs.outputstream.buffer.size": str(8 << 20),
    "spark.hadoop.fs.gs.inputstream.inplace.seek.limit": str(8 << 20),
    "spark.hadoop.fs.gs.inputstream.min.range.request.size": str(2 << 20),
}


def gcs_config(settings: Settings) -> dict[str, str]:
    config = dict(GCS_CONFIG)
    if settings.gcp_project:
        config["spark.hadoop.fs.gs.project.id"] = settings.gcp_project
    if settings.gcs_endpoint:  # an emulator: no credentials
        config["spark.hadoop.fs.gs.storage.root.url"] = settings.gcs_endpoint
        config["spark.hadoop.fs.gs.auth.type"] = "UNAUTHENTICATED"
    return config


def build_session(settings: Settings, master: str | None = None) -> Any:
    """A SparkSession for the job. Locally the connector jars come from the jar cache through
    ``spark.jars``; in the image they sit in Spark's own jars folder."""
    from pyspark.sql import SparkSession

    if master and master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName("beatlytica-stream")
    if master:
        builder = builder.master(master).config("spark.ui.enabled", "false")
    jars_dir = settings.jars_path("spark")
    jars = sorted(str(p) for p in jars_dir.glob("*.jar")) if jars_dir.is_dir() else []
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    for key, value in {**SESSION_CONFIG, **gcs_config(settings)}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def kafka_options(settings: Settings, topic: str) -> dict[str, str]:
    """Options of the Kafka source for one topic, security included."""
    options = {
        f"kafka.{k}": v
        for k, v in settings.kafka_client_config().items()
        if not k.startswith("sasl.user") and not k.startswith("sasl.pass")
    }
    if settings.kafka_security_protocol.startswith("SASL"):
        assert settings.kafka_password is not None
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if settings.kafka_sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        options["kafka.sasl.jaas.config"] = (
            f'{module} required username="{settings.kafka_username}" '
            f'password="{settings.kafka_password.get_secret_value()}";'
        )
    options.update(
        {
            "subscribe": topic,
            "startingOffsets": settings.stream_starting_offsets,
            # a gap in the offsets (retention ran out before we read) must stop the job
            "failOnDataLoss": "true",
        }
    )
    if settings.stream_max_offsets_per_trigger:
        options["maxOffsetsPerTrigger"] = str(settings.stream_max_offsets_per_trigger)
    return options


def start_queries(spark: Any, settings: Settings) -> list[Any]:
    """Start the raw and the quarantine query of every topic; returns the queries."""
    from pyspark.sql import functions as F

    from spark_jobs.transforms import ERROR, enrich, parse, quarantine

    interval = parse_trigger(settings.stream_trigger)
    trigger = {"availableNow": True} if interval is None else {"processingTime": interval}
    queries = []
    for topic in settings.topics:

        def source(topic: str = topic) -> Any:
            kafka = spark.readStream.format("kafka").options(**kafka_options(settings, topic))
            return parse(kafka.load(), topic)

        valid = F.count(F.when(F.col(ERROR).isNull(), 1)).alias("written")
        rejected = F.count(F.when(F.col(ERROR).isNotNull(), 1))
        raw = (
            source()
            .observe(f"{topic}.raw", valid, rejected.alias("quarantined"))
            .where(F.col(ERROR).isNull())
        )
        rejects = (
            source()
            .observe(f"{topic}.quarantine", rejected.alias("written"))
            .where(F.col(ERROR).isNotNull())
        )
        queries.append(
            enrich(raw, topic)
            .writeStream.queryName(f"{topic}.raw")
            .format("parquet")
            .partitionBy(*PARTITION_COLUMNS)
            .option("path", raw_table_uri(settings.lake, topic))
            .option("checkpointLocation", checkpoint_uri(settings.lake, topic, "raw"))
            .trigger(**trigger)
            .start()
        )
        queries.append(
            quarantine(rejects)
            .writeStream.queryName(f"{topic}.quarantine")
            .format("parquet")
            .partitionBy("quarantine_date")
            .option("path", quarantine_uri(settings.lake, topic))
            .option("checkpointLocation", checkpoint_uri(settings.lake, topic, "quarantine"))
            .trigger(**trigger)
            .start()
        )
    return queries


def progress_fields(progress: Any) -> dict[str, Any]:
    """The JSON log fields of one micro-batch of one query."""
    topic, _, kind = str(progress.name).rpartition(".")
    fields: dict[str, Any] = {
        "query": progress.name,
        "topic": topic,
        "sink": kind,
        "batch_id": progress.batchId,
        "input_rows": progress.numInputRows,
        "batch_duration_ms": progress.batchDuration,
        "end_offsets": {s.description: json.loads(s.endOffset or "null") for s in progress.sources},
    }
    counts = progress.observedMetrics.get(str(progress.name))
    if counts is not None:
        fields.update({f"{name}_rows": value for name, value in counts.asDict().items()})
    return fields


def add_progress_listener(spark: Any) -> Any:
    from pyspark.sql.streaming import StreamingQueryListener

    class ProgressLogger(StreamingQueryListener):
        def onQueryStarted(self, event: Any) -> None:
            log.info("query started", extra={"fields": {"query": event.name}})

        def onQueryProgress(self, event: Any) -> None:
            if event.progress.numInputRows or event.progress.batchId == 0:
                log.info("micro-batch", extra={"fields": progress_fields(event.progress)})

        def onQueryIdle(self, event: Any) -> None:
            pass

        def onQueryTerminated(self, event: Any) -> None:
            fields = {"query_id": str(event.id), "exception": event.exception}
            (log.error if event.exception else log.info)(
                "query terminated", extra={"fields": fields}
            )

    listener = ProgressLogger()
    spark.streams.addListener(listener)
    return listener


def run(settings: Settings, master: str | None = None) -> int:
    """Run until the queries end (availableNow), fail, or SIGTERM; 0 on success, 1 on failure."""
    spark = build_session(settings, master)
    listener = add_progress_listener(spark)
    try:
        return _supervise(start_queries(spark, settings), settings)
    finally:
        spark.streams.removeListener(listener)
        spark.stop()


def _supervise(queries: list[Any], settings: Settings, poll_s: float = 1.0) -> int:
    """Watch the queries: stop them all on SIGTERM (exit 0) or when one fails (exit 1)."""
    continuous = parse_trigger(settings.stream_trigger) is not None
    log.info(
        "streaming",
        extra={
            "fields": {
                "lake": settings.lake,
                "topics": list(settings.topics),
                "trigger": settings.stream_trigger,
            }
        },
    )
    stop = threading.Event()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if in_main_thread else None
    try:
        while not stop.wait(poll_s):
            failed = {q.name: q.exception() for q in queries if not q.isActive and q.exception()}
            if failed:
                for name, error in failed.items():
                    message = str(error.desc if hasattr(error, "desc") else error)
                    log.error(
                        "streaming failed",
                        extra={"fields": {"query": name, "error": message.splitlines()[0]}},
                    )
                return 1
            active = [q for q in queries if q.isActive]
            if not active:
                return 0  # availableNow: everything there was is in the lake
            if continuous and len(active) < len(queries):
                ended = sorted(q.name for q in queries if not q.isActive)
                log.error("streaming failed", extra={"fields": {"stopped_queries": ended}})
                return 1
        log.info("SIGTERM: stopping the queries")
        return 0
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        for query in queries:
            if query.isActive:
                query.stop()


def main(argv: Sequence[str] | None = None) -> int:
    from beatlytica.logs import setup_logging

    parser = argparse.ArgumentParser(prog="stream_events", description=__doc__)
    parser.add_argument("--master", help="Spark master, e.g. local[2] (spark-submit sets it)")
    args = parser.parse_args(argv)
    setup_logging()
    logging.getLogger("py4j").setLevel(logging.WARNING)
    return run(get_settings(), args.master)


if __name__ == "__main__":
    sys.exit(main())
