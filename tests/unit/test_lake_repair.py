"""Planning the repair of an unreadable lake file: the file, its batch's Kafka offsets (from the
checkpoint, or from the lake once Spark has purged them), what Kafka lost, the log rewrite, and
the refusals. The repair itself runs against Kafka and Spark in
tests/integration/test_lake_repair.py."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beatlytica.errors import BeatlyticaError
from beatlytica.lake_repair import (
    Checkpoint,
    LakeFile,
    OffsetRange,
    batch_end_offsets,
    batch_range,
    file_uri,
    initial_offsets,
    lost_offsets,
    plan_repair,
    rewrite_log,
)
from beatlytica.settings import Settings

HOUR = "event_date=2026-11-01/event_hour=08"
METADATA = '{"batchWatermarkMs":0,"batchTimestampMs":1796315150572,"conf":{}}'


def test_a_lake_file_is_known_by_its_path() -> None:
    f = LakeFile.parse(f"/l/raw/listen_events/{HOUR}/part-00000012-00003.zstd.parquet")
    assert (f.uri, f.lake, f.kind, f.topic, f.batch) == (
        f"file:///l/raw/listen_events/{HOUR}/part-00000012-00003.zstd.parquet",
        "file:///l",
        "raw",
        "listen_events",
        12,
    )
    assert f.table == "file:///l/raw/listen_events"
    assert f.partition == (("event_date", "2026-11-01"), ("event_hour", "08"))
    assert f.relative == f"{HOUR}/part-00000012-00003.zstd.parquet"
    assert f.codec == "zstd"
    # Spark's file:/ spelling, and gs://
    assert LakeFile.parse(f"file:/l/raw/t/{HOUR}/part-00000001-00000.parquet").uri == (
        f"file:///l/raw/t/{HOUR}/part-00000001-00000.parquet"
    )
    gs = LakeFile.parse(
        "gs://b/lake/quarantine/t/quarantine_date=2026-11-01/part-00000002-00000.snappy.parquet"
    )
    assert (gs.lake, gs.kind, gs.table, gs.codec) == (
        "gs://b/lake",
        "quarantine",
        "gs://b/lake/quarantine/t",
        "snappy",
    )
    assert file_uri("relative/x.parquet").startswith("file:///")


@pytest.mark.parametrize(
    "path",
    [
        "/l/raw/t/event_date=2026-11-01/x.parquet",  # not a sink file name
        "/l/raw/t/part-00000001-00000.zstd.parquet",  # no partition folder
        "/l/other/t/event_date=2026-11-01/part-00000001-00000.zstd.parquet",
    ],  # not a table
)
def test_what_is_not_a_lake_file_is_refused(path: str) -> None:
    with pytest.raises(BeatlyticaError, match=r"not (a lake file|in a lake table)"):
        LakeFile.parse(path)


def test_checkpoint_files_are_read() -> None:
    text = f'v1\n{METADATA}\n{{"listen_events":{{"0":474,"1":413,"2":435}}}}\n'
    assert batch_end_offsets(text, "listen_events") == {0: 474, 1: 413, 2: 435}
    # sources/0/0 starts with a NUL byte
    assert initial_offsets('\x00v1\n{"listen_events":{"0":0,"1":7}}', "listen_events") == {
        0: 0,
        1: 7,
    }
    with pytest.raises(BeatlyticaError, match="no Kafka offsets of auth_events"):
        batch_end_offsets(text, "auth_events")


def test_an_offset_range_is_what_sparks_kafka_batch_source_reads() -> None:
    r = OffsetRange("t", {0: 5, 1: 9, 2: 4}, {0: 10, 1: 9, 2: 6})
    assert r.partitions() == [0, 2] and r.size == 7  # partition 1 read nothing
    assert {k: json.loads(v) for k, v in r.spark_options().items()} == {
        "assign": {"t": [0, 2]},
        "startingOffsets": {"t": {"0": 5, "2": 4}},
        "endingOffsets": {"t": {"0": 10, "2": 6}},
    }
    assert r.describe() == "t partitions 0: [5, 10), 2: [4, 6)"


def test_what_kafka_no_longer_holds() -> None:
    r = OffsetRange("t", {0: 5, 1: 0, 2: 4}, {0: 10, 1: 8, 2: 6})
    watermarks = {0: (0, 20), 1: (3, 20), 2: (0, 2)}  # 2: emptied or recreated
    assert lost_offsets(r, watermarks) == {1: (0, 3), 2: (4, 6)}
    assert lost_offsets(r, {0: (5, 10), 1: (0, 8), 2: (4, 6)}) == {}
    assert lost_offsets(r, {0: (50, 60), 1: (0, 8), 2: (0, 6)}) == {0: (5, 10)}


def test_the_log_entry_of_a_file_is_rewritten_and_nothing_else() -> None:
    a = '{"path":"file:/t/a.parquet","size":10,"isDir":false,"action":"add"}'
    b = '{"path":"file:/t/b.parquet","size":20,"isDir":false,"action":"add"}'
    text = f"v1\n{a}\n{b}\n"
    resized = rewrite_log(text, "file:///t/b.parquet", lambda e: {**e, "size": 21})
    assert resized == f"v1\n{a}\n{b.replace('20', '21')}\n"
    assert rewrite_log(text, "file:///t/a.parquet", lambda e: None) == f"v1\n{b}\n"
    assert rewrite_log(text, "file:///t/c.parquet", lambda e: None) is None


# --- a small lake on disk ----------------------------------------------------------------------


def _parquet(path: Path, rows: list[tuple[int, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "event_id": [f"e{p}-{o}" for p, o in rows],
            "kafka_partition": pa.array([p for p, _ in rows], pa.int32()),
            "kafka_offset": pa.array([o for _, o in rows], pa.int64()),
        }
    )
    pq.write_table(table, path)


def _log(table: Path, batch: int, relatives: list[str]) -> None:
    log = table / "_spark_metadata"
    log.mkdir(parents=True, exist_ok=True)
    lines = ["v1"]
    for relative in relatives:
        path = table / relative
        lines.append(
            json.dumps(
                {
                    "path": f"file:{path}",
                    "size": path.stat().st_size,
                    "isDir": False,
                    "action": "add",
                }
            )
        )
    (log / str(batch)).write_text("\n".join(lines) + "\n")


def _offsets(checkpoint: Path, batch: int, offsets: dict[int, int], commit: bool = True) -> None:
    (checkpoint / "offsets").mkdir(parents=True, exist_ok=True)
    (checkpoint / "commits").mkdir(parents=True, exist_ok=True)
    line = json.dumps({"t": {str(p): o for p, o in offsets.items()}})
    (checkpoint / "offsets" / str(batch)).write_text(f"v1\n{METADATA}\n{line}\n")
    if commit:
        (checkpoint / "commits" / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}\n')


def _lake(tmp_path: Path) -> tuple[Path, list[str]]:
    """Topic t, partitions 0 and 1: batch 1 wrote offsets 0-9 of p0 and 0-4 of p1 (and
    quarantined p1's 5), batch 2 wrote p0 10-19 and p1 6-8, batch 3 p0 20-25."""
    lake = tmp_path / "lake"
    raw, quarantine = lake / "raw" / "t", lake / "quarantine" / "t"
    batches = {
        1: [(0, o) for o in range(10)] + [(1, o) for o in range(5)],
        2: [(0, o) for o in range(10, 20)] + [(1, o) for o in range(6, 9)],
        3: [(0, o) for o in range(20, 26)],
    }
    for batch, rows in batches.items():
        relative = f"{HOUR}/part-{batch:08d}-00000.zstd.parquet"
        _parquet(raw / relative, rows)
        _log(raw, batch, [relative])
    q = "quarantine_date=2026-11-01/part-00000001-00000.zstd.parquet"
    _parquet(quarantine / q, [(1, 5)])
    _log(quarantine, 1, [q])
    checkpoint = lake / "_checkpoints" / "t" / "lake"
    (checkpoint / "sources" / "0").mkdir(parents=True)
    (checkpoint / "sources" / "0" / "0").write_text('\x00v1\n{"t":{"0":0,"1":0}}')
    _offsets(checkpoint, 0, {0: 0, 1: 0})
    _offsets(checkpoint, 1, {0: 10, 1: 6})
    _offsets(checkpoint, 2, {0: 20, 1: 9})
    _offsets(checkpoint, 3, {0: 26, 1: 9})
    files = [f"file://{p}" for p in sorted(raw.rglob("part-*"))]
    files.append(f"file://{quarantine / q}")
    return lake, files


def test_a_batchs_offsets_come_from_the_checkpoint(tmp_path: Path) -> None:
    lake, files = _lake(tmp_path)
    checkpoint = Checkpoint(f"file://{lake}/_checkpoints/t/lake", "t")
    assert batch_range(checkpoint, 2, files) == (
        OffsetRange("t", {0: 10, 1: 6}, {0: 20, 1: 9}),
        "checkpoint",
    )
    assert batch_range(checkpoint, 0, files)[0].partitions() == []  # sources/0/0 to offsets/0


def test_purged_offsets_are_derived_from_the_neighbouring_batches(tmp_path: Path) -> None:
    """Spark keeps the offsets of the last 100 batches only: an older batch's range is bounded
    by the offsets its neighbours' rows carry (raw and quarantined)."""
    lake, files = _lake(tmp_path)
    checkpoint_dir = lake / "_checkpoints" / "t" / "lake"
    for batch in (0, 1, 2):
        (checkpoint_dir / "offsets" / str(batch)).unlink()
        (checkpoint_dir / "commits" / str(batch)).unlink()
    checkpoint = Checkpoint(f"file://{checkpoint_dir}", "t")
    offsets, source = batch_range(checkpoint, 2, files)
    # p0: after batch 1's 9, up to batch 3's 20; p1: after the quarantined 5, up to offsets/3
    assert (offsets.start, offsets.end, offsets.exact, source) == (
        {0: 10, 1: 6},
        {0: 20, 1: 9},
        False,
        "lake",
    )
    # a neighbour that cannot be read only widens the range
    (lake / "raw" / "t" / HOUR / "part-00000001-00000.zstd.parquet").write_bytes(b"PAR1")
    widened, _ = batch_range(checkpoint, 2, files)
    assert widened.start == {0: 0, 1: 6} and widened.end == {0: 20, 1: 9}


def test_a_batch_whose_end_nothing_bounds_is_refused(tmp_path: Path) -> None:
    lake, files = _lake(tmp_path)
    checkpoint_dir = lake / "_checkpoints" / "t" / "lake"
    (checkpoint_dir / "offsets" / "3").unlink()  # the last batch: no later one bounds it
    checkpoint = Checkpoint(f"file://{checkpoint_dir}", "t")
    with pytest.raises(BeatlyticaError, match="cannot tell where batch 3 of t ended"):
        batch_range(checkpoint, 3, files)
    (checkpoint_dir / "offsets" / "2").write_text("v1\n")  # present, but no offsets in it
    with pytest.raises(BeatlyticaError, match="holds no source offsets"):
        batch_range(checkpoint, 3, files)


def test_plans_refuse_what_needs_no_repair(tmp_path: Path) -> None:
    lake, _ = _lake(tmp_path)
    settings = Settings.model_construct()
    committed = lake / "raw" / "t" / HOUR / "part-00000002-00000.zstd.parquet"
    with pytest.raises(BeatlyticaError, match="reads fine: nothing to repair"):
        plan_repair(settings, str(committed))
    orphan = committed.with_name("part-00000007-00000.zstd.parquet")
    orphan.write_bytes(b"PAR1 half a file")
    with pytest.raises(BeatlyticaError, match=r"is not committed: no entry of .*_spark_metadata"):
        plan_repair(settings, str(orphan))
    quarantined = lake / "quarantine" / "t" / "quarantine_date=2026-11-01"
    (quarantined / "part-00000001-00000.zstd.parquet").write_bytes(b"PAR1")
    with pytest.raises(BeatlyticaError, match="only raw files are rebuilt from Kafka"):
        plan_repair(settings, str(quarantined / "part-00000001-00000.zstd.parquet"))


def test_a_readable_file_with_a_stale_log_size_gets_its_log_fixed(tmp_path: Path) -> None:
    """What a repair interrupted between moving the new file in and rewriting the log leaves."""
    lake, _ = _lake(tmp_path)
    log = lake / "raw" / "t" / "_spark_metadata" / "2"
    log.write_text(log.read_text().replace('"size": ', '"size": 1'))
    committed = lake / "raw" / "t" / HOUR / "part-00000002-00000.zstd.parquet"
    plan = plan_repair(Settings.model_construct(), str(committed))
    assert plan.action == "fix-log" and plan.damage is None
