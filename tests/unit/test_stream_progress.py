"""What the streaming job tells its user per micro-batch (pure functions, no Spark)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from spark_jobs.stream_events import backlog, progress_fields, progress_line


def progress(end: dict, latest: dict | None, rows: int = 1200) -> SimpleNamespace:
    source = SimpleNamespace(
        description="KafkaV2[Subscribe[listen_events]]",
        endOffset=json.dumps(end),
        latestOffset=None if latest is None else json.dumps(latest),
    )
    # Spark's numInputRows counts every pass over the batch: two when it had rejects
    return SimpleNamespace(
        name="listen_events", batchId=3, numInputRows=2 * rows, batchDuration=30, sources=[source]
    )


def test_the_backlog_is_what_the_source_saw_beyond_what_the_batch_read() -> None:
    end = {"listen_events": {"0": 100, "1": 50, "2": 0}}
    latest = {"listen_events": {"0": 150, "1": 50, "2": 7}}
    assert backlog(progress(end, latest)) == 57
    assert backlog(progress(end, None)) is None


def test_a_batch_is_one_sentence_on_a_terminal_and_fields_in_json() -> None:
    end = {"listen_events": {"0": 1000}}
    fields = progress_fields(
        progress(end, {"listen_events": {"0": 3000}}), {"written": 1190, "quarantined": 10}
    )
    assert fields["topic"] == "listen_events"
    assert fields["written_rows"] == 1190 and fields["quarantined_rows"] == 10
    assert fields["input_rows"] == 1200 and fields["backlog"] == 2000
    assert fields["end_offsets"] == {"KafkaV2[Subscribe[listen_events]]": end}
    assert progress_line(fields) == (
        "listen_events: batch 3, 1,200 read (2,000 behind), 40,000 events/s, 10 quarantined"
    )
    replayed = progress_fields(progress(end, None), None)  # counts unknown: a replayed batch
    assert progress_line(replayed) == "listen_events: batch 3, 2,400 read, 80,000 events/s"
