"""Drive a simulation into a sink: as fast as possible or paced against the wall clock,
with progress on a terminal (plain log lines otherwise) and a graceful stop on SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from beatlytica.generator.simulation import Simulation
from beatlytica.generator.sinks import Sink, SinkReport

log = logging.getLogger(__name__)

LOG_EVERY_S = 10.0
#: while a real-time run waits for its next event, the sink serves its own work (Kafka delivery
#: reports) in steps this long, and a stop request is seen within one step
IDLE_STEP_S = 0.2


@dataclass
class RunResult:
    produced: Counter[str]
    skipped: Counter[str]
    report: SinkReport
    seconds: float
    stopped_early: bool

    @property
    def events(self) -> int:
        return sum(self.produced.values())


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` instead of killing the process (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for s in previous:
        signal.signal(s, lambda *_: stop.set())
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run(
    simulation: Simulation,
    sink: Sink,
    topics: tuple[str, ...],
    *,
    realtime: bool = False,
    speed: float = 1.0,
    stop: threading.Event | None = None,
    progress: bool | None = None,
) -> RunResult:
    """Feed the events of ``topics`` from ``simulation`` to ``sink`` (the others are counted
    as skipped); close the sink whatever happens.

    ``realtime`` holds each event back until the wall clock reaches its simulated time
    (``speed`` simulated seconds per real second, counted from the simulation's start); the
    sink's ``wait`` fills the pauses, so a Kafka sink serves its delivery reports meanwhile.
    """
    stop = stop or threading.Event()
    produced: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    wanted = frozenset(topics)
    show_bar = sys.stderr.isatty() if progress is None else progress
    started = time.monotonic()
    origin_ms = simulation.start_ms
    next_log = started + LOG_EVERY_S
    bar = _ProgressBar(simulation) if show_bar else None
    stopped_early = False
    try:
        with stop_on_signals(stop):
            write, idle = sink.write, sink.wait
            for n, (topic, key, line) in enumerate(simulation, 1):
                if realtime:
                    due = started + (simulation.clock_ms - origin_ms) / 1000.0 / speed
                    while (wait := due - time.monotonic()) > 0 and not stop.is_set():
                        idle(min(wait, IDLE_STEP_S))
                if topic not in wanted:
                    skipped[topic] += 1
                    continue
                write(topic, key, line)
                produced[topic] += 1
                if n & 0x3FFF == 0 or realtime:
                    if stop.is_set():
                        stopped_early = True
                        break
                    now = time.monotonic()
                    if bar is not None:
                        bar.update(produced, now - started)
                    elif now >= next_log:
                        _log_progress(produced, now - started, simulation.clock_ms)
                        next_log = now + LOG_EVERY_S
    finally:
        report = sink.close()
        if bar is not None:
            bar.close(produced, time.monotonic() - started)
    return RunResult(produced, skipped, report, time.monotonic() - started, stopped_early)


def _log_progress(produced: Counter[str], seconds: float, clock_ms: int) -> None:
    total = sum(produced.values())
    log.info(
        "generating",
        extra={
            "fields": {
                "events": total,
                "events_per_s": round(total / max(seconds, 1e-9)),
                "simulated_ms": clock_ms,
                **produced,
            }
        },
    )


class _ProgressBar:
    """A rich progress bar over simulated time (unbounded runs show a spinner)."""

    def __init__(self, simulation: Simulation) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.simulation = simulation
        self.progress = Progress(
            TextColumn("[bold]generate"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[rate]} ev/s"),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            transient=False,
        )
        span = simulation.end_ms - simulation.start_ms
        self.task = self.progress.add_task(
            "generate", total=None if span == float("inf") else span, rate=0, counts=""
        )
        self.progress.start()

    def update(self, produced: Counter[str], seconds: float) -> None:
        total = sum(produced.values())
        self.progress.update(
            self.task,
            completed=self.simulation.clock_ms - self.simulation.start_ms,
            rate=f"{total / max(seconds, 1e-9):,.0f}",
            counts=" ".join(f"{t.split('_')[0]}={c:,}" for t, c in sorted(produced.items())),
        )

    def close(self, produced: Counter[str], seconds: float) -> None:
        self.update(produced, seconds)
        self.progress.stop()
