"""Audit log (admins): who created, started, retried, cancelled, deleted or downloaded which batch, when."""

import datetime as dt

import common
import pandas as pd
import signin
import streamlit as st

from langbatch_core import audit

common.sidebar()
st.title("Audit log")
if not signin.viewer().admin:  # the page is listed for admins only; a stale link lands here
    st.info("Only admins see the audit log.", icon=":material/lock:")
    st.stop()

events = None
with common.shown_errors("Reading the audit log"):
    events = audit.events(common.storage())
if events is None:
    st.stop()
if not events:
    st.info("Nothing recorded yet: creating, starting or downloading a batch adds an event.")
    st.stop()

with st.container(border=True):
    left, middle, right = st.columns(3)
    actors = left.multiselect("Who", sorted({e.actor for e in events}), key="au_actor")
    actions = middle.multiselect("Action", list(audit.ACTIONS), key="au_action")
    batch_id = right.text_input("Batch id contains", key="au_batch").strip()
    first = dt.datetime.fromtimestamp(events[-1].at, dt.UTC).date()
    last = dt.datetime.fromtimestamp(events[0].at, dt.UTC).date()
    days = st.date_input("Days (UTC)", (first, last), key="au_days")

start, end = (days[0], days[-1]) if isinstance(days, tuple | list) and days else (first, last)
since = dt.datetime.combine(start, dt.time(), dt.UTC).timestamp()
until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp()
shown = [
    e
    for e in events
    if (not actors or e.actor in actors)
    and (not actions or e.action in actions)
    and (not batch_id or batch_id in (e.batch_id or ""))
    and since <= e.at < until
]
st.caption(f"{len(shown):,} of {len(events):,} events, newest first. Times are UTC.")
common.table(pd.DataFrame([e.row() for e in shown], columns=list(audit.COLUMNS)), key="au_table")
st.download_button(
    "Download CSV",
    data=lambda: audit.to_csv(shown),
    file_name="langbatch-audit.csv",
    mime="text/csv",
    key="au_csv",
    on_click="ignore",
    disabled=not shown,
)
