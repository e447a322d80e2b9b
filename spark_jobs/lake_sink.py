"""Batch-keyed, idempotent commits of a micro-batch into a lake table.

One streaming query per topic reads Kafka once; for each micro-batch it writes the valid rows to
``raw/<topic>`` and the rejected ones to ``quarantine/<topic>`` through :class:`LakeTable`. A
table keeps the commit log Spark's file sink keeps, in its format (``_spark_metadata/<batch>``,
compacted every :data:`COMPACT_INTERVAL` batches into ``<batch>.compact``), so every reader of
the lake (``beatlytica.lake.committed_files``, Spark reading the folder) reads it unchanged, and
the guarantee is the file sink's:

1. the batch's files are written under ``<table>/_staging/<batch>/`` (replaced on a replay),
2. then moved to names made of the batch id (``part-<batch>-<n>.<codec>.parquet``) in the
   partition folders, replacing what a killed attempt of the same batch left there,
3. then the log entry is written (a temporary file renamed into place).

A file is part of the table only once step 3 names it. Spark replays a batch whose offsets it
logged but did not commit, with the same offsets; a table whose log has that batch skips it, so a
replay neither loses nor repeats a row. The JVM's Hadoop file systems do the I/O, so ``file://``
and ``gs://`` (the GCS connector) behave alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from beatlytica.lake import METADATA_DIR

#: Spark's default ``spark.sql.streaming.fileSink.log.compactInterval``: Spark's reader of the
#: log expects ``<batch>.compact`` where ``(batch + 1) % COMPACT_INTERVAL == 0``
COMPACT_INTERVAL = 10
LOG_VERSION = "v1"
STAGING_DIR = "_staging"


def is_compaction_batch(batch_id: int) -> bool:
    return (batch_id + 1) % COMPACT_INTERVAL == 0


def log_name(batch_id: int) -> str:
    return f"{batch_id}.compact" if is_compaction_batch(batch_id) else str(batch_id)


def final_name(batch_id: int, index: int, staged_name: str) -> str:
    """The committed name of the ``index``-th staged file of a batch: the same on a replay."""
    suffix = staged_name.split(".", 1)[1] if "." in staged_name else "parquet"
    suffix = suffix.removeprefix("c000.")  # Spark's part-…-<uuid>.c000.zstd.parquet
    return f"part-{batch_id:08d}-{index:05d}.{suffix}"


@dataclass(frozen=True)
class SinkFile:
    """One entry of the log, as Spark's ``SinkFileStatus`` serialises it."""

    path: str
    size: int
    modification_time: int
    block_replication: int
    block_size: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "path": self.path,
                "size": self.size,
                "isDir": False,
                "modificationTime": self.modification_time,
                "blockReplication": self.block_replication,
                "blockSize": self.block_size,
                "action": "add",
            },
            separators=(",", ":"),
        )


def log_text(entries: Sequence[str]) -> str:
    return "\n".join([LOG_VERSION, *entries]) + "\n"


def log_entries(text: str) -> list[str]:
    lines = text.splitlines()
    if not lines or lines[0] != LOG_VERSION:
        raise ValueError(f"not a {LOG_VERSION} file sink log")
    return [line for line in lines[1:] if line.strip()]


def exists(spark: Any, uri: str) -> bool:
    path = spark._jvm.org.apache.hadoop.fs.Path(uri)
    return bool(path.getFileSystem(spark._jsc.hadoopConfiguration()).exists(path))


def write_text(spark: Any, uri: str, text: str) -> None:
    """Replace the small file ``uri`` whole (written beside it, then renamed over it)."""
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    filesystem = path.getFileSystem(spark._jsc.hadoopConfiguration())
    temporary = jvm.org.apache.hadoop.fs.Path(path.getParent(), f".{path.getName()}.tmp")
    out = filesystem.create(temporary, True)
    try:
        out.write(bytearray(text.encode()))
    finally:
        out.close()
    filesystem.delete(path, False)
    if not filesystem.rename(temporary, path):
        raise OSError(f"cannot write {uri}")


class LakeTable:
    """One table of the lake (``raw/<topic>`` or ``quarantine/<topic>``) and its commit log."""

    def __init__(self, spark: Any, uri: str) -> None:
        self.uri = uri.rstrip("/")
        jvm = spark._jvm
        self._path = jvm.org.apache.hadoop.fs.Path
        self._io = jvm.org.apache.commons.io.IOUtils
        self._fs = self._path(self.uri).getFileSystem(spark._jsc.hadoopConfiguration())
        self._log = f"{self.uri}/{METADATA_DIR}"
        self._fs.mkdirs(self._path(self._log))

    def committed(self, batch_id: int) -> bool:
        return bool(self._fs.exists(self._path(f"{self._log}/{log_name(batch_id)}")))

    def write(self, frame: Any, batch_id: int, partition_by: Sequence[str]) -> list[SinkFile]:
        """Write a batch's rows and commit them; a batch already committed is skipped (returns
        no files). Returns the committed files."""
        if self.committed(batch_id):
            return []
        staging = f"{self.uri}/{STAGING_DIR}/{batch_id}"
        writer = frame.write.mode("overwrite")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.parquet(staging)
        files = self._move_into_place(staging, batch_id)
        self._commit(batch_id, files)
        self._fs.delete(self._path(staging), True)
        return files

    def commit_empty(self, batch_id: int) -> None:
        """A batch that wrote nothing here still gets its log entry, as Spark's sink does: the
        log's readers expect every batch id (and every compaction) to be there."""
        if not self.committed(batch_id):
            self._commit(batch_id, [])

    def _move_into_place(self, staging: str, batch_id: int) -> list[SinkFile]:
        staged: list[tuple[str, str]] = []  # (partition folder relative to staging, name)
        listing = self._fs.listFiles(self._path(staging), True)
        prefix = str(self._fs.makeQualified(self._path(staging)).toString()).rstrip("/") + "/"
        while listing.hasNext():
            path = str(listing.next().getPath().toString())
            relative = path.removeprefix(prefix)
            folder, _, name = relative.rpartition("/")
            if name.endswith(".parquet") and not any(
                p.startswith(("_", ".")) for p in relative.split("/")
            ):
                staged.append((folder, name))
        files = []
        for index, (folder, name) in enumerate(sorted(staged)):
            target = "/".join(p for p in (self.uri, folder, final_name(batch_id, index, name)) if p)
            target_path = self._path(target)
            self._fs.mkdirs(target_path.getParent())
            self._fs.delete(target_path, False)  # what a killed attempt of this batch left
            source = self._path(f"{staging}/{folder}/{name}" if folder else f"{staging}/{name}")
            if not self._fs.rename(source, target_path):
                raise OSError(f"cannot move {source} to {target}")
            status = self._fs.getFileStatus(target_path)
            files.append(
                SinkFile(
                    path=str(status.getPath().toString()),
                    size=int(status.getLen()),
                    modification_time=int(status.getModificationTime()),
                    block_replication=int(status.getReplication()),
                    block_size=int(status.getBlockSize()),
                )
            )
        return files

    def _read(self, name: str) -> str:
        stream = self._fs.open(self._path(f"{self._log}/{name}"))
        try:
            return str(self._io.toString(stream, "UTF-8"))
        finally:
            stream.close()

    def _commit(self, batch_id: int, files: list[SinkFile]) -> None:
        entries = [f.to_json() for f in files]
        if is_compaction_batch(batch_id):
            # the previous compaction and the batches since, then this batch: every live file
            previous = batch_id - COMPACT_INTERVAL
            carried: list[str] = []
            if previous >= 0:
                carried += log_entries(self._read(log_name(previous)))
            for batch in range(max(previous + 1, 0), batch_id):
                if self.committed(batch):
                    carried += log_entries(self._read(log_name(batch)))
            entries = carried + entries
        self._write_atomically(log_name(batch_id), log_text(entries))
        if is_compaction_batch(batch_id):
            self._expire(batch_id - COMPACT_INTERVAL)

    def _write_atomically(self, name: str, text: str) -> None:
        temporary = self._path(f"{self._log}/.{name}.tmp")
        out = self._fs.create(temporary, True)
        try:
            out.write(bytearray(text.encode()))
        finally:
            out.close()
        final = self._path(f"{self._log}/{name}")
        if not self._fs.rename(temporary, final):
            raise OSError(f"cannot commit {self._log}/{name}")

    def _expire(self, before: int) -> None:
        """Log files older than the previous compaction: no reader needs them any more (a reader
        that listed the log before this compaction reads the previous one and what follows)."""
        for batch in range(max(before - COMPACT_INTERVAL, 0), max(before, 0)):
            self._fs.delete(self._path(f"{self._log}/{log_name(batch)}"), False)
