"""`beatlytica generate` with the files sink, and its errors, through the real command."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from beatlytica.events import TOPIC_NAMES
from tests.helpers import BEATLYTICA, cli_env, run_cli

WINDOW = ("--start", "2026-11-01T00:00:00", "--end", "2026-11-01T06:00:00")


def _read(out: Path) -> dict[str, list[str]]:
    return {t: (out / f"{t}.jsonl").read_text().splitlines() for t in TOPIC_NAMES}


def test_files_sink_writes_one_jsonl_per_topic(tmp_path: Path) -> None:
    result = run_cli(
        "generate",
        "--sink",
        "files",
        "--out",
        str(tmp_path),
        "--users",
        "300",
        *WINDOW,
        "--seed",
        "5",
    )
    assert result.returncode == 0, result.stderr
    lines = _read(tmp_path)
    assert all(lines[t] for t in ("listen_events", "page_view_events"))
    summary = json.loads(result.stderr.strip().splitlines()[-1])
    assert summary["message"] == "generated"
    assert summary["events"] == sum(len(v) for v in lines.values())
    for topic, topic_lines in lines.items():
        assert summary.get(f"delivered.{topic}", 0) == len(topic_lines)
        for line in topic_lines:
            assert isinstance(json.loads(line)["ts"], int)


def test_rerun_replaces_the_files(tmp_path: Path) -> None:
    args = ("generate", "--sink", "files", "--out", str(tmp_path), "--users", "100", *WINDOW)
    assert run_cli(*args).returncode == 0
    first = _read(tmp_path)
    assert run_cli(*args).returncode == 0
    assert _read(tmp_path) == first


def test_topics_setting_limits_what_is_written(tmp_path: Path) -> None:
    result = run_cli(
        "generate",
        "--sink",
        "files",
        "--out",
        str(tmp_path),
        "--users",
        "100",
        *WINDOW,
        BEATLYTICA_TOPICS="listen_events",
    )
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["listen_events.jsonl"]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ("--sink", "files", "--out", "x", "--start", "2026-11-02", "--end", "2026-11-01"),
            {},
            "must be after start",
        ),
        (
            ("--sink", "files", "--start", "2026-11-01", "--end", "2026-11-02"),
            {},
            "--sink files needs --out",
        ),
        (
            ("--sink", "files", "--out", "x", "--start", "yesterday", "--end", "2026-11-02"),
            {},
            "expected an ISO-8601 time",
        ),
        (
            ("--sink", "files", "--out", "x", "--start", "2026-11-01"),
            {},
            "--end is required unless --realtime",
        ),
        (
            ("--sink", "files", "--out", "x", *WINDOW),
            {"BEATLYTICA_TOPICS": "songs"},
            "BEATLYTICA_TOPICS: Value error, topics must be a non-empty subset",
        ),
        (
            ("--sink", "files", "--out", "x", *WINDOW),
            {"BEATLYTICA_LOG_LEVEL": "loud"},
            "BEATLYTICA_LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'",
        ),
        (
            ("--sink", "files", "--out", "x", *WINDOW),
            {"BEATLYTICA_LOG_FORMAT": "xml"},
            "BEATLYTICA_LOG_FORMAT: Input should be 'json' or 'text'",
        ),
    ],
)
def test_bad_configuration_is_one_clear_line(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = run_cli("generate", *args, **env)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr


def test_unknown_sink_is_refused() -> None:
    result = run_cli("generate", "--sink", "s3", *WINDOW)
    assert result.returncode == 2
    assert "invalid choice: 's3'" in result.stderr


def test_realtime_paces_by_the_wall_clock(tmp_path: Path) -> None:
    # two simulated hours at 3600x take about two seconds
    started = time.monotonic()
    result = run_cli(
        "generate",
        "--sink",
        "files",
        "--out",
        str(tmp_path),
        "--users",
        "300",
        "--start",
        "2026-11-01T18:00:00",
        "--end",
        "2026-11-01T20:00:00",
        "--realtime",
        "--speed",
        "3600",
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    stamps = [json.loads(line)["ts"] for line in _read(tmp_path)["page_view_events"]]
    simulated_s = (max(stamps) - 1_793_556_000_000) / 1000  # since 2026-11-01T18:00Z
    assert elapsed >= simulated_s / 3600 * 0.95


def test_sigterm_stops_gracefully_and_flushes(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            str(BEATLYTICA),
            "generate",
            "--sink",
            "files",
            "--out",
            str(tmp_path),
            "--users",
            "500",
            "--realtime",
            "--speed",
            "600",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    time.sleep(3)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    summary = json.loads(stderr.strip().splitlines()[-1])
    assert summary["stopped_early"] is True and summary["events"] > 0
    written = sum(len(v) for v in _read(tmp_path).values())
    assert written == summary["events"]  # every event counted was flushed, whole lines only
    for line in _read(tmp_path)["page_view_events"]:
        json.loads(line)
