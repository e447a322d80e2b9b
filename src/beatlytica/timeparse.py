"""Parsing of the time values that appear in settings and on the command line."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_INTERVAL = re.compile(r"^\s*(\d+)\s*(second|minute|hour)s?\s*$")
AVAILABLE_NOW = "availableNow"


def parse_trigger(value: str) -> str | None:
    """``availableNow`` -> None; ``30 seconds`` -> ``30 seconds`` (Spark's processingTime form).

    Raises ValueError naming what was expected for anything else.
    """
    if value == AVAILABLE_NOW:
        return None
    match = _INTERVAL.match(value)
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"stream trigger must be {AVAILABLE_NOW!r} or an interval like '30 seconds', "
            f"found {value!r}"
        )
    return f"{int(match.group(1))} {match.group(2)}s"


def parse_utc(value: str) -> datetime:
    """An ISO-8601 date or date-time; naive values are taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"expected an ISO-8601 time such as 2026-11-01T00:00:00, found {value!r}"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def to_epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
