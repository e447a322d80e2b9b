"""Logging: human lines on a terminal, one JSON object per line everywhere else.

Structured fields go in ``extra={"fields": {...}}``; the JSON formatter puts them at the top
level of the line, so Cloud Logging and ``jq`` see them as fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from beatlytica.settings import LogSettings


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
    """Configure the root logger once per process, from BEATLYTICA_LOG_LEVEL and
    BEATLYTICA_LOG_FORMAT (settings) unless the arguments say otherwise. An invalid value
    raises pydantic's ValidationError, which names the variable."""
    config = LogSettings()
    if json_lines is None:
        json_lines = config.log_format == "json" if config.log_format else not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_lines else TextFormatter("%(asctime)s %(levelname)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or config.log_level)
