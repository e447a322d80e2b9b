"""`beatlytica load` from a gs:// lake (fake-gcs-server): the committed files stream into DuckDB
as pyarrow record batches, with the same result as a local lake."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import pytest

from beatlytica.loader import load
from beatlytica.settings import Settings
from tests.conftest import create_bucket
from tests.unit.test_duckdb_loader import HOUR, TOPIC, Lake, event, rows

pytestmark = pytest.mark.integration


def test_a_gs_lake_loads_its_committed_events_once_each(
    gcs_emulator: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("BEATLYTICA_")]:
        monkeypatch.delenv(name)
    create_bucket(gcs_emulator, "beatlytica-load")
    lake = Lake("gs://beatlytica-load/lake", gcs_emulator)
    h = HOUR
    lake.write(
        h,
        "part-0.parquet",
        [
            event("e1", h + timedelta(minutes=10), 10, artist="first"),
            event("e2", h + timedelta(minutes=20), 11),
        ],
    )
    lake.write(
        h,
        "part-1.parquet",
        [
            event("e1", h + timedelta(minutes=10), 50, artist="again"),
            event("e3", h + timedelta(minutes=30), 12),
        ],
    )
    lake.write(h, "part-2-of-a-killed-batch.parquet", [event("e4", h)], commit=False)
    lake.write(h + timedelta(hours=1), "part-3.parquet", [event("e5", h + timedelta(minutes=61))])
    settings = Settings(
        home=tmp_path / "home",
        lake_uri=lake.uri,
        gcs_endpoint=gcs_emulator,
        duckdb_path=tmp_path / "w.duckdb",
        topics=TOPIC,
    )

    [result] = load(settings, (TOPIC,), h, h + timedelta(hours=2))

    assert (result.files, result.rows) == (3, 4)
    loaded = rows(settings)
    assert sorted(loaded) == ["e1", "e2", "e3", "e5"]
    assert (loaded["e1"]["artist"], loaded["e1"]["kafka_offset"]) == ("first", 10)
    assert (loaded["e5"]["event_date"], loaded["e5"]["event_hour"]) == (date(2026, 11, 1), 6)
