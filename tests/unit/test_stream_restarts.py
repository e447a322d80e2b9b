"""How the streaming job's driver restarts a failed topic query itself (no Spark: the
supervisor's policy on stand-in query objects; tests/integration/test_stream.py restarts a real
query through a real broker outage)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from beatlytica.settings import Settings
from spark_jobs.stream_events import Restarts, _supervise, is_data_loss

DATA_LOSS = (
    "[KAFKA_DATA_LOSS.START_OFFSET_RESET] Some data may have been lost because they are not "
    "available in Kafka any more; ... set the source option 'failOnDataLoss' to 'false'."
)


def test_the_wait_doubles_up_to_its_cap_and_the_count_has_a_limit() -> None:
    restarts = Restarts(limit=7, backoff_s=5, max_backoff_s=60)
    delays = [restarts.delay("listen_events", "TimeoutException") for _ in range(8)]
    assert delays == [5, 10, 20, 40, 60, 60, 60, None]
    # the other topics keep their own counts
    assert restarts.delay("auth_events", "TimeoutException") == 5


def test_a_completed_batch_starts_the_count_again() -> None:
    restarts = Restarts(limit=2, backoff_s=1)
    assert restarts.delay("listen_events", "x") == 1
    assert restarts.delay("listen_events", "x") == 2
    assert restarts.healthy("listen_events") is True
    assert restarts.healthy("listen_events") is False  # nothing to end any more
    assert restarts.delay("listen_events", "x") == 1


def test_data_loss_is_never_retried() -> None:
    assert is_data_loss(DATA_LOSS)
    assert not is_data_loss("org.apache.kafka.common.errors.TimeoutException: Timed out")
    assert Restarts(limit=5, backoff_s=1).delay("listen_events", DATA_LOSS) is None
    assert Restarts(limit=0, backoff_s=1).delay("listen_events", "x") is None


class Query:
    """A StreamingQuery as the supervisor sees it: it fails with ``error``, or reports a batch
    and then ends (availableNow)."""

    def __init__(self, name: str, error: str | None) -> None:
        self.name = name
        self.error = error
        self.ticks = 0
        self.status = {"isTriggerActive": False}

    @property
    def isActive(self) -> bool:
        self.ticks += 1
        return self.ticks <= 3

    @property
    def lastProgress(self) -> Any:
        return None if self.error else {"batchId": 1}

    def exception(self) -> Any:
        return self.error if self.ticks > 3 else None

    def stop(self) -> None:
        pass


def supervise(outcomes: list[str | None], limit: int = 3) -> tuple[int, list[str | None]]:
    """Run the supervisor on a query failing with each of ``outcomes`` in turn (None: it
    completes a batch and ends); returns the exit code and the outcomes that ran."""
    queue: Iterator[str | None] = iter(outcomes)
    ran: list[str | None] = []

    def start(name: str) -> Query:
        outcome = next(queue)
        ran.append(outcome)
        return Query(name, outcome)

    settings = Settings(stream_query_restarts=limit, stream_restart_backoff_seconds=0.01)
    first = start("listen_events")
    code = _supervise([first], settings, poll_s=0.001, restart=start)
    return code, ran


def test_a_failed_query_is_restarted_until_it_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="beatlytica.stream")
    code, ran = supervise(["Timed out", "Timed out", None])
    assert code == 0 and ran == ["Timed out", "Timed out", None]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.fields["failures_in_a_row"] for r in warnings] == [1, 2]  # type: ignore[attr-defined]
    assert all("restarting it from its checkpoint" in r.getMessage() for r in warnings)
    assert any(r.getMessage() == "listen_events: healthy again" for r in caplog.records)


def test_too_many_failures_in_a_row_exit_1(caplog: pytest.LogCaptureFixture) -> None:
    code, ran = supervise(["Timed out"] * 10, limit=3)
    assert code == 1 and len(ran) == 4  # the first run and three restarts
    assert caplog.records[-1].getMessage() == "streaming failed"


def test_data_loss_exits_1_at_once() -> None:
    code, ran = supervise([DATA_LOSS, None])
    assert code == 1 and ran == [DATA_LOSS]


def test_no_restarts_without_a_way_to_restart() -> None:
    settings = Settings(stream_query_restarts=3, stream_restart_backoff_seconds=0.01)
    assert _supervise([Query("listen_events", "Timed out")], settings, poll_s=0.001) == 1
