"""Repairing one unreadable committed lake file: its rows again, from Kafka, exactly once.

:func:`beatlytica.lake_repair.plan_repair` decides what to do without Spark; this module does it
with the streaming job's own session settings and transformations (``parse``, ``enrich``, the
job's sort inside files), so a rebuilt file holds what the job wrote:

1. read the batch's Kafka offsets with Spark's Kafka batch source (``assign``,
   ``startingOffsets``, ``endingOffsets``), parse and enrich them as the job does;
2. check them against the lake: a record the lake already holds (same Kafka partition and
   offset) must be the same event, and with the checkpoint's exact range every readable row
   of the batch must be among them; otherwise the checkpoint or the topic is not the one the
   lake was written from, and nothing is changed;
3. keep the rows of the file's partition folder that no other readable committed file holds;
4. write them to ``<table>/_repair/…`` (the job's codec and Parquet settings), move the damaged
   file to ``<table>/_corrupt/<time>/…`` (never deleted), move the new one to the committed
   path, and rewrite the file's entries in the commit log with its size (Spark's reader of
   the folder plans its reads from the logged size); a record of what was done goes next to
   the damaged file.

``--drop`` moves the file aside and removes its entries from the log instead. All I/O goes
through the JVM's Hadoop file systems, like the job's (``file://`` keeps its checksum files
right; ``gs://`` goes through the GCS connector).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from beatlytica.errors import BeatlyticaError
from beatlytica.lake import METADATA_DIR
from beatlytica.lake_repair import (
    COORDINATES,
    REPAIR_DIR,
    Plan,
    corrupt_path,
    is_local,
    log_batch,
    manifest,
    plan_repair,
    rewrite_log,
)
from beatlytica.settings import Settings

log = logging.getLogger("beatlytica.repair")

#: how often the log is read again after a rewrite, in case the running job's compaction
#: carried an entry over from before the rewrite
LOG_PASSES = 3
#: Parquet's switch for vectored reads (see :func:`execute`)
VECTORED_IO = "parquet.hadoop.vectored.io.enabled"


class HadoopFiles:
    """The few file operations a repair needs, through the JVM's Hadoop file system."""

    def __init__(self, spark: Any, uri: str) -> None:
        jvm = spark._jvm
        self._jvm = jvm
        self._gateway = spark.sparkContext._gateway
        self._conf = spark._jsc.hadoopConfiguration()
        self._path = jvm.org.apache.hadoop.fs.Path
        self._io = jvm.org.apache.commons.io.IOUtils
        self.fs = self._path(uri).getFileSystem(self._conf)

    def exists(self, uri: str) -> bool:
        return bool(self.fs.exists(self._path(uri)))

    def status(self, uri: str) -> dict[str, int]:
        """The commit log's fields of a file, as the job's sink records them."""
        status = self.fs.getFileStatus(self._path(uri))
        return {
            "size": int(status.getLen()),
            "modificationTime": int(status.getModificationTime()),
            "blockReplication": int(status.getReplication()),
            "blockSize": int(status.getBlockSize()),
        }

    def move(self, source: str, target: str) -> None:
        target_path = self._path(target)
        self.fs.mkdirs(target_path.getParent())
        if not self.fs.rename(self._path(source), target_path):
            raise BeatlyticaError(f"cannot move {source} to {target}")

    def names(self, folder: str) -> list[str]:
        path = self._path(folder)
        if not self.fs.exists(path):
            return []
        return [str(s.getPath().getName()) for s in self.fs.listStatus(path)]

    def read_text(self, uri: str) -> str:
        stream = self.fs.open(self._path(uri))
        try:
            return str(self._io.toString(stream, "UTF-8"))
        finally:
            stream.close()

    def write_text(self, uri: str, text: str) -> None:
        out = self.fs.create(self._path(uri), True)
        try:
            out.write(bytearray(text.encode()))
        finally:
            out.close()

    def replace_text(self, uri: str, text: str) -> None:
        """Replace a file's text so a reader sees the old text or the new, never a part: a
        temporary file renamed over it locally (Hadoop's FileContext, which renames over an
        existing file as POSIX does, checksum file included); on an object store (gs://) an
        object written anew, which replaces the old one only once complete."""
        if not is_local(uri):
            self.write_text(uri, text)
            return
        folder, _, name = uri.rpartition("/")
        temporary = self._path(f"{folder}/.{name}.repair.tmp")
        self.write_text(str(temporary.toString()), text)
        rename = self._jvm.org.apache.hadoop.fs.Options.Rename
        options = self._gateway.new_array(rename, 1)
        options[0] = rename.OVERWRITE
        context = self._jvm.org.apache.hadoop.fs.FileContext.getFileContext(
            temporary.toUri(), self._conf
        )
        context.rename(temporary, self._path(uri), options)

    def delete(self, uri: str) -> None:
        self.fs.delete(self._path(uri), True)

    def parquet_files(self, folder: str) -> list[str]:
        listing = self.fs.listFiles(self._path(folder), True)
        found = []
        while listing.hasNext():
            path = listing.next().getPath()
            name = str(path.getName())
            if name.endswith(".parquet") and not name.startswith(("_", ".")):
                found.append(str(path.toString()))
        return found


def update_log(
    files: HadoopFiles, plan: Plan, change: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> list[str]:
    """Apply ``change`` to every entry of the file in its table's log (its batch's log file and
    the compactions since); returns the log files rewritten. The log is read again until a
    pass changes nothing: a compaction the running job wrote meanwhile may have carried an
    entry over from before the rewrite."""
    log_dir = f"{plan.file.table}/{METADATA_DIR}"
    rewritten: list[str] = []
    for _ in range(LOG_PASSES):
        changed = []
        for name in sorted(files.names(log_dir), key=lambda n: (log_batch(n) or -1, n)):
            batch = log_batch(name)
            if batch is None or batch < plan.file.batch:
                continue
            text = files.read_text(f"{log_dir}/{name}")
            new = rewrite_log(text, plan.file.uri, change)
            if new is not None and new != text:
                files.replace_text(f"{log_dir}/{name}", new)
                changed.append(name)
        if not changed:
            break
        rewritten += [n for n in changed if n not in rewritten]
        time.sleep(0.2)
    return rewritten


def batch_kafka_options(settings: Settings, plan: Plan) -> dict[str, str]:
    """The job's Kafka options (brokers, security, failOnDataLoss) for a batch read of exactly
    the plan's offsets."""
    from spark_jobs.stream_events import kafka_options

    assert plan.offsets is not None
    options = {
        k: v
        for k, v in kafka_options(settings, plan.file.topic).items()
        if k not in ("subscribe", "startingOffsets", "maxOffsetsPerTrigger")
    }
    options.update(plan.offsets.spark_options())
    return options


def _kafka_rows(spark: Any, settings: Settings, plan: Plan) -> Any:
    from pyspark.sql import types as T

    assert plan.offsets is not None
    if plan.offsets.partitions():
        return spark.read.format("kafka").options(**batch_kafka_options(settings, plan)).load()
    from spark_jobs.transforms import KAFKA_SCHEMA

    schema = T.StructType([*KAFKA_SCHEMA.fields, T.StructField("timestampType", T.IntegerType())])
    return spark.createDataFrame([], schema)


def rebuild(spark: Any, settings: Settings, plan: Plan) -> Any:
    """The rows the file must hold: the batch's valid events of the file's partition folder,
    transformed as the job does, less what other readable committed files hold; sorted and
    in one Spark partition, as the job writes a file. Refuses when Kafka and the lake
    disagree."""
    from pyspark.sql import functions as F

    from spark_jobs.stream_events import PARTITION_COLUMNS, SORT_WITHIN_FILES
    from spark_jobs.transforms import ERROR, Limits, enrich, parse

    lake_file = plan.file
    limits = Limits.from_settings(settings)
    parsed = parse(_kafka_rows(spark, settings, plan), lake_file.topic, limits)
    events = enrich(parsed.where(F.col(ERROR).isNull()), lake_file.topic).persist()
    coordinates = list(COORDINATES)
    known = None
    if plan.neighbours:
        batch_of_file = F.regexp_extract(F.input_file_name(), r"part-(\d+)-\d+\.", 1)
        known = (
            spark.read.option("basePath", lake_file.table)
            .parquet(*plan.neighbours)
            .select(
                *coordinates,
                F.col("event_id").alias("lake_event_id"),
                batch_of_file.cast("long").alias("lake_batch"),
            )
            .persist()
        )
        matched = events.join(known, coordinates)
        different = matched.where(F.col("event_id") != F.col("lake_event_id")).limit(3).collect()
        if different:
            first = different[0]
            raise BeatlyticaError(
                f"Kafka's record at {lake_file.topic} partition {first['kafka_partition']} "
                f"offset {first['kafka_offset']} is event {first['event_id']}, but the lake "
                f"holds event {first['lake_event_id']} there: the topic is not the one the lake "
                "was written from (recreated?); nothing was changed"
            )
        if plan.offsets is not None and plan.offsets.exact:
            in_lake = known.where(F.col("lake_batch") == lake_file.batch).count()
            found = matched.where(F.col("lake_batch") == lake_file.batch).count()
            if found != in_lake:
                raise BeatlyticaError(
                    f"{in_lake - found} rows of batch {lake_file.batch} in the lake are not "
                    f"valid events of its offsets in the checkpoint ({plan.offsets.describe()}): "
                    "the checkpoint does not describe this lake, or the job's event-time "
                    "settings (BEATLYTICA_STREAM_EVENT_TIME_*) changed since; nothing was changed"
                )
    in_folder = events
    for key, value in lake_file.partition:
        in_folder = in_folder.where(F.col(key).cast("string") == F.lit(value))
    if known is not None:  # (a join puts its keys first: the job's column order again)
        in_folder = in_folder.join(known.select(*coordinates), coordinates, "left_anti")
        in_folder = in_folder.select(*events.columns)
    return (
        in_folder.repartition(1)
        .sortWithinPartitions(*PARTITION_COLUMNS, *SORT_WITHIN_FILES)
        .drop(*PARTITION_COLUMNS)
    )


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def execute(spark: Any, settings: Settings, plan: Plan) -> dict[str, Any]:
    """Carry out ``plan``; returns the report (also kept next to the file moved aside)."""
    lake_file = plan.file
    files = HadoopFiles(spark, lake_file.table)
    report: dict[str, Any] = {"file": lake_file.uri, "batch": lake_file.batch}
    # The job only writes Parquet; a repair reads it too. Parquet's vectored reads call a
    # Hadoop method the GCS connector (3.1) was not built against (NoSuchMethodError in
    # VectoredReadUtils on gs://): plain reads instead, which every file system serves.
    spark._jsc.hadoopConfiguration().set(VECTORED_IO, "false")

    staging = f"{lake_file.table}/{REPAIR_DIR}/{lake_file.name.split('.')[0]}"
    if plan.action == "fix-log":
        status = files.status(lake_file.uri)
        changed = update_log(files, plan, lambda entry: {**entry, **status})
        files.delete(staging)  # what the interrupted repair left
        return {**report, "action": "log fixed", "size": status["size"], "log_files": changed}

    aside = corrupt_path(lake_file, _stamp())
    if plan.action == "drop":
        moved = files.exists(lake_file.uri)
        if moved:
            files.move(lake_file.uri, aside)
        changed = update_log(files, plan, lambda entry: None)
        facts = {
            "action": "dropped",
            "moved_to": aside if moved else None,
            "rows_lost": "unknown",
            "rows_lost_at_most": plan.lost_rows_at_most,
            "log_files": changed,
            "at": datetime.now(UTC).isoformat(),
        }
        files.write_text(f"{aside}.json", manifest(plan, **facts))
        return {**report, **facts}

    log.info(f"reading {plan.offsets.describe() if plan.offsets else 'Kafka'}")
    rows = rebuild(spark, settings, plan)
    writer = rows.write.mode("overwrite")
    if lake_file.codec:
        writer = writer.option("compression", lake_file.codec)
    writer.parquet(staging)
    staged = files.parquet_files(staging)
    if len(staged) != 1:
        raise BeatlyticaError(f"expected one rebuilt file under {staging}, found {len(staged)}")
    written = int(spark.read.parquet(staged[0]).count())
    if plan.footer_rows is not None and written != plan.footer_rows and not plan.force:
        files.delete(staging)
        raise BeatlyticaError(
            f"rebuilt {written:,} rows but the damaged file's footer states "
            f"{plan.footer_rows:,}: nothing was changed (--force replaces it anyway)"
        )
    moved = files.exists(lake_file.uri)  # not after an interrupted repair that moved it
    if moved:
        files.move(lake_file.uri, aside)
    files.move(staged[0], lake_file.uri)
    status = files.status(lake_file.uri)
    changed = update_log(files, plan, lambda entry: {**entry, **status})
    files.delete(staging)
    facts = {
        "action": "repaired",
        "moved_to": aside if moved else None,
        "rows": written,
        "size": status["size"],
        "log_files": changed,
        "at": datetime.now(UTC).isoformat(),
    }
    files.write_text(f"{aside}.json", manifest(plan, **facts))
    return {
        **report,
        "offsets": plan.offsets.to_json() if plan.offsets else None,
        "offsets_from": plan.offsets_from,
        **facts,
    }


def run(
    settings: Settings,
    target: str,
    *,
    drop: bool = False,
    force: bool = False,
    master: str | None = None,
) -> dict[str, Any]:
    """Plan (refusing with a one-line error when there is nothing to do or it cannot be done),
    then start Spark and carry the plan out."""
    from spark_jobs.stream_events import build_session, quiet_py4j

    plan = plan_repair(settings, target, drop=drop, force=force)
    for note in plan.notes:
        log.warning(note, extra={"fields": {"file": plan.file.uri}})
    quiet_py4j()
    log.info(f"starting Spark ({master or 'spark-submit'}) to {plan.action} {plan.file.uri}")
    spark = build_session(settings, master)
    try:
        return execute(spark, settings, plan)
    except BeatlyticaError:
        raise
    except Exception as e:  # Spark's and py4j's errors: one line, not a JVM stack
        message = str(getattr(e, "desc", None) or e).strip()
        first = message.splitlines()[0] if message else type(e).__name__
        raise BeatlyticaError(
            f"repairing {plan.file.uri} failed: {first} (a rerun carries on from where this "
            "one stopped)"
        ) from e
    finally:
        spark.stop()
