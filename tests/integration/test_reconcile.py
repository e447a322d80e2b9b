"""Reconcile's count of the lake events no DAG interval will ever load, on a lake the real
Spark job wrote (the session's loaded warehouse)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from beatlytica.events import TOPIC_NAMES
from beatlytica.reconcile import Figures, lake_events, outside_intervals, render
from beatlytica.settings import Settings


def test_events_before_the_first_interval_are_counted(loaded_warehouse: dict[str, Any]) -> None:
    home = Path(loaded_warehouse["env"]["BEATLYTICA_HOME"])
    day = datetime(2026, 11, 1, tzinfo=UTC)
    first = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # inside an hour: that hour is split
    settings = Settings(home=home, dag_start_date=first.isoformat())
    for topic in TOPIC_NAMES:
        before = lake_events(settings, topic, day, first)
        assert before > 0, topic
        assert outside_intervals(settings, topic) == before, topic
        # from the first interval on, nothing is outside
        later = Settings(home=home, dag_start_date=day.isoformat())
        assert outside_intervals(later, topic) == 0, topic
    table = render([Figures("listen_events", 5, 5, 5, 0, outside=3)])
    assert table.splitlines()[1].split() == ["listen_events", "5", "5", "5", "0", "3", "ok"]
    assert "no run loads" in table


def test_a_lost_and_a_duplicated_event_do_not_cancel_out(
    loaded_warehouse: dict[str, Any], tmp_path: Path
) -> None:
    """Counts alone agree when one event is lost and another doubled; the id digests do not."""
    import shutil

    from beatlytica.reconcile import lake_fingerprint
    from beatlytica.warehouse.duckdb_backend import DuckDBWarehouse

    home = Path(loaded_warehouse["env"]["BEATLYTICA_HOME"])
    settings = Settings(home=home)
    start, end = (datetime.fromisoformat(t).replace(tzinfo=UTC) for t in loaded_warehouse["window"])
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(loaded_warehouse["duckdb_path"], copy)
    warehouse = DuckDBWarehouse(copy, "raw")
    try:
        lake = lake_fingerprint(settings, "listen_events", start, end)
        assert warehouse.fingerprint("listen_events", start, end) == lake
        con = warehouse.con
        ids = "select event_id from raw.listen_events order by event_id limit 2"
        first, second = (r[0] for r in con.execute(ids).fetchall())
        con.execute("delete from raw.listen_events where event_id = ?", [first])
        con.execute(
            "insert into raw.listen_events select * from raw.listen_events where event_id = ?",
            [second],
        )
        raw = warehouse.fingerprint("listen_events", start, end)
    finally:
        warehouse.close()
    assert raw[0] == lake[0] and raw[1] != lake[1]
    figures = Figures(
        "listen_events", lake[0], raw[0], raw[0], 0, lake_digest=lake[1], raw_digest=raw[1]
    )
    assert not figures.ok
    assert render([figures]).splitlines()[1].split()[-1] == "DIFFERENT"


def test_a_flipped_bit_fails_the_lake_readers_naming_the_file(
    loaded_warehouse: dict[str, Any], tmp_path: Path
) -> None:
    """Spark writes page checksums; the pyarrow readers (reconcile's, the loader's for gs://)
    verify them: a damaged page fails the read with the file's name, instead of rows silently
    missing or wrong."""
    import shutil

    import pyarrow.parquet as pq
    import pytest

    from beatlytica.errors import BeatlyticaError
    from beatlytica.lake import committed_files, lake_batches, raw_table_uri, read_lake_files

    home = Path(loaded_warehouse["env"]["BEATLYTICA_HOME"])
    lake = Settings(home=home).lake
    source = Path(committed_files(raw_table_uri(lake, "listen_events"))[0].removeprefix("file://"))
    damaged = tmp_path / source.parent.parent.name / source.parent.name / source.name
    damaged.parent.mkdir(parents=True)
    shutil.copy(source, damaged)
    chunk = pq.read_metadata(damaged).row_group(0).column(0)
    data = bytearray(damaged.read_bytes())
    data[chunk.data_page_offset + chunk.total_compressed_size // 2] ^= 0x10
    damaged.write_bytes(data)
    uri = damaged.as_uri()
    for read in (
        lambda: read_lake_files([uri], "listen_events"),
        lambda: lake_batches([uri], "listen_events").read_all(),
    ):
        with pytest.raises(BeatlyticaError, match="CRC checksum verification failed") as error:
            read()
        assert uri in str(error.value)
