"""Self-contained SVG charts for the static dashboard export (no JavaScript, no network).

Pure functions from figures to SVG text, so the export opens anywhere, offline, and its
numbers can be checked in the page itself (every bar and point carries a <title>).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 640, 220
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 56, 28, 12
COLOR = "#1db954"

#: a tile grid map of the US states (column, row): every state the same size, like a statebin
STATE_TILES: dict[str, tuple[int, int]] = {
    "AK": (0, 0),
    "ME": (11, 0),
    "VT": (10, 1),
    "NH": (11, 1),
    "WA": (1, 2),
    "ID": (2, 2),
    "MT": (3, 2),
    "ND": (4, 2),
    "MN": (5, 2),
    "IL": (6, 2),
    "WI": (7, 2),
    "MI": (8, 2),
    "NY": (9, 2),
    "RI": (10, 2),
    "MA": (11, 2),
    "OR": (1, 3),
    "NV": (2, 3),
    "WY": (3, 3),
    "SD": (4, 3),
    "IA": (5, 3),
    "IN": (6, 3),
    "OH": (7, 3),
    "PA": (8, 3),
    "NJ": (9, 3),
    "CT": (10, 3),
    "CA": (1, 4),
    "UT": (2, 4),
    "CO": (3, 4),
    "NE": (4, 4),
    "MO": (5, 4),
    "KY": (6, 4),
    "WV": (7, 4),
    "VA": (8, 4),
    "MD": (9, 4),
    "DE": (10, 4),
    "AZ": (2, 5),
    "NM": (3, 5),
    "KS": (4, 5),
    "AR": (5, 5),
    "TN": (6, 5),
    "NC": (7, 5),
    "SC": (8, 5),
    "DC": (9, 5),
    "OK": (4, 6),
    "LA": (5, 6),
    "MS": (6, 6),
    "AL": (7, 6),
    "GA": (8, 6),
    "HI": (0, 7),
    "TX": (4, 7),
    "FL": (9, 7),
}


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _frame(body: list[str], label: str, width: int = WIDTH, height: int = HEIGHT) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {width} {height}" width="100%">' + "".join(body) + "</svg>"
    )


def line_chart(labels: Sequence[str], values: Sequence[float], label: str) -> str:
    """A line over categories (dates or hours); each point has a <title> with its figure."""
    if not values:
        return _frame(['<text x="10" y="20">no data</text>'], label)
    top = max(max(values), 1)
    plot_w, plot_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(len(values) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return PAD_LEFT + i * step, PAD_TOP + plot_h * (1 - v / top)

    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(values)))
    body = [
        f'<text x="4" y="{PAD_TOP + 8}" font-size="11">{_fmt(top)}</text>',
        f'<text x="4" y="{PAD_TOP + plot_h}" font-size="11">0</text>',
        f'<polyline fill="none" stroke="{COLOR}" stroke-width="2" points="{points}"/>',
    ]
    for i, (name, value) in enumerate(zip(labels, values, strict=True)):
        x, y = xy(i, value)
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLOR}" data-label="{escape(name)}" '
            f'data-value="{value}"><title>{escape(name)}: {_fmt(value)}</title></circle>'
        )
    ticks = sorted({0, len(labels) // 2, len(labels) - 1})
    for i in ticks:
        x, _ = xy(i, 0)
        anchor = "start" if i == 0 else "end" if i == len(labels) - 1 else "middle"
        body.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 8}" font-size="11" text-anchor="{anchor}">'
            f"{escape(labels[i])}</text>"
        )
    return _frame(body, label)


def bar_chart(labels: Sequence[str], values: Sequence[float], label: str) -> str:
    """Horizontal bars, largest first as given; labels and figures written on the chart."""
    row_h = 22
    height = max(len(values), 1) * row_h + 8
    top = max(max(values, default=1), 1)
    body = []
    for i, (name, value) in enumerate(zip(labels, values, strict=True)):
        y = 4 + i * row_h
        w = (WIDTH - 300) * value / top
        body.append(
            f'<text x="0" y="{y + 15}" font-size="12">{escape(name[:40])}</text>'
            f'<rect x="250" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{COLOR}" '
            f'data-label="{escape(name)}" data-value="{value}">'
            f"<title>{escape(name)}: {_fmt(value)}</title></rect>"
            f'<text x="{254 + w:.1f}" y="{y + 15}" font-size="12">{_fmt(value)}</text>'
        )
    return _frame(body or ['<text x="10" y="20">no data</text>'], label, height=height)


def tile_map(values: dict[str, float], label: str) -> str:
    """The US as a grid of state tiles shaded by value."""
    size, gap = 50, 4
    top = max(max(values.values(), default=1), 1)
    body = []
    for state, (col, row) in STATE_TILES.items():
        value = values.get(state, 0)
        shade = 0.12 + 0.88 * (value / top)
        x, y = col * (size + gap), row * (size + gap)
        body.append(
            f'<g data-state="{state}" data-value="{value}">'
            f'<rect x="{x}" y="{y}" width="{size}" height="{size}" rx="4" fill="{COLOR}" '
            f'fill-opacity="{shade:.2f}"><title>{state}: {_fmt(value)}</title></rect>'
            f'<text x="{x + size / 2}" y="{y + 22}" font-size="12" text-anchor="middle">'
            f"{state}</text>"
            f'<text x="{x + size / 2}" y="{y + 38}" font-size="10" text-anchor="middle">'
            f"{_fmt(value)}</text></g>"
        )
    return _frame(body, label, width=12 * (size + gap), height=8 * (size + gap))
