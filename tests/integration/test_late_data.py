"""A late event, end to end on the real components: Kafka, `beatlytica stream`, the loader and
DuckDB. An interval is loaded once it is complete; an event of it that arrives afterwards lands
in a new committed file of the interval; `beatlytica load --late` (each hourly run's
reload_late) finds the interval changed since its load and reloads it, and reconcile agrees
again. With nothing late, it exits NOTHING_LATE (Airflow skips the rebuild)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from beatlytica.completeness import completeness
from beatlytica.errors import NOTHING_LATE
from beatlytica.events import TOPIC_NAMES, event_id
from beatlytica.kafka_local import LocalKafka
from beatlytica.reconcile import lake_fingerprint
from beatlytica.settings import Settings
from beatlytica.warehouse import connect
from tests.helpers import run_cli
from tests.integration.test_stream import generated, produce_raw, read_lake, stream_env

pytestmark = pytest.mark.integration

WINDOW = ("--users", "60", "--start", "2026-11-01T00:00:00", "--end", "2026-11-01T12:00:00")
START, END = datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC)
INTERVAL = ("--start", START.isoformat(), "--end", END.isoformat())
LOOKBACK = ("--start", "2026-11-01T00:00:00", "--end", "2026-11-01T12:00:00")


def lake_and_raw(settings: Settings) -> tuple[tuple[int, int], tuple[int, int]]:
    """Reconcile's two fingerprints of the interval (events, id digest): lake and raw table."""
    warehouse = connect(settings)
    try:
        raw = warehouse.fingerprint("listen_events", START, END)
    finally:
        warehouse.close()
    return lake_fingerprint(settings, "listen_events", START, END), raw


def test_a_late_event_reloads_its_interval(kafka_broker: LocalKafka, tmp_path: Path) -> None:
    kafka_broker.reset_topics({t: 3 for t in TOPIC_NAMES})
    home = tmp_path / "home"
    env = stream_env(kafka_broker, home, BEATLYTICA_TOPICS="listen_events")
    settings = Settings(home=home, topics=("listen_events",))
    assert run_cli("generate", "--sink", "kafka", *WINDOW, **env).returncode == 0
    assert run_cli("stream", timeout=600, **env).returncode == 0

    # the stream is past the interval in event time; and past the window's last hour, which
    # no later event follows, in wall-clock time: it read all of Kafka long after it
    assert completeness(settings, END).complete
    last = completeness(settings, datetime(2026, 11, 1, 12, tzinfo=UTC))
    assert last.complete and last.reason.startswith("every topic read all of Kafka"), last
    loaded = run_cli("load", "--topic", "listen_events", *INTERVAL, **env)
    assert loaded.returncode == 0, loaded.stderr
    rows = json.loads(loaded.stdout)["listen_events"]["rows"]
    assert rows > 0
    nothing = run_cli("load", "--late", *LOOKBACK, **env)
    assert nothing.returncode == NOTHING_LATE and nothing.stdout == "", nothing.stderr

    # a listen of 05:30 that reaches Kafka only now
    listens = generated(tmp_path, *WINDOW)["listen_events"]
    late = {**listens[0], "ts": int(datetime(2026, 11, 1, 5, 30, tzinfo=UTC).timestamp() * 1000)}
    produce_raw(kafka_broker.bootstrap_servers, [("listen_events", json.dumps(late) + "\n")])
    assert run_cli("stream", timeout=600, **env).returncode == 0
    assert event_id("listen_events", late) in {
        r["event_id"] for r in read_lake(settings.lake, "raw", "listen_events")
    }
    lake, raw = lake_and_raw(settings)
    assert (lake[0], raw[0]) == (rows + 1, rows)

    reloaded = run_cli("load", "--late", *LOOKBACK, **env)
    assert reloaded.returncode == 0, reloaded.stderr
    (line,) = reloaded.stdout.splitlines()
    assert json.loads(line) == {
        "topic": "listen_events",
        "start": START.isoformat(),
        "end": END.isoformat(),
        "added_files": 1,
        "removed_files": 0,
        "rows": rows + 1,
    }
    lake, raw = lake_and_raw(settings)
    assert lake == raw and raw[0] == rows + 1
    # and once reloaded, it is not late any more
    assert run_cli("load", "--late", *LOOKBACK, **env).returncode == NOTHING_LATE
