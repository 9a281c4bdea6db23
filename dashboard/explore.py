"""The Results page's work: filter, sort, chart and export the flat results table (pure pandas + Altair).

    view = explore.apply(table, explore.Filters(statuses=["failed"], text="timeout"))
    chart = explore.status_chart(view)
    data = explore.export_bytes(view, "parquet")

Kept out of the page so that it is tested and benchmarked without a browser.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # altair takes ~0.25 s to import: only the Charts tab needs it
    import altair as alt

SEARCHED = ("custom_id", "prompt", "answer", "error_message")
# rows sent to a browser grid (5,000 made the first visit of a 50,000-row page ~1 s slower in Chromium);
# filters, sorting, charts and downloads use every row
GRID_ROWS = 1_000
GRID_TEXT = 300  # characters of long texts shown in the grid (the row detail shows them whole)
LONG_TEXT = ("prompt", "answer", "error_message", "tool_calls", "refusal")
FORMATS = {"csv": "text/csv", "jsonl": "application/jsonl", "parquet": "application/vnd.apache.parquet"}
OUTCOME_COLORS = {
    "succeeded": "#1e8e3e",
    "failed": "#d93025",
    "expired": "#f29900",
    "cancelled": "#80868b",
    "missing": "#bdc1c6",
}


@dataclass
class Filters:
    """What the user asked for; empty lists and ``None`` mean "everything"."""

    statuses: list[str] = field(default_factory=list)
    error_codes: list[str] = field(default_factory=list)
    finish_reasons: list[str] = field(default_factory=list)
    text: str = ""
    tokens: tuple[int, int] | None = None
    sort_by: str | None = None
    descending: bool = False


def choices(table: pd.DataFrame, column: str) -> list[str]:
    """The distinct non-empty values of ``column``, most frequent first."""
    if column not in table:
        return []
    return [str(v) for v in table[column].dropna().value_counts().index if str(v)]


def token_bounds(table: pd.DataFrame) -> tuple[int, int] | None:
    """(min, max) of ``total_tokens``, or ``None`` when no row has tokens."""
    if "total_tokens" not in table:
        return None
    tokens = table["total_tokens"].dropna()
    return (int(tokens.min()), int(tokens.max())) if len(tokens) else None


def token_total(table: pd.DataFrame) -> str:
    """The table's total tokens as ``12,345``, or ``—`` when no row has tokens (embeddings, all failed)."""
    if "total_tokens" not in table or not table["total_tokens"].notna().any():
        return "—"
    return f"{int(table['total_tokens'].sum()):,}"


def apply(table: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The rows of ``table`` that pass every filter, sorted as asked (the table itself is not changed)."""
    mask = np.ones(len(table), dtype=bool)
    for column, wanted in (
        ("status", filters.statuses),
        ("error_code", filters.error_codes),
        ("finish_reason", filters.finish_reasons),
    ):
        if wanted and column in table:
            mask &= _bools(table[column].isin(wanted))
    if filters.tokens is not None and "total_tokens" in table:
        low, high = filters.tokens
        mask &= _bools(table["total_tokens"].between(low, high))  # rows without tokens drop out
    if filters.text.strip():
        mask &= _text_mask(table, filters.text.strip(), mask)
    view = table[mask]
    if filters.sort_by and filters.sort_by in view:
        view = view.sort_values(filters.sort_by, ascending=not filters.descending, na_position="last")
    return view


def _text_mask(table: pd.DataFrame, needle: str, candidates: np.ndarray) -> np.ndarray:
    """Rows whose searched columns contain ``needle`` (case-insensitive); only candidate rows are scanned."""
    found = np.zeros(len(table), dtype=bool)
    rows = np.flatnonzero(candidates)
    for column in SEARCHED:
        if column in table:
            values = table[column] if len(rows) == len(table) else table[column].iloc[rows]
            found[rows] |= _bools(values.str.contains(needle, case=False, regex=False, na=False))
    return found


def _bools(series: pd.Series) -> np.ndarray:
    """A plain bool array (nullable booleans' NA counts as False)."""
    return series.to_numpy(dtype=bool, na_value=False)


PREFERRED_ORDER = (
    "custom_id",
    "status",
    "error_code",
    "error_message",
    "answer",
    "prompt",
    "finish_reason",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "status_code",
    "model",
    "refusal",
    "tool_calls",
    "embedding_dim",
    "line",
)  # fmt: skip  (a failed row's reason right after its status; the answer before the prompt it answers)
UNSORTABLE = ("prompt", "answer", "error_message", "tool_calls", "refusal")


def visible_columns(table: pd.DataFrame) -> list[str]:
    """The columns worth showing: known ones in a reading order, then others; all-empty ones left out."""
    known = [c for c in PREFERRED_ORDER if c in table]
    ordered = known + [c for c in table.columns if c not in PREFERRED_ORDER]
    return [c for c in ordered if c in ("custom_id", "status") or table[c].notna().any()]


def sortable_columns(table: pd.DataFrame) -> list[str]:
    """The columns offered in "Sort by": those shown that hold something, long texts left out."""
    return [c for c in visible_columns(table) if c not in UNSORTABLE]


def grid_rows(view: pd.DataFrame) -> pd.DataFrame:
    """The first ``GRID_ROWS`` rows of ``view`` with long texts cut to ``GRID_TEXT`` characters."""
    head = view.head(GRID_ROWS)
    cut = {c: head[c].str.slice(0, GRID_TEXT) for c in LONG_TEXT if c in head}
    return head.assign(**cut) if cut else head


# ---------------------------------------------------------------- charts (aggregated first: small specs)


def status_chart(view: pd.DataFrame) -> alt.Chart:
    """Requests per outcome."""
    import altair as alt

    counts = view["status"].value_counts().rename_axis("status").reset_index(name="requests")
    return (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            x=alt.X("requests:Q", axis=_count_axis()),
            y=alt.Y("status:N", sort="-x", axis=alt.Axis(labelLimit=220)),
            color=alt.Color(
                "status:N",
                legend=None,
                scale=alt.Scale(domain=list(OUTCOME_COLORS), range=list(OUTCOME_COLORS.values())),
            ),
            tooltip=["status", "requests"],
        )
        .properties(title="Status breakdown", height=60 + 36 * len(counts))
    )


def token_chart(view: pd.DataFrame, bins: int = 30) -> alt.Chart | None:
    """Histogram of total tokens per request (``None`` when no row has tokens)."""
    import altair as alt

    tokens = view["total_tokens"].dropna().to_numpy() if "total_tokens" in view else np.array([])
    if not len(tokens):
        return None
    low, high = int(tokens.min()), int(tokens.max())
    width = max(1, -(-(high - low + 1) // bins))  # whole tokens per bin, at most ``bins`` bins
    counts, edges = np.histogram(tokens, bins=np.arange(low, high + width + 1, width))
    data = pd.DataFrame({"from": edges[:-1], "to": edges[1:], "requests": counts})
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("from:Q", title="total tokens", bin="binned", axis=alt.Axis(format="d")),
            x2="to:Q",
            y=alt.Y("requests:Q", axis=_count_axis()),
            tooltip=["from", "to", "requests"],
        )
        .properties(title="Token distribution", height=220)
    )


def error_chart(view: pd.DataFrame) -> alt.Chart | None:
    """Failed requests per error code (``None`` when nothing failed)."""
    import altair as alt

    failed = view[view["status"] != "succeeded"]
    if failed.empty:
        return None
    codes = failed["error_code"].fillna(failed["status"]) if "error_code" in failed else failed["status"]
    counts = codes.value_counts().rename_axis("code").reset_index(name="requests")
    return (
        alt.Chart(counts)
        .mark_bar(color="#d93025")
        .encode(
            x=alt.X("requests:Q", axis=_count_axis()),
            y=alt.Y("code:N", sort="-x", axis=alt.Axis(labelLimit=220)),
            tooltip=["code", "requests"],
        )
        .properties(title="Errors by code", height=60 + 36 * len(counts))
    )


# ---------------------------------------------------------------- exports and row detail


def export_bytes(view: pd.DataFrame, fmt: str) -> bytes:
    """The rows of ``view`` as a CSV, JSONL or Parquet file's bytes (through ``export_results``)."""
    from langbatch_core.results import export_results

    with tempfile.TemporaryDirectory(prefix="langbatch-export-") as tmp:
        path = export_results(view, Path(tmp) / f"results.{fmt}", fmt)
        return Path(path).read_bytes()


def _count_axis() -> alt.Axis:
    """The axis of request counts: whole numbers only (no "0.5 requests" ticks)."""
    import altair as alt

    return alt.Axis(format="d", tickMinStep=1)
