"""`beatlytica lake repair-file` against the real broker and real Spark.

generator -> Kafka -> `beatlytica stream` -> lake; then a committed file is truncated, which
stops `beatlytica load`; the repair rebuilds it from Kafka (or, once Kafka has lost the records,
drops it), and the lake read through its commit log holds every produced event exactly once.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from beatlytica.events import event_id
from beatlytica.kafka_local import LocalKafka
from beatlytica.lake import checkpoint_uri, committed_files, raw_table_uri
from beatlytica.lake_repair import LakeFile, batch_end_offsets, logged_entries
from tests.helpers import run_cli
from tests.integration.test_stream import generated, read_lake

pytestmark = pytest.mark.integration

TOPICS = ("listen_events", "page_view_events")
ARGS = (
    "--users",
    "300",
    "--start",
    "2026-11-01T06:00:00",
    "--end",
    "2026-11-01T18:00:00",
    "--seed",
    "3",
)
DAY = ("--start", "2026-11-01T00:00:00", "--end", "2026-11-02T00:00:00")


@pytest.fixture(scope="module")
def streamed(kafka_broker: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two topics streamed into a lake in several micro-batches (a few hundred offsets each)."""
    home = tmp_path_factory.mktemp("repair-home")
    env = {
        "BEATLYTICA_HOME": str(home),
        "BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "BEATLYTICA_TOPICS": ",".join(TOPICS),
        "BEATLYTICA_STREAM_MAX_OFFSETS_PER_TRIGGER": "300",
    }
    assert run_cli("generate", "--sink", "kafka", *ARGS, **env).returncode == 0
    expected = generated(tmp_path_factory.mktemp("repair-expected"), *ARGS)
    result = run_cli("stream", timeout=900, **env)
    assert result.returncode == 0, result.stderr[-3000:]
    ids = {
        t: sorted(r["event_id"] for r in read_lake((home / "lake").as_uri(), "raw", t))
        for t in TOPICS
    }
    for topic in TOPICS:  # the lake holds exactly what was produced
        assert ids[topic] == sorted(event_id(topic, e) for e in expected[topic]), topic
    return {"home": home, "env": env, "expected": expected, "ids": ids}


@pytest.fixture
def home(streamed: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """A private copy of the streamed lake (and its checkpoints), pointing at the same broker.
    The commit logs name files by absolute path: the copy's logs are made to name the copy's
    files (and lose their checksum files, which Hadoop then does not verify)."""
    copy = tmp_path / "home"
    shutil.copytree(streamed["home"], copy)
    lake = copy / "lake"
    for log in lake.glob("*/*/_spark_metadata"):
        for crc in log.glob(".*.crc"):
            crc.unlink()
        for entry in log.iterdir():
            text = entry.read_text()
            entry.write_text(text.replace(f"file:{streamed['home']}/", f"file:{copy}/"))
    return {
        **streamed,
        "env": {**streamed["env"], "BEATLYTICA_HOME": str(copy)},
        "lake": lake,
        "lake_uri": lake.as_uri(),
    }


def committed(lake: Path, topic: str) -> list[Path]:
    """The committed raw files of a topic, as local paths."""
    files = committed_files(raw_table_uri(lake.as_uri(), topic))
    return [Path(f.removeprefix("file://")) for f in files]


def truncate(path: Path) -> None:
    """What a copy cut short leaves: the first half of the file, no footer."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def lake_ids(home: dict[str, Any], topic: str) -> list[str]:
    return sorted(r["event_id"] for r in read_lake(home["lake_uri"], "raw", topic))


def test_a_truncated_file_is_rebuilt_from_kafka_and_the_interval_loads_again(
    home: dict[str, Any], spark: Any
) -> None:
    topic = "listen_events"
    files = committed(home["lake"], topic)
    # a file of a later batch (its start is the previous batch's end) with rows worth rebuilding
    path = next(
        p for p in files if LakeFile.parse(str(p)).batch >= 1 and pq.read_metadata(p).num_rows >= 20
    )
    original = pq.read_table(path)
    truncate(path)

    loaded = run_cli("load", *DAY, **home["env"])
    assert loaded.returncode != 0
    assert str(path) in loaded.stderr  # the loader names the file it cannot read

    repaired = run_cli("lake", "repair-file", str(path), timeout=600, **home["env"])
    assert repaired.returncode == 0, repaired.stderr[-3000:]
    report = json.loads(repaired.stdout)
    assert (report["action"], report["rows"], report["offsets_from"]) == (
        "repaired",
        original.num_rows,
        "checkpoint",
    )
    # the job's rows again: same columns, types, order inside the file
    assert pq.read_table(path).equals(original)
    # the log states the new file's size (Spark's reader of the folder plans reads from it)
    lake_file = LakeFile.parse(str(path))
    sizes = {e["size"] for e in logged_entries(lake_file, None)}
    assert sizes == {path.stat().st_size}
    # the damaged file is kept aside, with a record of what was done
    aside = Path(report["moved_to"].removeprefix("file://"))
    assert aside.is_relative_to(home["lake"] / "raw" / topic / "_corrupt")
    assert aside.stat().st_size < path.stat().st_size
    record = json.loads(aside.with_name(aside.name + ".json").read_text())
    assert record["action"] == "repaired" and record["rows"] == original.num_rows

    # every produced event exactly once, through the commit log; the interval loads
    ids = lake_ids(home, topic)
    assert Counter(ids).most_common(1)[0][1] == 1
    assert ids == home["ids"][topic]
    loaded = run_cli("load", *DAY, **home["env"])
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert json.loads(loaded.stdout)[topic]["rows"] == len(home["expected"][topic])
    # Spark reading the table folder goes through the rewritten log (sizes, checksums)
    table = spark.read.parquet(raw_table_uri(home["lake_uri"], topic))
    assert table.count() == len(home["expected"][topic])

    # a second run finds nothing to do; a file no log names is not the lake's
    again = run_cli("lake", "repair-file", str(path), **home["env"])
    assert again.returncode == 2
    assert "reads fine: nothing to repair" in again.stderr
    orphan = path.with_name("part-99999999-00000.zstd.parquet")
    shutil.copy(path, orphan)
    refused = run_cli("lake", "repair-file", str(orphan), **home["env"])
    assert refused.returncode == 2
    assert f"file://{orphan} is not committed" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_once_spark_purged_the_batchs_offsets_the_lake_bounds_them(home: dict[str, Any]) -> None:
    """Spark keeps the offsets of the last 100 batches only. Without them, the range comes from
    the neighbouring batches' rows; two damaged files of one hour are both repaired, and the
    lake again holds each event once."""
    topic = "listen_events"
    checkpoint = Path(checkpoint_uri(home["lake_uri"], topic).removeprefix("file://"))
    offsets = sorted(int(p.name) for p in (checkpoint / "offsets").iterdir() if p.name.isdigit())
    assert len(offsets) >= 3, offsets
    for batch in offsets[:-1]:  # what retention leaves: only the latest batch
        (checkpoint / "offsets" / str(batch)).unlink()
        (checkpoint / "commits" / str(batch)).unlink(missing_ok=True)
    folders = Counter(p.parent for p in committed(home["lake"], topic))
    folder = folders.most_common(1)[0][0]
    damaged = sorted(p for p in committed(home["lake"], topic) if p.parent == folder)[:2]
    assert len(damaged) == 2
    originals = {p: pq.read_table(p) for p in damaged}
    for path in damaged:
        truncate(path)

    rows = 0
    for path in damaged:
        result = run_cli("lake", "repair-file", str(path), timeout=600, **home["env"])
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads(result.stdout)
        assert report["offsets_from"] == "lake"
        rows += report["rows"]
    assert rows == sum(t.num_rows for t in originals.values())
    ids = lake_ids(home, topic)
    assert Counter(ids).most_common(1)[0][1] == 1
    assert ids == home["ids"][topic]


def test_records_kafka_lost_are_named_and_the_file_can_be_dropped(
    home: dict[str, Any], kafka_broker: LocalKafka
) -> None:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    topic = "page_view_events"
    files = committed(home["lake"], topic)
    path = next(p for p in files if LakeFile.parse(str(p)).batch >= 1)
    lake_file = LakeFile.parse(str(path))
    rows = pq.read_table(path)
    partition = rows.column("kafka_partition")[0].as_py()
    checkpoint = Path(checkpoint_uri(home["lake_uri"], topic).removeprefix("file://"))
    start = batch_end_offsets(
        (checkpoint / "offsets" / str(lake_file.batch - 1)).read_text(), topic
    )[partition]
    # retention: the partition's records up to and including the batch's first one are gone
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers})
    for future in admin.delete_records([TopicPartition(topic, partition, start + 1)]).values():
        future.result(timeout=30)
    truncate(path)

    refused = run_cli("lake", "repair-file", str(path), **home["env"])
    assert refused.returncode == 2
    message = refused.stderr.strip().splitlines()[-1]
    assert f"{topic} partition {partition} offsets [{start}, {start + 1})" in message
    assert "--drop" in message and "rows are lost, exactly how many is unknown" in message

    dropped = run_cli("lake", "repair-file", "--drop", str(path), timeout=600, **home["env"])
    assert dropped.returncode == 0, dropped.stderr[-3000:]
    report = json.loads(dropped.stdout)
    assert report["action"] == "dropped" and report["rows_lost"] == "unknown"
    assert report["rows_lost_at_most"] >= rows.num_rows
    assert not path.exists() and path not in committed(home["lake"], topic)
    aside = Path(report["moved_to"].removeprefix("file://"))
    record = json.loads(aside.with_name(aside.name + ".json").read_text())
    assert record["kafka_offsets_lost"] == {str(partition): [start, start + 1]}

    # the rest of the lake is intact and loads; the dropped rows are the only ones missing
    lost = set(rows.column("event_id").to_pylist())
    assert lake_ids(home, topic) == [i for i in home["ids"][topic] if i not in lost]
    loaded = run_cli("load", *DAY, **home["env"])
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert json.loads(loaded.stdout)[topic]["rows"] == len(home["ids"][topic]) - len(lost)


def test_a_gs_lake_is_repaired_the_same_way(
    streamed: dict[str, Any], gcs_emulator: str, tmp_path: Path
) -> None:
    """gs:// through the GCS connector and pyarrow's GCS file system (fake-gcs-server): no
    checksum files, no rename over an object; the log's objects are written anew."""
    from beatlytica.lake import filesystem
    from tests.conftest import create_bucket

    topic = "listen_events"
    create_bucket(gcs_emulator, "beatlytica-repair")
    lake = "gs://beatlytica-repair/lake"
    env = {
        **streamed["env"],
        "BEATLYTICA_HOME": str(tmp_path / "home"),
        "BEATLYTICA_TOPICS": topic,
        "BEATLYTICA_LAKE_URI": lake,
        "BEATLYTICA_GCS_ENDPOINT": gcs_emulator,
    }
    result = run_cli("stream", timeout=900, **env)
    assert result.returncode == 0, result.stderr[-3000:]
    gcs, _ = filesystem(lake, gcs_emulator)

    def ids() -> list[str]:
        files = committed_files(raw_table_uri(lake, topic), gcs_emulator)
        table = pq.ParquetDataset([f.removeprefix("gs://") for f in files], filesystem=gcs)
        return sorted(table.read(columns=["event_id"]).column("event_id").to_pylist())

    assert ids() == streamed["ids"][topic]
    files = committed_files(raw_table_uri(lake, topic), gcs_emulator)
    uri = next(f for f in files if LakeFile.parse(f).batch >= 1)
    path = uri.removeprefix("gs://")
    original = pq.read_table(path, filesystem=gcs)
    with gcs.open_input_stream(path) as stream:
        data = stream.read()
    with gcs.open_output_stream(path) as out:
        out.write(data[: len(data) // 2])

    loaded = run_cli("load", *DAY, **env)
    assert loaded.returncode != 0  # (the local test above checks that it names the file)
    repaired = run_cli("lake", "repair-file", uri, timeout=600, **env)
    assert repaired.returncode == 0, repaired.stderr[-3000:]
    report = json.loads(repaired.stdout)
    assert report["action"] == "repaired" and report["moved_to"].startswith(f"{lake}/raw/")
    assert pq.read_table(path, filesystem=gcs).equals(original)
    size = gcs.get_file_info(path).size
    assert {e["size"] for e in logged_entries(LakeFile.parse(uri), gcs_emulator)} == {size}
    assert ids() == streamed["ids"][topic]
    loaded = run_cli("load", *DAY, **env)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert json.loads(loaded.stdout)[topic]["rows"] == len(streamed["ids"][topic])
