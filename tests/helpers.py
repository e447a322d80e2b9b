"""Small helpers for running the real ``beatlytica`` command in tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEATLYTICA = Path(sys.executable).parent / "beatlytica"


def cli_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEATLYTICA_")}
    env["BEATLYTICA_LOG_FORMAT"] = "json"
    env.update(overrides)
    return env


def run_cli(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BEATLYTICA), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(**env),
        cwd=ROOT,
    )
