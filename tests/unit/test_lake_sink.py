"""The batch-keyed commits of the streaming job (spark_jobs/lake_sink.py) on a real local Spark:
the log is Spark's file-sink log (Spark and beatlytica.lake read it), a replayed batch is
skipped, a killed attempt's files stay invisible, compaction keeps every file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from beatlytica.lake import committed_files
from spark_jobs.lake_sink import COMPACT_INTERVAL, LakeTable, final_name, log_name


def frame(spark: Any, batch: int, rows: int = 4) -> Any:
    return spark.createDataFrame(
        [(f"{batch}-{i}", "2026-11-01", f"{i % 2:02d}") for i in range(rows)],
        "id string, event_date string, event_hour string",
    )


def ids(spark: Any, files: list[str]) -> list[str]:
    return sorted(r.id for r in spark.read.parquet(*files).collect()) if files else []


def test_a_batch_is_committed_under_its_id_in_the_file_sinks_log(spark, tmp_path: Path) -> None:
    table = LakeTable(spark, (tmp_path / "t").as_uri())
    written = table.write(frame(spark, 0), 0, ("event_date", "event_hour"))
    files = committed_files((tmp_path / "t").as_uri())
    assert sorted(files) == sorted(f.path.replace("file:/", "file:///") for f in written)
    names = {final_name(0, i, "x.zstd.parquet") for i in range(len(files))}
    assert {Path(f).name for f in files} == names
    assert all("/event_date=2026-11-01/event_hour=0" in f for f in files)
    assert ids(spark, files) == [f"0-{i}" for i in range(4)]
    # Spark reads the folder through the same log
    assert sorted(r.id for r in spark.read.parquet(str(tmp_path / "t")).collect()) == ids(
        spark, files
    )
    assert not (tmp_path / "t" / "_staging" / "0").exists()


def test_a_replayed_batch_is_skipped(spark, tmp_path: Path) -> None:
    table = LakeTable(spark, (tmp_path / "t").as_uri())
    table.write(frame(spark, 0), 0, ("event_date", "event_hour"))
    assert table.committed(0)
    assert table.write(frame(spark, 0, rows=6), 0, ("event_date", "event_hour")) == []
    assert len(ids(spark, committed_files((tmp_path / "t").as_uri()))) == 4


def test_what_a_killed_attempt_left_is_invisible_and_replaced(spark, tmp_path: Path) -> None:
    root = tmp_path / "t"
    table = LakeTable(spark, root.as_uri())
    # a killed attempt of batch 1: staged files, a moved file, no log entry
    frame(spark, 99).write.partitionBy("event_date", "event_hour").parquet(
        str(root / "_staging" / "1")
    )
    stray = root / "event_date=2026-11-01" / "event_hour=00" / final_name(1, 0, "x.zstd.parquet")
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"half a file")
    extra = stray.with_name(final_name(1, 7, "x.zstd.parquet"))
    extra.write_bytes(b"half a file")
    assert committed_files(root.as_uri()) == []
    table.write(frame(spark, 1), 1, ("event_date", "event_hour"))
    files = committed_files(root.as_uri())
    assert ids(spark, files) == [f"1-{i}" for i in range(4)]
    assert extra.as_uri() not in files  # left there, named by no log entry


def test_compaction_keeps_every_file_and_spark_reads_it(spark, tmp_path: Path) -> None:
    root = tmp_path / "t"
    table = LakeTable(spark, root.as_uri())
    batches = 2 * COMPACT_INTERVAL + 3
    for batch in range(batches):
        if batch % 4 == 3:
            table.commit_empty(batch)  # a batch without rows for this table
        else:
            table.write(frame(spark, batch, rows=2), batch, ("event_date", "event_hour"))
    log = root / "_spark_metadata"
    names = {p.name for p in log.iterdir()}
    assert log_name(COMPACT_INTERVAL - 1) == f"{COMPACT_INTERVAL - 1}.compact"
    assert f"{2 * COMPACT_INTERVAL - 1}.compact" in names
    assert "0" not in names  # expired: covered by the compactions
    assert not [n for n in names if n.endswith(".tmp")]  # no temporary file left
    expected = sorted(f"{b}-{i}" for b in range(batches) if b % 4 != 3 for i in range(2))
    assert ids(spark, committed_files(root.as_uri())) == expected
    assert sorted(r.id for r in spark.read.parquet(str(root)).collect()) == expected


def test_a_topics_batch_goes_to_the_raw_and_the_quarantine_table_once(
    spark, sample_events, tmp_path: Path
) -> None:
    """The job's foreachBatch: one parsed batch, valid rows to raw/, rejects to quarantine/,
    the counts for the progress line; a replay changes nothing; an empty batch commits."""
    import json

    from beatlytica.events import event_id
    from beatlytica.lake import quarantine_uri, raw_table_uri
    from beatlytica.settings import Settings
    from spark_jobs.stream_events import TopicBatches
    from spark_jobs.transforms import parse
    from tests.unit.test_transforms import kafka_rows

    topic = "listen_events"
    settings = Settings(home=tmp_path / "home")
    writer = TopicBatches(spark, settings, topic)
    payloads = sample_events[topic][:30]
    values = [json.dumps(p) for p in payloads] + ["not json", json.dumps({"ts": 1})]
    batch = parse(kafka_rows(spark, topic, values), topic)
    for _ in range(2):  # the second call is Spark replaying the batch
        writer(batch, 0)
    assert writer.counts == {0: {"written": 30, "quarantined": 2}}
    raw = committed_files(raw_table_uri(settings.lake, topic))
    rows = spark.read.parquet(*raw).collect()
    assert sorted(r.event_id for r in rows) == sorted(event_id(topic, p) for p in payloads)
    rejects = spark.read.parquet(*committed_files(quarantine_uri(settings.lake, topic))).collect()
    assert sorted(bytes(r.raw_value) for r in rejects) == sorted(v.encode() for v in values[-2:])

    writer(parse(kafka_rows(spark, topic, []), topic), 1)
    assert writer.counts[1] == {"written": 0, "quarantined": 0}
    assert writer.raw.committed(1) and writer.quarantine.committed(1)
    assert len(committed_files(raw_table_uri(settings.lake, topic))) == len(raw)


def test_the_columns_the_job_names_are_lake_columns_of_every_topic() -> None:
    from beatlytica.events import TOPIC_NAMES, lake_fields
    from spark_jobs.stream_events import SORT_WITHIN_FILES, UNIQUE_COLUMNS

    for topic in TOPIC_NAMES:
        columns = {f.column for f in lake_fields(topic)}
        assert set(SORT_WITHIN_FILES) <= columns, topic
        assert set(UNIQUE_COLUMNS) <= columns, topic
