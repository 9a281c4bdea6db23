"""Tables and charts of the Batches page, built from the store's records (no I/O here).

table = tables.batch_table(storage.summaries())   # one row per batch, for st.dataframe
chart = tables.timeline_chart(record)             # Altair: one bar per job, created → last update
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

if TYPE_CHECKING:  # altair takes ~0.25 s to import: imported by the chart that needs it
    import altair as alt

BATCH_COLUMNS = [
    "name",
    "status",
    "progress",
    "succeeded",
    "failed",
    "not run",
    "pending",
    "requests",
    "created",
    "cost",
    "model",
    "connection",
    "id",
    "owner",
    "advanced",
]

# shown in the table (fits 1,400 px); pending, requests and id stay in the data: the details panel shows them
BATCH_SHOWN = ["name", "status", "progress", "succeeded", "failed", "not run", "created", "cost", "model",
               "connection", "advanced"]  # fmt: skip

STATUS_COLORS = {
    "not_started": "#9aa0a6",
    "submitting": "#9aa0a6",
    "validating": "#8ab4f8",
    "in_progress": "#2f6fde",
    "finalizing": "#5e97f6",
    "completed": "#1e8e3e",
    "failed": "#d93025",
    "expired": "#f29900",
    "cancelling": "#a142f4",
    "cancelled": "#80868b",
}


def finished(record: Any) -> int:
    """Requests with a final outcome: succeeded, failed or not run (all but the pending ones)."""
    return (record.succeeded or 0) + (record.failed or 0) + (record.not_run or 0)


def progress(record: Any) -> float:
    """The share of requests with a final outcome (0..1)."""
    return min(1.0, finished(record) / record.request_count) if record.request_count else 0.0


def matching(records: list[Any], needle: str = "", statuses: list[str] | None = None) -> list[Any]:
    """The records whose name, id, model or owner contains ``needle`` (any case) and whose status is
    wanted."""
    needle = needle.strip().lower()
    return [
        r
        for r in records
        if (not statuses or r.status in statuses)
        and (not needle or any(needle in (v or "").lower() for v in (r.name, r.id, r.model, r.owner)))
    ]


def advanced_text(record: Any) -> str:
    """When a ``langbatch worker`` last advanced the batch, and which one (``May 02 14:03 · worker-1``);
    blank if none did."""
    if not record.advanced_at:
        return ""
    when = time.strftime("%b %d %H:%M", time.gmtime(record.advanced_at))
    return f"{when} · {record.advanced_by}" if record.advanced_by else when


def batch_table(records: list[Any]) -> pd.DataFrame:
    """One row per batch (``BatchSummary``s, as ``storage.summaries()`` lists them: newest first) with the
    columns of the Batches table."""
    rows = [
        (
            r.name or "",
            r.status,
            progress(r),
            r.succeeded,
            r.failed,
            r.not_run,
            r.pending,
            r.request_count,
            r.created_at,
            r.estimated_cost_usd,
            r.model or "",
            r.connection or "",
            r.id,
            r.owner or "",
            advanced_text(r),
        )
        for r in records
    ]
    table = pd.DataFrame(rows, columns=BATCH_COLUMNS)
    table["created"] = pd.to_datetime(table["created"], unit="s", utc=True)
    return table


BATCH_COLUMN_CONFIG = {
    "name": st.column_config.TextColumn("name", width=160, pinned=True),
    "id": st.column_config.TextColumn("id", width="small"),
    "model": st.column_config.TextColumn("model", width="small"),
    "connection": st.column_config.TextColumn("connection", width="small"),
    "progress": st.column_config.ProgressColumn(
        "progress", min_value=0.0, max_value=1.0, format="percent", width="small"
    ),
    "status": st.column_config.TextColumn("status", width="small"),
    "created": st.column_config.DatetimeColumn("created (UTC)", format="MMM D, HH:mm"),
    "cost": st.column_config.NumberColumn("est. cost", format="$%.4f", width="small"),
    "advanced": st.column_config.TextColumn(
        "worker (UTC)", width="small", help="When a `langbatch worker` last advanced it, and which one"
    ),
    **{  # counts: narrow, so that the table fits the page at 1,400 px
        name: st.column_config.NumberColumn(name, width="small")
        for name in ("succeeded", "failed", "not run", "pending", "requests")
    },
}


def jobs_table(record: Any) -> pd.DataFrame:
    """The batch's jobs: attempt, provider id, status, requests, the provider's counts, times."""
    rows = [
        {
            "job": job.key,
            "attempt": job.attempt,
            "provider job id": job.provider_job_id or "",
            "status": job.status,
            "requests": job.request_count,
            "completed": (job.request_counts or {}).get("completed"),
            "failed": (job.request_counts or {}).get("failed"),
            "created": pd.to_datetime(job.created_at, unit="s", utc=True),
            "updated": pd.to_datetime(job.updated_at, unit="s", utc=True),
        }
        for job in record.jobs
    ]
    return pd.DataFrame(rows)


JOB_COLUMN_CONFIG = {
    "created": st.column_config.DatetimeColumn("created (UTC)", format="MMM D, HH:mm:ss"),
    "updated": st.column_config.DatetimeColumn("updated (UTC)", format="MMM D, HH:mm:ss"),
}


def timeline_chart(record: Any, now: float | None = None) -> alt.Chart:
    """One bar per job from its creation to its last update (to now while it runs), coloured by status."""
    import altair as alt

    now = now or time.time()
    rows = [
        {
            "job": f"attempt {job.attempt} · {job.key}",
            "status": job.status,
            # epoch ms: Vega parses these (pandas' ISO strings carry nanoseconds, which it rejects)
            "start": int(job.created_at * 1000),
            "end": int(max(now if job.active else job.updated_at, job.created_at + 0.5) * 1000),
            "requests": job.request_count,
        }
        for job in record.jobs
    ]
    data = pd.DataFrame(rows)
    statuses = sorted(set(data["status"]))
    color = alt.Color(
        "status:N",
        scale=alt.Scale(domain=statuses, range=[STATUS_COLORS.get(s, "#9aa0a6") for s in statuses]),
    )
    return (
        alt.Chart(data)
        .mark_bar(cornerRadius=3, height=16)
        .encode(
            x=alt.X("start:T", title=None, axis=alt.Axis(format="%H:%M:%S")),
            x2="end:T",
            y=alt.Y("job:N", title=None, sort=None),
            color=color,
            tooltip=[
                "job",
                "status",
                "requests",
                alt.Tooltip("start:T", format="%H:%M:%S"),
                alt.Tooltip("end:T", format="%H:%M:%S"),
            ],
        )
        .properties(height=60 + 36 * len(rows), title="Jobs timeline")
    )
