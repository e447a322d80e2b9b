"""The static dashboard's SVG charts carry their figures."""

from __future__ import annotations

import re

from beatlytica.dashboard import charts


def test_tile_map_has_every_state_and_dc() -> None:
    svg = charts.tile_map({"CA": 120, "NY": 80}, "streams by state")
    states = re.findall(r'data-state="(\w\w)" data-value="([\d.]+)"', svg)
    assert len(states) == 51 and len(charts.STATE_TILES) == 51
    assert ("CA", "120") in states and ("TX", "0") in states
    assert len(set(charts.STATE_TILES.values())) == 51  # no two tiles overlap


def test_bars_and_points_carry_their_values() -> None:
    bars = charts.bar_chart(["Song A", "Song <B>"], [30, 12], "top songs")
    assert 'data-label="Song &lt;B&gt;" data-value="12"' in bars
    assert "<title>Song A: 30</title>" in bars
    line = charts.line_chart(["2026-11-01", "2026-11-02"], [1500, 1750.5], "streams")
    assert re.findall(r'data-value="([\d.]+)"', line) == ["1500", "1750.5"]
    assert "no data" in charts.line_chart([], [], "empty")
