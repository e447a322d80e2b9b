"""The interactive dashboard: `streamlit run src/beatlytica/dashboard/app.py`
(or `beatlytica dashboard --serve`). Reads the same figures as the static export."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from beatlytica.dashboard.charts import STATE_TILES
from beatlytica.dashboard.data import DashboardData, load
from beatlytica.settings import get_settings

st.set_page_config(page_title="Beatlytica", layout="wide")


@st.cache_data(ttl=300)
def figures() -> DashboardData:
    return load(get_settings())


data = figures()
st.title("Beatlytica")
if not data.daily_streams:
    st.warning("The marts are empty: run the pipeline (make demo) first.")
    st.stop()

daily = pd.DataFrame(data.daily_streams)
dau = pd.DataFrame(data.active_users_daily)
kpi = st.columns(5)
kpi[0].metric("Streams", f"{data.total_streams:,}")
kpi[1].metric("Days", len(daily))
kpi[2].metric("Peak daily active users", f"{int(dau['active_users'].max()):,}")
kpi[3].metric("Upgrades", f"{sum(r['upgrades'] for r in data.conversions):,}")
kpi[4].metric("Churned users", f"{sum(r['churned_users'] for r in data.churn):,}")

left, right = st.columns(2)
left.subheader("Streams per day")
left.line_chart(daily, x="stream_date", y="streams")
right.subheader("Streams per hour")
right.line_chart(pd.DataFrame(data.hourly_streams), x="stream_hour", y="streams")

left, right = st.columns(2)
left.subheader(f"Top songs, {data.top_day}")
left.dataframe(pd.DataFrame(data.top_songs), hide_index=True)
right.subheader(f"Top artists, {data.top_day}")
right.bar_chart(pd.DataFrame(data.top_artists), x="artist_name", y="streams", horizontal=True)

left, right = st.columns(2)
left.subheader("Daily active users")
left.line_chart(dau, x="activity_date", y=["active_users", "paid_users", "free_users"])
right.subheader("Conversions and churn per day")
changes = pd.DataFrame(data.conversions).merge(
    pd.DataFrame(data.churn), left_on="change_date", right_on="churn_date", how="outer"
)
right.dataframe(
    changes[["change_date", "upgrades", "downgrades", "churned_users"]], hide_index=True
)

st.subheader("Streams by state")
states = pd.DataFrame(
    [{"state": s, "col": c, "row": r, "streams": 0} for s, (c, r) in STATE_TILES.items()]
).set_index("state")
for row in data.streams_by_state:
    if row["state"] in states.index:
        states.loc[row["state"], "streams"] = row["streams"]
tiles = alt.Chart(states.reset_index())
st.altair_chart(
    tiles.mark_rect(cornerRadius=4).encode(
        x=alt.X("col:O", axis=None),
        y=alt.Y("row:O", axis=None),
        color=alt.Color("streams:Q", scale=alt.Scale(scheme="greens")),
        tooltip=["state", "streams"],
    )
    + tiles.mark_text(fontSize=11).encode(x="col:O", y="row:O", text="state"),
    use_container_width=True,
)

left, right = st.columns(2)
left.subheader("Average session length (minutes)")
left.line_chart(pd.DataFrame(data.session_length), x="session_date", y="avg_session_length_min")
right.subheader("Level split by gender")
right.dataframe(pd.DataFrame(data.level_by_gender), hide_index=True)

st.subheader("Data quality: what staging repaired and let through")
st.dataframe(pd.DataFrame(data.data_quality), hide_index=True)
