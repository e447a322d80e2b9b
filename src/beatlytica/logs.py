"""Logging: human lines on a terminal, one JSON object per line everywhere else.

Structured fields go in ``extra={"fields": {...}}``; the JSON formatter puts them at the top
level of the line, so Cloud Logging and ``jq`` see them as fields.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


def setup_logging(level: str | None = None, *, json_lines: bool | None = None) -> None:
    """Configure the root logger once per process (BEATLYTICA_LOG_FORMAT=json|text overrides)."""
    fmt = os.environ.get("BEATLYTICA_LOG_FORMAT")
    if json_lines is None:
        json_lines = fmt == "json" if fmt else not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_lines else TextFormatter("%(asctime)s %(levelname)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("BEATLYTICA_LOG_LEVEL", "INFO"))
