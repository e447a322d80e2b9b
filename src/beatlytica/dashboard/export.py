"""The static dashboard: one self-contained HTML page (inline SVG, no scripts, no network)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from beatlytica.dashboard import charts
from beatlytica.dashboard.data import DATA_QUALITY_COLUMNS, DashboardData, Rows

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#191414;max-width:1400px}
h1{margin:0 0 4px} .sub{color:#666;margin-bottom:20px}
.kpis{display:flex;gap:16px;flex-wrap:wrap;margin-bottom:20px}
.kpi{background:#f4f4f4;border-radius:8px;padding:12px 18px;min-width:160px}
.kpi b{display:block;font-size:26px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:24px}
section{border:1px solid #e3e3e3;border-radius:8px;padding:12px 16px}
h2{font-size:16px;margin:0 0 8px} table{border-collapse:collapse;font-size:13px}
td,th{padding:3px 10px;text-align:right} td:first-child,th:first-child{text-align:left}
"""


def _kpi(label: str, value: str, key: str) -> str:
    return f'<div class="kpi" data-kpi="{key}">{escape(label)}<b>{escape(value)}</b></div>'


def _section(title: str, body: str, key: str) -> str:
    return f'<section id="{key}"><h2>{escape(title)}</h2>{body}</section>'


def _table(rows: Rows, columns: list[str]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(r[c]))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(data: DashboardData, title: str = "Beatlytica") -> str:
    days = [str(r["stream_date"]) for r in data.daily_streams]
    dau = [r["active_users"] for r in data.active_users_daily]
    kpis = "".join(
        [
            _kpi("Streams", f"{data.total_streams:,}", "streams"),
            _kpi("Days", f"{len(days)}", "days"),
            _kpi("Peak daily active users", f"{max(dau, default=0):,}", "dau"),
            _kpi("Upgrades", f"{sum(r['upgrades'] for r in data.conversions):,}", "upgrades"),
            _kpi("Churned users", f"{sum(r['churned_users'] for r in data.churn):,}", "churn"),
        ]
    )
    sessions = data.session_length
    panels = [
        _section(
            "Streams per day",
            charts.line_chart(days, [r["streams"] for r in data.daily_streams], "streams per day"),
            "daily-streams",
        ),
        _section(
            "Streams per hour",
            charts.line_chart(
                [str(r["stream_hour"])[:13] for r in data.hourly_streams],
                [r["streams"] for r in data.hourly_streams],
                "streams per hour",
            ),
            "hourly-streams",
        ),
        _section(
            f"Top songs, {data.top_day}",
            charts.bar_chart(
                [f"{r['song_title']} — {r['artist_name']}" for r in data.top_songs],
                [r["streams"] for r in data.top_songs],
                "top songs",
            ),
            "top-songs",
        ),
        _section(
            f"Top artists, {data.top_day}",
            charts.bar_chart(
                [r["artist_name"] for r in data.top_artists],
                [r["streams"] for r in data.top_artists],
                "top artists",
            ),
            "top-artists",
        ),
        _section(
            "Daily active users",
            charts.line_chart(
                [str(r["activity_date"]) for r in data.active_users_daily],
                dau,
                "daily active users",
            )
            + _table(data.active_users_monthly, ["activity_month", "active_users"]),
            "active-users",
        ),
        _section(
            "Free to paid conversions, downgrades and churn per day",
            _table(
                [
                    {
                        "day": c["change_date"],
                        "upgrades": c["upgrades"],
                        "downgrades": c["downgrades"],
                    }
                    for c in data.conversions
                ],
                ["day", "upgrades", "downgrades"],
            )
            + _table(
                [{"day": c["churn_date"], "churned users": c["churned_users"]} for c in data.churn],
                ["day", "churned users"],
            ),
            "conversions",
        ),
        _section(
            "Streams by state",
            charts.tile_map(
                {r["state"]: r["streams"] for r in data.streams_by_state}, "streams by state"
            ),
            "states",
        ),
        _section(
            "Average session length (minutes)",
            charts.line_chart(
                [str(r["session_date"]) for r in sessions],
                [round(float(r["avg_session_length_min"]), 1) for r in sessions],
                "average session length",
            ),
            "sessions",
        ),
        _section(
            "Level split by gender",
            _table(
                [
                    {**r, "share": f"{float(r['share_of_gender']):.1%}"}
                    for r in data.level_by_gender
                ],
                ["gender", "level", "users", "share"],
            ),
            "gender",
        ),
        _section(
            "Data quality: what staging repaired and let through",
            _table(data.data_quality, ["topic", *DATA_QUALITY_COLUMNS]),
            "data-quality",
        ),
    ]
    period = f"{days[0]} to {days[-1]}" if days else "no data yet"
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}"
        f"</title><style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<div class='sub'>Streams, listeners and subscriptions, {escape(period)}</div>"
        f"<div class='kpis'>{kpis}</div><div class='grid'>{''.join(panels)}</div></body></html>"
    )


def export(data: DashboardData, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
    return path
