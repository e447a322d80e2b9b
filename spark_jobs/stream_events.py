"""The streaming job: Kafka topics -> the raw Parquet lake, exactly once, with a quarantine.

One query per topic reads the topic once. Each micro-batch's valid events go to
``<lake>/raw/<topic>/event_date=…/event_hour=…/`` and its rejected records to
``<lake>/quarantine/<topic>/``, both committed under the batch id in the commit log Spark's
file sink keeps (``_spark_metadata``, see :mod:`spark_jobs.lake_sink`); with the Kafka offsets
in the query's checkpoint (``<lake>/_checkpoints/<topic>/lake``) the output is exactly once
across restarts.

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
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from beatlytica.errors import BeatlyticaError
from beatlytica.lake import checkpoint_uri, progress_uri, quarantine_uri, raw_table_uri
from beatlytica.settings import LogSettings, Settings, get_settings
from beatlytica.timeparse import parse_trigger

log = logging.getLogger("beatlytica.stream")

PARTITION_COLUMNS = ("event_date", "event_hour")

#: lake columns whose values are (almost) all distinct
UNIQUE_COLUMNS = ("event_id", "kafka_offset", "kafka_timestamp", "ts")

#: Spark settings the job's output depends on (the lake's types and partitions are UTC)
SESSION_CONFIG = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.shuffle.partitions": "4",
    # the lake's codec: zstd stores the events in about half of snappy's bytes (docs/lake.md)
    "spark.sql.parquet.compression.codec": "zstd",
    # no dictionary for columns whose values (almost) never repeat: it would only be tried,
    # hashed per value, and dropped (docs/lake.md)
    **{f"spark.hadoop.parquet.enable.dictionary#{c}": "false" for c in UNIQUE_COLUMNS},
    "spark.sql.streaming.stopGracefullyOnShutdown": "true",
    "spark.ui.showConsoleProgress": "false",
}


#: the JVM options of the job's driver and executors. The parallel collector: G1's concurrent
#: marking took about a tenth of the job's CPU for nothing a throughput job needs (pauses are
#: short either way); docs/benchmarks.md has the figures. The chart passes the same options
#: (stream.javaOptions, tested to agree).
JVM_OPTIONS = "-XX:+UseParallelGC"


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
    if master and master.startswith("local"):  # the JVM pyspark launches is driver and executor
        builder = builder.config("spark.driver.extraJavaOptions", local_java_options())
    jars_dir = settings.jars_path("spark")
    jars = sorted(str(p) for p in jars_dir.glob("*.jar")) if jars_dir.is_dir() else []
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    for key, value in {**SESSION_CONFIG, **gcs_config(settings)}.items():
        builder = builder.config(key, value)
    builder = builder.config("spark.log.level", spark_log_level())
    return builder.getOrCreate()


#: Spark's log4j configuration in local mode: its errors only, from the JVM's first line
LOCAL_LOG4J = Path(__file__).with_name("log4j2.properties")


def local_java_options() -> str:
    """The JVM options of a local-mode run: the job's, and Spark's log4j configuration unless
    debugging (set before the JVM starts, so even Spark's start-up lines follow it)."""
    if debugging():
        return JVM_OPTIONS
    return f"{JVM_OPTIONS} -Dlog4j2.configurationFile={LOCAL_LOG4J.as_uri()}"


def debugging() -> bool:
    return LogSettings().log_level == "DEBUG"


def spark_log_level() -> str:
    """Spark's own log4j level: its errors only, unless BEATLYTICA_LOG_LEVEL=DEBUG (the job
    reports its progress itself)."""
    return "DEBUG" if debugging() else "ERROR"


def quiet_py4j() -> None:
    """py4j logs every command at DEBUG and INFO: kept out unless BEATLYTICA_LOG_LEVEL=DEBUG."""
    if not debugging():
        logging.getLogger("py4j").setLevel(logging.WARNING)


def kafka_options(settings: Settings, topic: str) -> dict[str, str]:
    """Options of the Kafka source for one topic, security included."""
    config = settings.kafka_client_config()
    # librdkafka's names that the Java client spells otherwise: the SASL credentials go into
    # the JAAS line below, the CA into a PEM trust store given inline (no file to ship to the
    # executors: the options travel with the query)
    ca = config.pop("ssl.ca.pem", None)
    options = {
        f"kafka.{k}": v
        for k, v in config.items()
        if not k.startswith("sasl.user") and not k.startswith("sasl.pass")
    }
    if ca:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.certificates"] = ca
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


#: rows inside a lake file: by user and session, then time, so the user's fields (name,
#: location, agent, level…) repeat in runs that Parquet's dictionary and RLE encodings store once
SORT_WITHIN_FILES = ("user_id", "session_id", "ts")


class TopicBatches:
    """The ``foreachBatch`` of a topic's query: each micro-batch, read from Kafka once, goes to
    the raw table (valid rows) and the quarantine table (rejected rows), each committed under
    the batch id (:mod:`spark_jobs.lake_sink`). The rejected rows cost a second pass over the
    batch only when the first found some."""

    def __init__(self, spark: Any, settings: Settings, topic: str) -> None:
        from spark_jobs.lake_sink import LakeTable

        self.topic = topic
        self.raw = LakeTable(spark, raw_table_uri(settings.lake, topic))
        self.quarantine = LakeTable(spark, quarantine_uri(settings.lake, topic))
        #: counts of the batches written, by batch id, until the progress listener logs them
        self.counts: dict[int, dict[str, int]] = {}

    def __call__(self, batch: Any, batch_id: int) -> None:
        from pyspark.sql import Observation
        from pyspark.sql import functions as F

        from spark_jobs.transforms import ERROR, enrich, quarantine

        observation = Observation(f"{self.topic}.{batch_id}")
        observed = batch.observe(
            observation,
            F.count(F.when(F.col(ERROR).isNull(), 1)).alias("written"),
            F.count(F.when(F.col(ERROR).isNotNull(), 1)).alias("quarantined"),
        )
        rows = enrich(observed.where(F.col(ERROR).isNull()), self.topic)
        rows = rows.sortWithinPartitions(*PARTITION_COLUMNS, *SORT_WITHIN_FILES)
        if self.raw.committed(batch_id):  # a replay of a batch whose raw rows are in
            counts = None
        else:
            self.raw.write(rows, batch_id, PARTITION_COLUMNS)
            counts = {k: int(v) for k, v in observation.get.items()}
            self.counts[batch_id] = counts
        if counts is None or counts["quarantined"]:
            rejects = quarantine(batch.where(F.col(ERROR).isNotNull()))
            self.quarantine.write(rejects, batch_id, ("quarantine_date",))
        else:
            self.quarantine.commit_empty(batch_id)


#: the checkpoints of the job before one query per topic (a raw and a quarantine query)
TWO_QUERY_CHECKPOINTS = ("raw", "quarantine")


def batch_writers(spark: Any, settings: Settings) -> dict[str, TopicBatches]:
    from spark_jobs.lake_sink import exists

    for topic in settings.topics:
        checkpoints = checkpoint_uri(settings.lake, topic).rpartition("/")[0]
        old = [c for c in TWO_QUERY_CHECKPOINTS if exists(spark, f"{checkpoints}/{c}")]
        if old and not exists(spark, checkpoint_uri(settings.lake, topic)):
            raise BeatlyticaError(
                f"the lake {settings.lake} was written by the job's earlier two-query layout "
                f"({checkpoints}/{old[0]}): its offsets cannot carry over, so this job would "
                "write the topic again; stream into a new BEATLYTICA_LAKE_URI (docs/lake.md)"
            )
    return {topic: TopicBatches(spark, settings, topic) for topic in settings.topics}


def start_queries(spark: Any, settings: Settings, writers: dict[str, TopicBatches]) -> list[Any]:
    """Start one query per topic (its name is the topic)."""
    return [start_query(spark, settings, topic, writer) for topic, writer in writers.items()]


def start_query(spark: Any, settings: Settings, topic: str, writer: TopicBatches) -> Any:
    """The query of one topic, from its checkpoint: a restart resumes exactly where the last
    committed batch ended."""
    from spark_jobs.transforms import Limits, parse

    limits = Limits.from_settings(settings)
    interval = parse_trigger(settings.stream_trigger)
    trigger = {"availableNow": True} if interval is None else {"processingTime": interval}
    kafka = spark.readStream.format("kafka").options(**kafka_options(settings, topic))
    return (
        parse(kafka.load(), topic, limits)
        .writeStream.queryName(topic)
        .foreachBatch(writer)
        .option("checkpointLocation", checkpoint_uri(settings.lake, topic))
        .trigger(**trigger)
        .start()
    )


def is_data_loss(message: str) -> bool:
    """A gap in the offsets (retention or a recreated topic): restarting cannot help."""
    return "failOnDataLoss" in message or "some data may have been lost" in message.lower()


class Restarts:
    """When to restart a failed topic query in the driver: after a wait that doubles with each
    failure in a row (``backoff_s``, up to ``max_backoff_s``), at most ``limit`` times in a row;
    a completed micro-batch after a restart makes the query healthy and the count starts again.
    Data loss is never retried."""

    def __init__(self, limit: int, backoff_s: float, max_backoff_s: float = 300.0) -> None:
        self.limit = limit
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.in_a_row: dict[str, int] = {}

    def delay(self, name: str, message: str) -> float | None:
        """Seconds to wait before restarting ``name`` after a failure, or None to give up."""
        failures = self.in_a_row.get(name, 0)
        if is_data_loss(message) or failures >= self.limit:
            return None
        self.in_a_row[name] = failures + 1
        return min(self.backoff_s * 2**failures, self.max_backoff_s)

    def healthy(self, name: str) -> bool:
        """Record a completed micro-batch; True when it ends a run of failures."""
        return self.in_a_row.pop(name, 0) > 0


def backlog(progress: Any) -> int | None:
    """Offsets between what a batch read up to and the latest the source saw, all partitions."""
    total = 0
    for source in progress.sources:
        end = json.loads(source.endOffset or "null")
        latest = json.loads(getattr(source, "latestOffset", None) or "null")
        if not isinstance(end, dict) or not isinstance(latest, dict):
            return None
        for topic, partitions in latest.items():
            for partition, offset in partitions.items():
                total += max(int(offset) - int(end.get(topic, {}).get(partition, 0)), 0)
    return total


def progress_fields(progress: Any, counts: dict[str, int] | None) -> dict[str, Any]:
    """The JSON log fields of one micro-batch of one topic's query."""
    # Spark counts the rows of every pass over the batch (a second one when it has rejects):
    # the events read are the written and the quarantined ones, when the batch ran here
    rows = sum(counts.values()) if counts is not None else progress.numInputRows
    seconds = (progress.batchDuration or 0) / 1000
    fields: dict[str, Any] = {
        "topic": str(progress.name),
        "batch_id": progress.batchId,
        "input_rows": rows,
        "events_per_s": round(rows / seconds) if seconds else 0,
        "backlog": backlog(progress),
        "batch_duration_ms": progress.batchDuration,
        "end_offsets": {s.description: json.loads(s.endOffset or "null") for s in progress.sources},
    }
    if counts is not None:
        fields.update({f"{name}_rows": value for name, value in counts.items()})
    return fields


def progress_line(fields: dict[str, Any]) -> str:
    """One human line per micro-batch of a topic (the JSON line carries the same fields)."""
    line = f"{fields['topic']}: batch {fields['batch_id']}, {fields['input_rows']:,} read"
    if fields.get("backlog") is not None:
        line += f" ({fields['backlog']:,} behind)"
    line += f", {fields['events_per_s']:,} events/s"
    if "quarantined_rows" in fields:
        line += f", {fields['quarantined_rows']:,} quarantined"
    return line


class Heartbeat:
    """When the job last told its user something: a batch that runs long gets a line saying
    so, never a silent minute."""

    def __init__(self) -> None:
        self.at = time.monotonic()

    def beat(self) -> None:
        self.at = time.monotonic()

    def quiet_for(self) -> float:
        return time.monotonic() - self.at


def add_progress_listener(
    spark: Any, batches: dict[str, TopicBatches], heartbeat: Heartbeat, lake: str | None = None
) -> Any:
    """Log every micro-batch; and when a query has read all that Kafka held (a batch with no
    backlog, or an idle trigger), note the time in ``<lake>/_progress/<topic>.json``: everything
    produced before it is committed, which the lake sensor's completeness rule reads."""
    from pyspark.sql.streaming import StreamingQueryListener

    from spark_jobs.lake_sink import write_text

    names: dict[str, str] = {}  # query id -> topic (idle events carry the id only)

    def caught_up(topic: str, timestamp: str) -> None:
        if lake is None:
            return
        note = {"topic": topic, "read_all_before": timestamp}
        try:
            write_text(spark, progress_uri(lake, topic), json.dumps(note))
        except Exception as e:  # a note missed is a sensor waiting longer, never data lost
            log.warning(f"{topic}: cannot note progress: {e}", extra={"fields": {"topic": topic}})

    class ProgressLogger(StreamingQueryListener):
        def onQueryStarted(self, event: Any) -> None:
            names[str(event.id)] = str(event.name)
            log.info(f"{event.name}: reading", extra={"fields": {"topic": event.name}})

        def onQueryProgress(self, event: Any) -> None:
            progress = event.progress
            writer = batches.get(str(progress.name))
            counts = writer.counts.pop(progress.batchId, None) if writer else None
            if progress.numInputRows or progress.batchId == 0:
                fields = progress_fields(progress, counts)
                log.info(
                    progress_line(fields), extra={"fields": {"event": "micro-batch", **fields}}
                )
                heartbeat.beat()
            if backlog(progress) == 0:
                caught_up(str(progress.name), str(progress.timestamp))

        def onQueryIdle(self, event: Any) -> None:
            if str(event.id) in names:
                caught_up(names[str(event.id)], str(event.timestamp))

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
    quiet_py4j()
    started = time.monotonic()
    log.info(f"starting Spark ({master or 'spark-submit'})")
    spark = build_session(settings, master)
    log.info(f"Spark is up in {time.monotonic() - started:.0f} s")
    try:
        return stream(spark, settings)
    finally:
        spark.stop()


def stream(spark: Any, settings: Settings) -> int:
    """The job on a running session: its queries, their progress, their end."""
    writers = batch_writers(spark, settings)
    heartbeat = Heartbeat()
    listener = add_progress_listener(spark, writers, heartbeat, settings.lake)
    try:
        try:
            queries = start_queries(spark, settings, writers)
        except Exception as e:
            if "Failed to find data source: kafka" in str(e):
                raise BeatlyticaError(
                    "Spark has no Kafka connector: put org.apache.spark:spark-sql-kafka-0-10_2.13 "
                    "and its dependencies on its classpath (the spark image has them; locally "
                    "`make setup` fetches them into .cache/jars/spark)"
                ) from None
            raise
        return _supervise(
            queries,
            settings,
            heartbeat,
            restart=lambda topic: start_query(spark, settings, topic, writers[topic]),
        )
    finally:
        spark.streams.removeListener(listener)


def _error_text(error: Any) -> str:
    return str(error.desc if hasattr(error, "desc") else error)


def _supervise(
    queries: list[Any],
    settings: Settings,
    heartbeat: Heartbeat | None = None,
    poll_s: float = 1.0,
    quiet_s: float = 20.0,
    restart: Any = None,
) -> int:
    """Watch the queries: stop them all on SIGTERM (exit 0); restart a failed one from its
    checkpoint (:class:`Restarts`), or stop them all and exit 1 when it may not be; say what
    they are doing when a batch takes long."""
    continuous = parse_trigger(settings.stream_trigger) is not None
    log.info(
        f"streaming {len(queries)} topics into {settings.lake}",
        extra={
            "fields": {
                "lake": settings.lake,
                "topics": list(settings.topics),
                "trigger": settings.stream_trigger,
            }
        },
    )
    heartbeat = heartbeat or Heartbeat()
    restarts = Restarts(settings.stream_query_restarts, settings.stream_restart_backoff_seconds)
    pending: dict[str, float] = {}  # topic -> when to restart its failed query
    stop = threading.Event()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if in_main_thread else None

    def failed(name: str, message: str) -> bool:
        """Schedule the restart of ``name``; False when it may not be restarted."""
        delay = restarts.delay(name, message) if restart is not None else None
        fields: dict[str, Any] = {"query": name, "error": (message.splitlines() or [""])[0]}
        if delay is None:
            log.error("streaming failed", extra={"fields": fields})
            return False
        fields |= {"restart_in_s": delay, "failures_in_a_row": restarts.in_a_row[name]}
        log.warning(
            f"{name} failed; restarting it from its checkpoint in {delay:.0f} s",
            extra={"fields": fields},
        )
        pending[name] = time.monotonic() + delay
        return True

    try:
        while not stop.wait(poll_s):
            active = []
            for index, query in enumerate(queries):
                name = str(query.name)
                if name in pending:
                    if time.monotonic() < pending[name]:
                        continue
                    del pending[name]
                    try:
                        queries[index] = query = restart(name)
                    except Exception as e:  # e.g. the checkpoint cannot be read right now
                        if not failed(name, str(e)):
                            return 1
                        continue
                # one look per poll: a query that ends between two looks is seen at the next
                if query.isActive:
                    active.append(query)
                    recovering = name in restarts.in_a_row  # (lastProgress costs a JSON parse)
                    if recovering and query.lastProgress is not None and restarts.healthy(name):
                        log.info(f"{name}: healthy again", extra={"fields": {"query": name}})
                elif query.exception() and not failed(name, _error_text(query.exception())):
                    return 1
            if active and heartbeat.quiet_for() >= quiet_s:
                busy = [q.name for q in active if q.status["isTriggerActive"]]
                if busy:
                    log.info(f"still reading {', '.join(busy)}", extra={"fields": {"busy": busy}})
                heartbeat.beat()
            if not active and not pending:
                return 0  # availableNow: everything there was is in the lake
            if continuous and len(active) + len(pending) < len(queries):
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
    try:
        setup_logging()
        return run(get_settings(), args.master)
    except (BeatlyticaError, ValueError) as e:
        log.error(str(e))
        return 2


if __name__ == "__main__":
    sys.exit(main())
