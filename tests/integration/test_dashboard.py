"""The dashboard shows the warehouse's figures: the static export rendered by headless
Chromium, and the Streamlit app run by Streamlit's own test harness."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.helpers import ROOT, run_cli

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Figures(HTMLParser):
    """Collects data-kpi texts, data-state values and bar labels from the rendered DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.kpis: dict[str, str] = {}
        self.states: dict[str, float] = {}
        self.bars: dict[str, float] = {}
        #: the rows (cell texts) of each section's tables, by section id
        self.tables: dict[str, list[list[str]]] = {}
        self._kpi: str | None = None
        self._section: str | None = None
        self._cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "data-kpi" in a:
            self._kpi = a["data-kpi"]
        if "data-state" in a:
            self.states[str(a["data-state"])] = float(a["data-value"] or 0)
        if tag == "rect" and "data-label" in a:
            self.bars[str(a["data-label"])] = float(a["data-value"] or 0)
        if tag == "section":
            self._section = a.get("id")
        if tag == "tr" and self._section:
            self.tables.setdefault(self._section, []).append([])
        self._cell = tag in ("td", "th")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._cell = False

    def handle_data(self, data: str) -> None:
        if self._cell and self._section:
            self.tables[self._section][-1].append(data)
        if self._kpi and data.strip() and data.strip()[0].isdigit():
            self.kpis[self._kpi] = data.strip()
            self._kpi = None


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is installed by `make tools`")
def test_the_export_shows_the_demo_figures_in_chromium(
    built_warehouse: dict[str, Any], tmp_path: Path
) -> None:
    page = tmp_path / "dashboard.html"
    result = run_cli("dashboard", "--export", str(page), **built_warehouse["env"])
    assert result.returncode == 0, result.stderr
    dom = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    figures = Figures()
    figures.feed(dom)

    db = built_warehouse["duckdb_path"]
    assert figures.kpis["streams"] == f"{built_warehouse['produced']['listen_events']:,}"
    by_state = dict(
        query(db, "select state, sum(streams) from main.mart_streams_by_state group by state")
    )
    assert {s: v for s, v in figures.states.items() if v} == {
        s: float(v) for s, v in by_state.items()
    }
    (top_day,) = query(
        db, "select stream_date from main.mart_daily_streams order by streams desc limit 1"
    )[0]
    song, artist, streams = query(
        db,
        "select song_title, artist_name, streams from main.mart_top_songs_daily "
        f"where song_rank = 1 and stream_date = date '{top_day}'",
    )[0]
    assert figures.bars[f"{song} — {artist}"] == streams
    peak_dau = query(db, "select max(active_users) from main.mart_active_users_daily")[0][0]
    assert figures.kpis["dau"] == f"{peak_dau:,}"
    # what staging repaired, per topic, as the data-quality mart counts it
    head, *rows = figures.tables["data-quality"]
    shown = {r[0]: dict(zip(head[1:], map(int, r[1:]), strict=True)) for r in rows}
    counted = query(
        db,
        "select topic, sum(events), sum(user_agents_unquoted), sum(songs_repaired) "
        "from main.mart_data_quality_daily group by topic",
    )
    figures_shown = {
        t: (v["events"], v["user_agents_unquoted"], v["songs_repaired"]) for t, v in shown.items()
    }
    assert figures_shown == {t: (e, u, r) for t, e, u, r in counted}
    # the generator quotes most user agents and garbles some songs, as Eventsim does
    assert shown["listen_events"]["user_agents_unquoted"] > 0
    assert shown["listen_events"]["songs_repaired"] > 0


def test_the_streamlit_app_shows_the_same_figures(
    built_warehouse: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    from beatlytica.settings import get_settings

    for name, value in built_warehouse["env"].items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        app = AppTest.from_file(str(ROOT / "src/beatlytica/dashboard/app.py"), default_timeout=60)
        app.run()
    finally:
        get_settings.cache_clear()
    assert not app.exception, app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Streams"] == f"{built_warehouse['produced']['listen_events']:,}"
    assert "Streams by state" in [h.value for h in app.subheader]
    top = app.dataframe[0].value
    assert list(top.columns)[:3] == ["song_rank", "song_title", "artist_name"]
    quality = app.dataframe[-1].value
    assert list(quality.columns)[:3] == ["topic", "events", "artists_repaired"]
    assert (
        int(quality.set_index("topic").loc["listen_events", "events"])
        == (built_warehouse["produced"]["listen_events"])
    )
