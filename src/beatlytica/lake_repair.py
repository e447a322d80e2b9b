"""`beatlytica lake repair-file`: what to do about one committed lake file that cannot be read.

A committed file that cannot be read (truncated by a failed copy, a damaged disk, an edited
bucket) stops every reader of its interval: the loader fails naming it, and so does reconcile.
Nothing partial is ever loaded, but the interval stays blocked. The file's rows still exist in
Kafka while retention holds them, and the lake says where: the file's name carries its batch id
(``part-<batch>-<n>``), the query's checkpoint holds the batch's Kafka offsets
(``offsets/<batch>`` its end, the previous batch's entry its start), and the batch's other files
hold the rest of the batch.

This module plans a repair without Spark (pyarrow reads the lake, librdkafka asks Kafka what it
still holds): which file, which batch, which offsets, what the rest of the lake already holds,
and whether Kafka still has the range. :mod:`spark_jobs.repair` carries the plan out with the
streaming job's own transformations. docs/lake.md ("Repairing an unreadable file") is the
operator's side.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from beatlytica.errors import BeatlyticaError
from beatlytica.lake import (
    METADATA_DIR,
    _to_uri,
    checkpoint_uri,
    committed_files,
    filesystem,
    quarantine_uri,
    raw_table_uri,
    read_text,
)
from beatlytica.settings import Settings

log = logging.getLogger(__name__)

#: where a repaired or dropped file is moved, under its table: never deleted
CORRUPT_DIR = "_corrupt"
#: where the replacement is written before it is moved into place, under its table
REPAIR_DIR = "_repair"
#: the columns a repair reads from the files around the damaged one
COORDINATES = ("kafka_partition", "kafka_offset")

_NAME = re.compile(r"^part-(?P<batch>\d+)-(?P<index>\d+)\.(?P<suffix>.+)$")
_LOG_NAME = re.compile(r"^(\d+)(\.compact)?$")
#: compression codecs Parquet writers put in file names (part-….<codec>.parquet)
CODECS = ("zstd", "snappy", "gzip", "lz4", "lz4_raw", "brotli", "uncompressed")


# --- the file -------------------------------------------------------------------------------


def file_uri(target: str) -> str:
    """A file URI as the commit log's readers spell it: ``file:///a/b`` for a local path or a
    ``file:`` URI, other URIs (``gs://…``) as they are."""
    if "://" in target or target.startswith("file:"):
        return _to_uri(target)
    return "file://" + str(Path(target).expanduser().absolute())


def batch_of(uri: str) -> int | None:
    """The batch id in a lake file's name (``part-<batch>-<n>.…``), or None."""
    match = _NAME.match(uri.rstrip("/").rpartition("/")[2])
    return int(match.group("batch")) if match else None


@dataclass(frozen=True)
class LakeFile:
    """A file of a lake table: ``<lake>/<kind>/<topic>/<partition folders>/part-<batch>-<n>…``."""

    uri: str
    lake: str
    kind: str
    topic: str
    #: the hive-style partition folders, in order: (("event_date", "2026-11-01"), …)
    partition: tuple[tuple[str, str], ...]
    name: str
    batch: int

    @classmethod
    def parse(cls, target: str) -> LakeFile:
        uri = file_uri(target)
        parts = uri.split("/")
        name = parts[-1]
        match = _NAME.match(name)
        if not match or not name.endswith(".parquet"):
            raise BeatlyticaError(
                f"{uri} is not a lake file: committed files are named part-<batch>-<n>…parquet"
            )
        folders: list[tuple[str, str]] = []
        index = len(parts) - 2
        while index > 0 and "=" in parts[index]:
            key, _, value = parts[index].partition("=")
            folders.insert(0, (key, value))
            index -= 1
        table = parts[: index + 1]
        if not folders or len(table) < 3 or table[-2] not in ("raw", "quarantine"):
            raise BeatlyticaError(
                f"{uri} is not in a lake table: expected <lake>/raw/<topic>/event_date=…/"
                "event_hour=…/part-… (or quarantine/<topic>/quarantine_date=…/part-…)"
            )
        return cls(
            uri=uri,
            lake="/".join(table[:-2]),
            kind=table[-2],
            topic=table[-1],
            partition=tuple(folders),
            name=name,
            batch=int(match.group("batch")),
        )

    @property
    def table(self) -> str:
        if self.kind == "raw":
            return raw_table_uri(self.lake, self.topic)
        return quarantine_uri(self.lake, self.topic)

    @property
    def relative(self) -> str:
        """The path inside the table: ``event_date=…/event_hour=…/part-….parquet``."""
        return "/".join([*(f"{k}={v}" for k, v in self.partition), self.name])

    @property
    def folder(self) -> str:
        return self.uri.rpartition("/")[0]

    @property
    def codec(self) -> str | None:
        """The compression codec the name states (``….zstd.parquet``), if it states one."""
        parts = self.name.split(".")
        return parts[-2] if len(parts) >= 3 and parts[-2] in CODECS else None


# --- the query's checkpoint: the batch's Kafka offsets ----------------------------------------


Offsets = dict[int, int]


def _json_lines(text: str, name: str) -> list[str]:
    lines = text.lstrip("\x00").splitlines()
    if not lines or not lines[0].startswith("v"):
        raise BeatlyticaError(f"{name} is not a Spark checkpoint file (no version header)")
    return lines[1:]


def _topic_offsets(value: Any, topic: str, name: str) -> Offsets:
    if not isinstance(value, dict) or topic not in value:
        raise BeatlyticaError(f"{name} holds no Kafka offsets of {topic}")
    return {int(p): int(o) for p, o in value[topic].items()}


def batch_end_offsets(text: str, topic: str, name: str = "offsets file") -> Offsets:
    """The end offsets of a micro-batch from the checkpoint's ``offsets/<batch>``: a version
    line, the batch's metadata, then one line per source (the job's query has one, Kafka)."""
    lines = _json_lines(text, name)
    if len(lines) < 2:
        raise BeatlyticaError(f"{name} holds no source offsets")
    return _topic_offsets(json.loads(lines[1]), topic, name)


def initial_offsets(text: str, topic: str, name: str = "sources/0/0") -> Offsets:
    """Where the query started (``sources/0/0``: the Kafka source's resolved starting offsets,
    after a NUL byte and a version line): batch 0 starts there."""
    lines = _json_lines(text, name)
    return _topic_offsets(json.loads(lines[0]), topic, name)


@dataclass(frozen=True)
class OffsetRange:
    """Kafka offsets ``[start, end)`` per partition of one topic."""

    topic: str
    start: Offsets
    end: Offsets
    #: True when the checkpoint gave the batch's own range; False when derived from the lake
    #: (then it may be wider than the batch, never narrower)
    exact: bool = True

    def partitions(self) -> list[int]:
        """The partitions the range reads anything of."""
        return sorted(p for p in self.end if self.end[p] > self.start.get(p, 0))

    @property
    def size(self) -> int:
        return sum(self.end[p] - self.start.get(p, 0) for p in self.partitions())

    def spark_options(self) -> dict[str, str]:
        """``assign``, ``startingOffsets`` and ``endingOffsets`` of Spark's Kafka batch source."""
        partitions = self.partitions()
        return {
            "assign": json.dumps({self.topic: partitions}),
            "startingOffsets": json.dumps(
                {self.topic: {str(p): self.start.get(p, 0) for p in partitions}}
            ),
            "endingOffsets": json.dumps({self.topic: {str(p): self.end[p] for p in partitions}}),
        }

    def describe(self) -> str:
        spans = [f"{p}: [{self.start.get(p, 0)}, {self.end[p]})" for p in self.partitions()]
        return f"{self.topic} partitions " + ", ".join(spans) if spans else "no offsets"

    def to_json(self) -> dict[str, Any]:
        return {
            str(p): {"start": self.start.get(p, 0), "end": self.end[p]} for p in self.partitions()
        }


def lost_offsets(
    offsets: OffsetRange, watermarks: dict[int, tuple[int, int]]
) -> dict[int, tuple[int, int]]:
    """The part of ``offsets`` Kafka no longer holds, per partition, from its watermarks
    ``(low, high)``: records before the low one were deleted (retention); a high one below the
    range's end means the partition was emptied or recreated (its offsets started over)."""
    lost = {}
    for p in offsets.partitions():
        start, end = offsets.start.get(p, 0), offsets.end[p]
        low, high = watermarks.get(p, (0, 0))
        if high < end:
            lost[p] = (start, end)
        elif low > start:
            lost[p] = (start, min(low, end))
    return lost


def describe_lost(topic: str, lost: dict[int, tuple[int, int]]) -> str:
    return ", ".join(
        f"{topic} partition {p} offsets [{a}, {b})" for p, (a, b) in sorted(lost.items())
    )


# --- the commit log ---------------------------------------------------------------------------


def log_batch(name: str) -> int | None:
    """The batch id of a commit-log file name (``12``, ``19.compact``); None for other files."""
    match = _LOG_NAME.match(name)
    return int(match.group(1)) if match else None


def rewrite_log(
    text: str, uri: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> str | None:
    """The log file ``text`` with the entry of ``uri`` changed (``change`` returns the new entry,
    or None to remove it), every other line as it was; None when the file does not name it."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("v"):
        raise BeatlyticaError("not a Spark file sink log (no version header)")
    out, found = [lines[0]], False
    for line in lines[1:]:
        if line.strip():
            entry = json.loads(line)
            if _to_uri(str(entry.get("path", ""))) == uri:
                found = True
                changed = change(entry)
                if changed is not None:
                    out.append(json.dumps(changed, separators=(",", ":"), ensure_ascii=False))
                continue
        out.append(line)
    return "\n".join(out) + "\n" if found else None


def log_entries_of(text: str, uri: str) -> list[dict[str, Any]]:
    """The entries of ``uri`` in one log file."""
    entries = []
    for line in text.splitlines()[1:]:
        if line.strip():
            entry = json.loads(line)
            if _to_uri(str(entry.get("path", ""))) == uri:
                entries.append(entry)
    return entries


# --- what the lake and Kafka hold ------------------------------------------------------------


def _list_names(uri: str, gcs_endpoint: str | None) -> list[str]:
    from pyarrow import fs

    filesystem_, path = filesystem(uri, gcs_endpoint)
    if filesystem_.get_file_info(path).type != fs.FileType.Directory:
        return []
    return [info.base_name for info in filesystem_.get_file_info(fs.FileSelector(path))]


def read_error(uri: str, gcs_endpoint: str | None, columns: list[str] | None = None) -> str | None:
    """Why a Parquet file cannot be read (every row of ``columns``, all by default), or None
    when it can."""
    import pyarrow.parquet as pq

    filesystem_, path = filesystem(uri, gcs_endpoint)
    try:
        pq.read_table(
            path, columns=columns, filesystem=filesystem_, page_checksum_verification=True
        )
    except FileNotFoundError:
        return "the file is missing"
    except Exception as e:  # pyarrow raises several types for damaged files
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return None


def footer_rows(uri: str, gcs_endpoint: str | None) -> int | None:
    """The row count a Parquet file's footer states, or None when the footer is unreadable."""
    import pyarrow.parquet as pq

    filesystem_, path = filesystem(uri, gcs_endpoint)
    try:
        with filesystem_.open_input_file(path) as handle:
            return int(pq.read_metadata(handle).num_rows)
    except Exception:
        return None


def file_size(uri: str, gcs_endpoint: str | None) -> int | None:
    from pyarrow import fs

    filesystem_, path = filesystem(uri, gcs_endpoint)
    info = filesystem_.get_file_info(path)
    return None if info.type == fs.FileType.NotFound else int(info.size)


def _offset_extremes(files: Iterable[str], gcs_endpoint: str | None, largest: bool) -> Offsets:
    """The largest (or smallest) Kafka offset per partition in the readable ``files``."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    found: Offsets = {}
    pick = max if largest else min
    for uri in files:
        filesystem_, path = filesystem(uri, gcs_endpoint)
        try:
            table = pq.read_table(path, columns=list(COORDINATES), filesystem=filesystem_)
        except Exception:
            continue  # a damaged neighbour only widens the range; what it held is subtracted
        if not table.num_rows:
            continue
        how = "max" if largest else "min"
        grouped = table.group_by("kafka_partition").aggregate([("kafka_offset", how)])
        values = grouped.column(f"kafka_offset_{how}")
        for p, value in zip(
            grouped.column("kafka_partition").to_pylist(),
            pc.cast(values, "int64").to_pylist(),
            strict=True,
        ):
            found[int(p)] = pick(found.get(int(p), value), value)
    return found


def _nearest_extremes(
    files_by_batch: dict[int, list[str]],
    batches: list[int],
    partitions: set[int],
    gcs_endpoint: str | None,
    largest: bool,
) -> Offsets:
    """Per partition, the extreme offset of the nearest batches (``batches`` nearest first)
    that hold it: read in growing groups until every partition is found or none are left."""
    found: Offsets = {}
    position, group = 0, 8
    while position < len(batches) and not partitions <= found.keys():
        chosen = batches[position : position + group]
        position, group = position + group, group * 2
        files = [f for b in chosen for f in files_by_batch.get(b, [])]
        for p, value in _offset_extremes(files, gcs_endpoint, largest).items():
            found.setdefault(p, value)
    return found


@dataclass
class Checkpoint:
    """The query checkpoint of a topic (``<lake>/_checkpoints/<topic>/lake``), read-only."""

    uri: str
    topic: str
    gcs_endpoint: str | None = None

    def _text(self, relative: str) -> str | None:
        return read_text(f"{self.uri}/{relative}", self.gcs_endpoint)

    def end_offsets(self, batch: int) -> Offsets | None:
        text = self._text(f"offsets/{batch}")
        if text is None:
            return None
        return batch_end_offsets(text, self.topic, f"{self.uri}/offsets/{batch}")

    def initial(self) -> Offsets | None:
        text = self._text("sources/0/0")
        return None if text is None else initial_offsets(text, self.topic, "sources/0/0")

    def batches(self, kind: str = "offsets") -> list[int]:
        """Batch ids whose ``offsets`` (or ``commits``) the checkpoint still holds (Spark keeps
        the last ``spark.sql.streaming.minBatchesToRetain``, 100 by default)."""
        return sorted(
            int(n) for n in _list_names(f"{self.uri}/{kind}", self.gcs_endpoint) if n.isdigit()
        )


def batch_range(
    checkpoint: Checkpoint,
    batch: int,
    lake_files: list[str],
    gcs_endpoint: str | None = None,
) -> tuple[OffsetRange, str]:
    """The Kafka offsets of ``batch`` and where they came from.

    From the checkpoint when it still holds them (exact). Spark keeps only the last 100
    batches' offsets, so for an older batch they are derived from ``lake_files`` (the committed
    raw and quarantine files of the topic, whose rows carry their Kafka coordinates; every
    record a batch reads lands in one of them): a partition's range starts after the largest
    offset of the nearest earlier batch that holds the partition and ends at the smallest of the
    nearest later one (or at a later committed batch's end in the checkpoint). Such a range
    is never narrower than the batch's; what it holds of other batches is in their files and
    is subtracted like the batch's own other files."""
    topic = checkpoint.topic
    end = checkpoint.end_offsets(batch)
    start = checkpoint.initial() if batch == 0 else checkpoint.end_offsets(batch - 1)
    if end is not None and start is not None:
        # partitions added to the topic while the query ran are read from their beginning
        return OffsetRange(topic, {p: start.get(p, 0) for p in end}, end), "checkpoint"

    retained = checkpoint.batches()
    committed = set(checkpoint.batches("commits"))
    initial = checkpoint.initial() or {}
    partitions = set(initial)
    for n in retained:
        partitions |= set(checkpoint.end_offsets(n) or {})
    if not partitions:
        raise BeatlyticaError(
            f"the checkpoint {checkpoint.uri} holds no offsets of {topic}: cannot tell which "
            f"Kafka records batch {batch} read"
        )
    files_by_batch: dict[int, list[str]] = {}
    for uri in lake_files:
        b = batch_of(uri)
        if b is not None and b != batch:
            files_by_batch.setdefault(b, []).append(uri)
    if start is None:
        earlier = sorted((b for b in files_by_batch if b < batch), reverse=True)
        largest = _nearest_extremes(files_by_batch, earlier, partitions, gcs_endpoint, True)
        start = {p: largest[p] + 1 if p in largest else initial.get(p, 0) for p in partitions}
    if end is None:
        later = sorted(b for b in files_by_batch if b > batch)
        smallest = _nearest_extremes(files_by_batch, later, partitions, gcs_endpoint, False)
        bound = next((n for n in retained if n > batch and n in committed), None)
        bound_offsets = checkpoint.end_offsets(bound) if bound is not None else None
        end = {}
        for p in partitions:
            candidates = [
                v for v in (smallest.get(p), (bound_offsets or {}).get(p)) if v is not None
            ]
            if not candidates:
                raise BeatlyticaError(
                    f"cannot tell where batch {batch} of {topic} ended in partition {p}: the "
                    f"checkpoint {checkpoint.uri} no longer holds its offsets and no later "
                    "committed batch bounds them"
                )
            end[p] = min(candidates)
    start = {p: min(start.get(p, 0), end[p]) for p in end}
    return OffsetRange(topic, start, end, exact=False), "lake"


def kafka_watermarks(
    settings: Settings, topic: str, partitions: list[int]
) -> dict[int, tuple[int, int]]:
    """``(low, high)`` watermark offsets of the partitions: what Kafka holds now."""
    try:
        from confluent_kafka import Consumer, KafkaException, TopicPartition
    except ImportError:
        raise BeatlyticaError(
            "the repair asks Kafka what it still holds through confluent-kafka: install the "
            "producer extra (`make setup` does)"
        ) from None

    config = {
        **settings.kafka_client_config(),
        "group.id": "beatlytica-lake-repair",
        "enable.auto.commit": False,
        "log_level": 0,
    }
    consumer = Consumer(config)
    try:
        watermarks: dict[int, tuple[int, int]] = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=settings.kafka_connect_timeout_s
            )
            watermarks[p] = (low, high)
        return watermarks
    except KafkaException as e:
        raise BeatlyticaError(
            f"cannot ask Kafka at {settings.kafka_bootstrap_servers} which offsets of {topic} it "
            f"still holds: {e}"
        ) from None
    finally:
        consumer.close()


# --- the plan --------------------------------------------------------------------------------


@dataclass
class Plan:
    """What a repair will do to one committed file; carried out by :mod:`spark_jobs.repair`."""

    file: LakeFile
    #: repair (rebuild from Kafka), drop (move aside, out of the log), fix-log (sizes only)
    action: str
    #: why the file cannot be read (None: it can)
    damage: str | None
    #: the row count the damaged file's footer states, when it is readable
    footer_rows: int | None = None
    offsets: OffsetRange | None = None
    #: checkpoint or lake (see :func:`batch_range`)
    offsets_from: str | None = None
    #: readable committed raw files whose rows a repair subtracts and checks Kafka against:
    #: those of the file's partition folder and those of its batch
    neighbours: list[str] = field(default_factory=list)
    #: committed files of the batch or of the partition folder that cannot be read either
    damaged_neighbours: list[str] = field(default_factory=list)
    #: Kafka offsets of the range Kafka no longer holds (only with --drop)
    lost: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: at most this many rows are lost by a drop (None: unknown)
    lost_rows_at_most: int | None = None
    #: --force: rebuild a readable file, accept a row count other than its footer's, drop
    #: what Kafka still holds
    force: bool = False
    notes: list[str] = field(default_factory=list)


def _batch_rows(files: list[str], gcs_endpoint: str | None) -> int | None:
    total = 0
    for uri in files:
        rows = footer_rows(uri, gcs_endpoint)
        if rows is None:
            return None
        total += rows
    return total


def plan_repair(
    settings: Settings, target: str, *, drop: bool = False, force: bool = False
) -> Plan:
    """Decide what repairing ``target`` takes, or refuse with a one-line error. Reads the
    lake, the checkpoint and Kafka's watermarks; changes nothing."""
    gcs = settings.gcs_endpoint
    lake_file = LakeFile.parse(target)
    committed = committed_files(lake_file.table, gcs)
    if lake_file.uri not in committed:
        log_dir = f"{lake_file.table}/{METADATA_DIR}"
        raise BeatlyticaError(
            f"{lake_file.uri} is not committed: no entry of {log_dir} names it, so no reader "
            "reads it (a killed batch's leftover, which the batch's replay replaces); nothing "
            "to repair"
        )
    damage = read_error(lake_file.uri, gcs)
    plan = Plan(file=lake_file, action="drop" if drop else "repair", damage=damage, force=force)
    if damage is None:
        plan.footer_rows = footer_rows(lake_file.uri, gcs)
        size = file_size(lake_file.uri, gcs)
        stale = [e for e in logged_entries(lake_file, gcs) if e.get("size") != size]
        if not force and not drop and stale:
            plan.action = "fix-log"
            plan.notes.append(
                f"the file reads fine; its log entries state a size other than "
                f"its {size} bytes (an interrupted repair): fixing them"
            )
            return plan
        if not force:
            raise BeatlyticaError(
                f"{lake_file.uri} reads fine: nothing to repair (--force rebuilds it from "
                "Kafka anyway; --drop --force drops it)"
            )
    else:
        plan.footer_rows = footer_rows(lake_file.uri, gcs)
    if lake_file.kind != "raw" and not drop:
        raise BeatlyticaError(
            f"{lake_file.uri} is a quarantine file: only raw files are rebuilt from Kafka (a "
            "rebuilt quarantine file would carry a new quarantined_at); --drop moves it aside"
        )

    raw_files = (
        committed
        if lake_file.kind == "raw"
        else committed_files(raw_table_uri(lake_file.lake, lake_file.topic), gcs)
    )
    quarantine_files = (
        committed
        if lake_file.kind != "raw"
        else committed_files(quarantine_uri(lake_file.lake, lake_file.topic), gcs)
    )
    if lake_file.kind == "raw":
        candidates = [
            f
            for f in raw_files
            if f != lake_file.uri
            and (f.rpartition("/")[0] == lake_file.folder or batch_of(f) == lake_file.batch)
        ]
        for uri in candidates:
            error = read_error(uri, gcs, ["event_id", *COORDINATES])
            (plan.damaged_neighbours if error else plan.neighbours).append(uri)
        if plan.damaged_neighbours:
            plan.notes.append(
                f"{len(plan.damaged_neighbours)} other committed files of the batch or the "
                "partition cannot be read either; rows of theirs that belong here are "
                "rebuilt here, and repairing them afterwards rebuilds only what is left"
            )

    checkpoint = Checkpoint(checkpoint_uri(lake_file.lake, lake_file.topic), lake_file.topic, gcs)
    try:
        plan.offsets, plan.offsets_from = batch_range(
            checkpoint, lake_file.batch, raw_files + quarantine_files, gcs
        )
    except BeatlyticaError as e:
        if not drop:
            raise
        plan.notes.append(f"the batch's offsets are unknown: {e}")
        return plan
    if plan.offsets_from == "lake":
        plan.notes.append(
            f"the checkpoint no longer holds batch {lake_file.batch}'s offsets (Spark keeps the "
            f"last 100 batches): derived from the lake's neighbouring batches, "
            f"{plan.offsets.describe()}"
        )
    if plan.offsets.exact:
        batch_files = [
            f
            for f in raw_files + quarantine_files
            if batch_of(f) == lake_file.batch and f != lake_file.uri
        ]
        held = _batch_rows(batch_files, gcs)
        if held is not None:
            plan.lost_rows_at_most = max(plan.offsets.size - held, 0)

    partitions = plan.offsets.partitions()
    try:
        watermarks = kafka_watermarks(settings, lake_file.topic, partitions) if partitions else {}
    except BeatlyticaError:
        if not drop:
            raise
        plan.notes.append("Kafka could not be asked whether it still holds the offsets")
        return plan
    plan.lost = lost_offsets(plan.offsets, watermarks)
    at_most = (
        f"at most {plan.lost_rows_at_most:,}"
        if plan.lost_rows_at_most is not None
        else "an unknown number"
    )
    if not drop and plan.lost:
        raise BeatlyticaError(
            f"Kafka no longer holds the records of batch {lake_file.batch} that "
            f"{lake_file.uri} was written from: {describe_lost(lake_file.topic, plan.lost)} "
            f"(retention, or the topic was recreated); its rows cannot be rebuilt. "
            f"--drop moves the file aside and out of the commit log ({at_most} of its rows "
            "are lost, exactly how many is unknown)"
        )
    if drop and not plan.lost and partitions and not force:
        raise BeatlyticaError(
            f"Kafka still holds every record of batch {lake_file.batch} "
            f"({plan.offsets.describe()}): run without --drop to rebuild {lake_file.name} "
            "from them (--drop --force drops it anyway)"
        )
    return plan


def logged_entries(lake_file: LakeFile, gcs_endpoint: str | None) -> list[dict[str, Any]]:
    """Every entry naming the file in its table's commit log (its batch's file and the
    compactions after it)."""
    log_dir = f"{lake_file.table}/{METADATA_DIR}"
    entries = []
    for name in _list_names(log_dir, gcs_endpoint):
        batch = log_batch(name)
        if batch is None or batch < lake_file.batch:
            continue
        text = read_text(f"{log_dir}/{name}", gcs_endpoint)
        if text:
            entries += log_entries_of(text, lake_file.uri)
    return entries


def manifest(plan: Plan, **facts: Any) -> str:
    """The record kept next to a file moved aside: what was done, why, and what is known."""
    record = {
        "file": plan.file.uri,
        "table": plan.file.table,
        "batch": plan.file.batch,
        "action": plan.action,
        "damage": plan.damage,
        "footer_rows": plan.footer_rows,
        "offsets": plan.offsets.to_json() if plan.offsets else None,
        "offsets_from": plan.offsets_from,
        "kafka_offsets_lost": {str(p): list(r) for p, r in plan.lost.items()} or None,
        "notes": plan.notes,
        **facts,
    }
    return json.dumps(record, indent=2) + "\n"


def corrupt_path(lake_file: LakeFile, stamp: str) -> str:
    """Where a file is moved aside: ``<table>/_corrupt/<stamp>/<partition folders>/<name>``."""
    return f"{lake_file.table}/{CORRUPT_DIR}/{stamp}/{lake_file.relative}"


def is_local(uri: str) -> bool:
    return urlparse(uri).scheme in ("file", "")
