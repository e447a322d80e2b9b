"""Files derived from the event model for the tools that cannot import it: the Helm chart reads
the topic list from ``charts/beatlytica/files/topics.json``, dbt from the ``lake_topics()``
macro. They are committed (the chart and the dbt image are built from the tree) and rewritten
by ``beatlytica codegen``; ``beatlytica codegen --check`` (and a unit test) fails when one is
stale, naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from beatlytica.events import TOPIC_NAMES

HEADER = "generated from src/beatlytica/events.py by `beatlytica codegen`; do not edit"


def chart_topics() -> str:
    """The event topics, in the model's order, as the chart's files/topics.json."""
    return json.dumps({"_comment": HEADER, "topics": list(TOPIC_NAMES)}, indent=2) + "\n"


def dbt_lake_topics() -> str:
    """A dbt macro returning the event topics (one raw table and staging model each)."""
    names = ", ".join(f"'{name}'" for name in TOPIC_NAMES)
    return (
        f"{{#- {HEADER} -#}}\n"
        "{% macro lake_topics() %}\n"
        "    {#- the event topics: each has a raw table (source lake) and a stg_<topic> model -#}\n"
        f"    {{{{ return([{names}]) }}}}\n"
        "{% endmacro %}\n"
    )


#: path (relative to the repository root) -> its content
FILES: dict[str, Callable[[], str]] = {
    "charts/beatlytica/files/topics.json": chart_topics,
    "dbt/macros/lake_topics.sql": dbt_lake_topics,
}


def stale(root: Path) -> list[str]:
    """The generated files under ``root`` whose content differs from their generator's."""
    return [
        path
        for path, content in FILES.items()
        if not (root / path).exists() or (root / path).read_text() != content()
    ]


def write(root: Path) -> list[str]:
    """Rewrite the stale generated files under ``root``; the paths written."""
    written = stale(root)
    for path in written:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(FILES[path]())
    return written
