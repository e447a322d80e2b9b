"""Reading the Parquet lake the way its writer meant: committed files only.

The streaming job writes each table the way Spark's file sink does (``spark_jobs.lake_sink``):
it records every file of a micro-batch in the table's commit log
(``<table>/_spark_metadata/<batch>``, compacted every few batches into ``<batch>.compact``)
only once the batch has committed. A file that a killed batch
left behind is in the folder but not in the log, so readers list files through the log, never
by listing the folder. This module has no Spark dependency: the loader and the Airflow sensor use
it through pyarrow's file systems (local folders and ``gs://``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from beatlytica.errors import BeatlyticaError

if TYPE_CHECKING:  # pragma: no cover - pyarrow is the loader's, not the Spark image's
    import pyarrow as pa
    from pyarrow import fs

METADATA_DIR = "_spark_metadata"
_LOG_FILE = re.compile(r"^(\d+)(\.compact)?$")
_PARTITION = re.compile(r"/event_date=(\d{4}-\d{2}-\d{2})/event_hour=(\d{1,2})/")


def raw_table_uri(lake: str, topic: str) -> str:
    return f"{lake.rstrip('/')}/raw/{topic}"


def quarantine_uri(lake: str, topic: str) -> str:
    return f"{lake.rstrip('/')}/quarantine/{topic}"


#: the folder of a topic's query checkpoint (Kafka offsets, commits) under _checkpoints/<topic>/
CHECKPOINT = "lake"


def checkpoint_uri(lake: str, topic: str) -> str:
    return f"{lake.rstrip('/')}/_checkpoints/{topic}/{CHECKPOINT}"


def progress_uri(lake: str, topic: str) -> str:
    """The stream's note of when it last had read everything Kafka held of ``topic``."""
    return f"{lake.rstrip('/')}/_progress/{topic}.json"


def load_manifest_uri(lake: str, topic: str, start: datetime, end: datetime) -> str:
    """What the loader loaded of ``topic`` for ``[start, end)``: the committed files."""
    stamp = "%Y-%m-%dT%H%M"
    return f"{lake.rstrip('/')}/_loads/{topic}/{start:{stamp}}_{end:{stamp}}.json"


def filesystem(uri: str, gcs_endpoint: str | None = None) -> tuple[fs.FileSystem, str]:
    """The pyarrow file system of a ``file://`` or ``gs://`` URI and the path inside it;
    ``gcs_endpoint`` points ``gs://`` at an emulator (anonymous, as emulators expect)."""
    from pyarrow import fs

    try:
        if gcs_endpoint and uri.startswith("gs://"):
            endpoint = urlparse(gcs_endpoint)
            gcs = fs.GcsFileSystem(
                anonymous=True, endpoint_override=endpoint.netloc, scheme=endpoint.scheme
            )
            return gcs, uri.removeprefix("gs://")
        found: tuple[fs.FileSystem, str] = fs.FileSystem.from_uri(uri)
        return found
    except Exception as e:  # pyarrow raises several types for bad or unsupported URIs
        raise BeatlyticaError(f"cannot open the lake at {uri!r}: {e}") from e


def _to_uri(path: str) -> str:
    """Spark logs ``file:/a/b`` (one slash); normalise to ``file:///a/b``."""
    parsed = urlparse(path)
    if parsed.scheme == "file":
        return "file://" + parsed.path
    return path


def _parse_log(text: str, name: str) -> list[dict[str, object]]:
    lines = text.splitlines()
    if not lines or not lines[0].startswith("v"):
        raise BeatlyticaError(f"{name} is not a Spark file sink log (no version header)")
    return [json.loads(line) for line in lines[1:] if line.strip()]


def committed_files(table_uri: str, gcs_endpoint: str | None = None) -> list[str]:
    """URIs of the Parquet files committed to a file-sink table, in commit order.

    An empty list when the table has no commit log yet (nothing committed).
    """
    from pyarrow import fs

    filesystem_, root = filesystem(table_uri, gcs_endpoint)
    log_dir = f"{root}/{METADATA_DIR}"
    info = filesystem_.get_file_info(log_dir)
    if info.type == fs.FileType.NotFound:
        return []
    batches: dict[int, str] = {}
    latest_compact = -1
    for entry in filesystem_.get_file_info(fs.FileSelector(log_dir)):
        match = _LOG_FILE.match(entry.base_name)
        if not match:
            continue  # temporary files of a log write in progress
        batch = int(match.group(1))
        batches[batch] = entry.path
        if match.group(2):
            latest_compact = max(latest_compact, batch)
    files: dict[str, None] = {}
    for batch in sorted(b for b in batches if b >= latest_compact):
        with filesystem_.open_input_stream(batches[batch]) as stream:
            entries = _parse_log(stream.read().decode(), batches[batch])
        for entry in entries:
            path = _to_uri(str(entry["path"]))
            if entry.get("action", "add") == "add":
                files[path] = None
            else:
                files.pop(path, None)
    return list(files)


def read_lake_files(files: list[str], topic: str, gcs_endpoint: str | None = None) -> pa.Table:
    """The rows of committed lake files of one topic as an Arrow table with the model's
    schema, the partition columns typed from the folder names (``event_hour=05`` -> 5)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from beatlytica.schemas import arrow_lake_schema

    schema = arrow_lake_schema(topic)
    if not files:
        return schema.empty_table()
    filesystem_, _ = filesystem(files[0], gcs_endpoint)
    paths = [filesystem(f, gcs_endpoint)[1] for f in files]
    root = paths[0].split("/event_date=")[0]
    partition_names = [f.name for f in schema if f.name in ("event_date", "event_hour")]
    partitioning = ds.partitioning(
        pa.schema([schema.field(n) for n in partition_names]), flavor="hive"
    )
    dataset = ds.dataset(
        paths,
        filesystem=filesystem_,
        # the writer's page checksums are verified: a flipped bit fails the read, never a row
        format=ds.ParquetFileFormat(
            default_fragment_scan_options=ds.ParquetFragmentScanOptions(
                page_checksum_verification=True
            )
        ),
        partitioning=partitioning,
        partition_base_dir=root,
    )
    try:
        return dataset.to_table(columns=schema.names).cast(schema)
    except (OSError, pa.ArrowException) as e:
        for uri in files:  # which file: read each on its own, the same way
            for _ in lake_batches([uri], topic, gcs_endpoint):
                pass
        raise BeatlyticaError(f"cannot read the committed lake files of {topic}: {e}") from None


def local_paths(files: list[str]) -> list[str] | None:
    """The local paths of lake file URIs (``file:///a/b`` -> ``/a/b``), for readers that open
    files themselves (DuckDB's ``read_parquet``); None when any of them is not a local file."""
    paths = []
    for uri in files:
        parsed = urlparse(uri)
        path = unquote(parsed.path)
        if parsed.scheme not in ("file", "") or parsed.netloc not in ("", "localhost"):
            return None
        if not path.startswith("/"):
            return None
        paths.append(path)
    return paths


#: rows per record batch of :func:`lake_batches`
BATCH_ROWS = 64 * 1024


def lake_batches(
    files: list[str], topic: str, gcs_endpoint: str | None = None
) -> pa.RecordBatchReader:
    """The rows of committed lake files of one topic as a stream of record batches with the
    schema of :func:`read_lake_files`, read as the consumer pulls them: one file at a time,
    one row group of it in memory, however many rows the files hold. (Not a pyarrow dataset
    scanner: that reads ahead of a slower consumer, half a gigabyte ahead of DuckDB's insert
    in a load of 8M events.)"""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from beatlytica.schemas import arrow_lake_schema

    schema = arrow_lake_schema(topic)
    if not files:
        return pa.RecordBatchReader.from_batches(schema, [])
    columns = arrow_lake_schema(topic, with_partitions=False).names
    date_type, hour_type = schema.field("event_date").type, schema.field("event_hour").type

    def batches() -> Iterator[pa.RecordBatch]:
        filesystem_, _ = filesystem(files[0], gcs_endpoint)
        for uri in files:
            partition = partition_of(uri)
            if partition is None:
                raise BeatlyticaError(f"{uri} is not in an event_date=/event_hour= folder")
            path = filesystem(uri, gcs_endpoint)[1]
            values = [
                pa.scalar(partition.event_date, date_type),
                pa.scalar(partition.event_hour, hour_type),
            ]
            try:
                with filesystem_.open_input_file(path) as source:
                    parquet = pq.ParquetFile(
                        source, pre_buffer=True, page_checksum_verification=True
                    )
                    # columns a file predates (added to the model since) read as nulls
                    present = [c for c in columns if c in parquet.schema_arrow.names]
                    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=present):
                        rows = batch.num_rows
                        arrays = [
                            batch.column(c)
                            if c in present
                            else pa.nulls(rows, schema.field(c).type)
                            for c in columns
                        ]
                        arrays += [pa.repeat(v, rows) for v in values]
                        yield pa.RecordBatch.from_arrays(arrays, names=schema.names).cast(schema)
            except (OSError, pa.ArrowException) as e:
                raise BeatlyticaError(f"cannot read the committed lake file {uri}: {e}") from None

    return pa.RecordBatchReader.from_batches(schema, batches())


@dataclass(frozen=True)
class Partition:
    event_date: date
    event_hour: int

    @property
    def start(self) -> datetime:
        d = self.event_date
        return datetime(d.year, d.month, d.day, self.event_hour, tzinfo=UTC)


def partition_of(uri: str) -> Partition | None:
    """The event-time partition a lake file belongs to, from its hive-style path."""
    match = _PARTITION.search(unquote(uri))
    if not match:
        return None
    return Partition(date.fromisoformat(match.group(1)), int(match.group(2)))


def files_in_interval(files: list[str], start: datetime, end: datetime) -> list[str]:
    """The files whose event hour lies in ``[start, end)`` (hour-aligned partitions)."""
    chosen = []
    for uri in files:
        partition = partition_of(uri)
        if partition is None:
            continue
        hour_start = partition.start
        if hour_start < end and hour_start + timedelta(hours=1) > start:
            chosen.append(uri)
    return chosen


def read_text(uri: str, gcs_endpoint: str | None = None) -> str | None:
    """A small file of the lake as text, or None when there is none."""
    from pyarrow import fs

    filesystem_, path = filesystem(uri, gcs_endpoint)
    if filesystem_.get_file_info(path).type == fs.FileType.NotFound:
        return None
    with filesystem_.open_input_stream(path) as stream:
        return bytes(stream.read()).decode()


def read_json(uri: str, gcs_endpoint: str | None = None) -> dict[str, object] | None:
    """A small JSON object of the lake, or None when there is none."""
    text = read_text(uri, gcs_endpoint)
    if text is None:
        return None
    try:
        found = json.loads(text)
    except json.JSONDecodeError as e:
        raise BeatlyticaError(f"{uri} is not JSON: {e}") from e
    if not isinstance(found, dict):
        raise BeatlyticaError(f"{uri} holds no JSON object")
    return found


def write_json(uri: str, value: dict[str, object], gcs_endpoint: str | None = None) -> None:
    """Write a small JSON object whole: an object store's write is atomic, a local file is
    written beside its name and renamed."""
    filesystem_, path = filesystem(uri, gcs_endpoint)
    parent = path.rpartition("/")[0]
    filesystem_.create_dir(parent, recursive=True)
    local = uri.startswith("file:")
    target = f"{parent}/.{path.rpartition('/')[2]}.tmp" if local else path
    with filesystem_.open_output_stream(target) as stream:
        stream.write(json.dumps(value, sort_keys=True).encode())
    if local:
        filesystem_.move(target, path)
