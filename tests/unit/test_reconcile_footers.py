"""Reconcile counts the lake twice: the rows a reader returns, and the rows the writer recorded
in each file's footer. A reader that silently loses rows (a damaged page it does not notice)
cannot make the lake agree with a raw table that lost the same rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beatlytica import reconcile
from beatlytica.errors import BeatlyticaError
from beatlytica.settings import Settings
from tests.unit.test_lake import _write_log

START, END = datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC)


def lake_with_listens(tmp_path: Path, rows: int) -> Settings:
    settings = Settings(lake_uri=(tmp_path / "lake").as_uri(), topics=("listen_events",))
    table = tmp_path / "lake" / "raw" / "listen_events"
    folder = table / "event_date=2026-11-01" / "event_hour=05"
    folder.mkdir(parents=True)
    ts = [datetime(2026, 11, 1, 5, i, tzinfo=UTC) for i in range(rows)]
    pq.write_table(
        pa.table({"event_id": [f"{i:032x}" for i in range(rows)], "ts": ts}),
        folder / "part-0.parquet",
    )
    _write_log(table, "0", ["event_date=2026-11-01/event_hour=05/part-0.parquet"])
    return settings


def test_the_footers_count_what_was_written(tmp_path: Path) -> None:
    settings = lake_with_listens(tmp_path, 7)
    files = reconcile.interval_files(settings, "listen_events", START, END)
    assert reconcile.footer_rows(files, None) == 7


def test_a_reader_that_loses_rows_fails_the_reconciliation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = lake_with_listens(tmp_path, 7)

    def reader(keep: int) -> object:
        def read(files: list[str], topic: str, gcs_endpoint: str | None) -> pa.Table:
            path = files[0].removeprefix("file://")
            return pq.read_table(path).slice(0, keep)

        return read

    monkeypatch.setattr(reconcile, "read_lake_files", reader(7))
    assert reconcile.lake_fingerprint(settings, "listen_events", START, END)[0] == 7
    monkeypatch.setattr(reconcile, "read_lake_files", reader(5))
    with pytest.raises(BeatlyticaError, match="hold 7 rows by their footers, but 5 were read"):
        reconcile.lake_fingerprint(settings, "listen_events", START, END)
