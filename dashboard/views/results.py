"""Results: one batch's flat results table — filter, sort, inspect a row, chart, download."""

import functools

import common
import explore
import streamlit as st
import table_support
import tables

common.sidebar()
st.title("Results")

records = None
with common.shown_errors("Reading the batch store"):
    records = [r for r in common.list_batches() if tables.finished(r)]
if records is None:
    st.stop()
if not records:
    st.info(
        "No results yet. Results appear here as soon as a batch's first job finishes — start one on the "
        "New batch page (try the sample) and watch it on the Batches page.",
        icon=":material/inbox:",
    )
    st.stop()

record = common.pick_batch(
    records, "Batch", key="results_batch", describe=lambda r: f" · {tables.finished(r):,} results"
)
if table_support.is_table_batch(record):  # made from a table: the user's rows with the answers joined
    import table_results

    with common.shown_errors("Joining the answers to the table"):
        table_results.show(record)
    st.stop()

table, loaded = None, False
with common.shown_errors("Loading the results"):
    table, loaded = common.results_table(record), True
if not loaded:
    st.stop()
if table is None:
    st.info(
        "This batch has no result file yet. Refresh it on the Batches page.",
        icon=":material/hourglass_empty:",
    )
    st.stop()

garbled, unknown = table.attrs.get("garbled_count", 0), table.attrs.get("unknown_count", 0)
if garbled or unknown:
    lines = ", ".join(str(line) for _, line in table.attrs.get("garbled_lines", [])[:10])
    st.warning(
        (f"{garbled:,} line(s) of the result file could not be read (lines {lines}…). " if garbled else "")
        + (f"{unknown:,} result(s) have a custom_id that is not in the batch's requests." if unknown else ""),
        icon=":material/warning:",
    )

cols = st.columns(6)  # the batch's own counts: the same numbers as the Batches page and the CLI
cols[0].metric("Requests", common.count(record.request_count))
cols[1].metric("Succeeded", common.count(record.succeeded))
cols[2].metric("Failed", common.count(record.failed), help=common.FAILED_HELP)
cols[3].metric("Not run", common.count(record.not_run), help=common.NOT_RUN_HELP)
cols[4].metric("Pending", common.count(record.pending))
cols[5].metric("Total tokens", explore.token_total(table))

# ---------------------------------------------------------------- filters
with st.container(border=True):
    left, middle, right = st.columns(3)
    filters = explore.Filters(
        statuses=left.multiselect("Status", explore.choices(table, "status"), key="rs_status"),
        error_codes=middle.multiselect("Error code", explore.choices(table, "error_code"), key="rs_code"),
        finish_reasons=right.multiselect(
            "Finish reason", explore.choices(table, "finish_reason"), key="rs_finish"
        ),
    )
    left, middle, right = st.columns([2, 2, 1])
    filters.text = left.text_input(
        "Search", key="rs_text", placeholder="custom_id, prompt, answer or error message contains…"
    )
    bounds = explore.token_bounds(table)
    if bounds and bounds[0] < bounds[1]:
        low, high = middle.slider("Total tokens", bounds[0], bounds[1], bounds, key="rs_tokens")
        filters.tokens = None if (low, high) == bounds else (low, high)  # full range: keep every row
    filters.sort_by = right.selectbox(
        "Sort by",
        [None, *explore.sortable_columns(table)],
        key="rs_sort",
        format_func=lambda c: (c or common.EMPTY).replace("_", " "),
    )
    filters.descending = right.toggle("Descending", key="rs_desc")

view = explore.apply(table, filters)


# ---------------------------------------------------------------- table, detail, charts, downloads
def show_grid(view, table) -> str | None:
    """The grid of the filtered rows (the first ``GRID_ROWS``); the custom_id of a row clicked in it."""
    shown = explore.grid_rows(view)
    more = (
        f" The grid shows the first {len(shown):,}: sort or filter to see others."
        if len(shown) < len(view)
        else ""
    )
    st.caption(
        f"{len(view):,} of {len(table):,} rows.{more} Click a row to see its request and response in full."
    )
    event = common.table(
        shown,
        column_order=explore.visible_columns(table),
        on_select="rerun",
        selection_mode="single-row",
        column_config=common.RESULT_COLUMN_CONFIG,
        height=common.RESULT_GRID_HEIGHT if len(shown) > common.RESULT_GRID_ROWS else "auto",
        key="rs_table",
    )
    return shown["custom_id"].iloc[event.selection.rows[0]] if event.selection.rows else None


def show_row(record, table, custom_id: str) -> None:
    """One row's long texts whole, and its request and result lines as JSON."""
    request, result = common.row_detail(record, custom_id)
    row = table[table["custom_id"] == custom_id].head(1)
    for column in ("prompt", "answer", "error_message"):  # whole, as plain text: easy to read
        value = row[column].iloc[0] if column in row and len(row) else None
        if isinstance(value, str) and value:
            st.caption(column.replace("_", " ").capitalize())
            st.text(value)
    left, right = st.columns(2)
    left.markdown("**Request**")
    left.code(
        common.pretty(request) if request is not None else "(not in the request file)",
        "json",
        wrap_lines=True,
    )
    right.markdown("**Response**")
    right.code(common.pretty(result) if result is not None else "(no result yet)", "json", wrap_lines=True)


def show_charts(view) -> None:
    if view.empty:
        st.info("No rows match the filters.")
        return
    common.chart(explore.status_chart(view))
    for chart in (explore.token_chart(view), explore.error_chart(view)):
        if chart is not None:
            common.chart(chart)


# Only the open tab runs (on_change="rerun"): on 50,000 rows the charts take ~0.5 s, for those who look.
tab_table, tab_charts = st.tabs(["Table", "Charts"], key="rs_tab", on_change="rerun")
if tab_table.open:
    with tab_table:
        picked = show_grid(view, table)
        if picked and picked != st.session_state.get("rs_last_pick"):
            st.session_state["rs_last_pick"] = picked
            st.session_state["rs_detail_id"] = picked
        detail_id = st.text_input("Row detail: custom_id", key="rs_detail_id")
        if detail_id:
            with common.shown_errors("Reading the row"):
                show_row(record, table, detail_id)
if tab_charts.open:
    with tab_charts:
        show_charts(view)

st.markdown("**Download the filtered rows**")
row = st.container(horizontal=True)
for fmt in explore.FORMATS:
    row.download_button(
        {"csv": "CSV", "jsonl": "JSONL", "parquet": "Parquet"}[fmt],
        data=common.audited(functools.partial(explore.export_bytes, view, fmt), record, f"results ({fmt})"),
        file_name=f"{record.id}-results.{fmt}",
        mime=explore.FORMATS[fmt],
        key=f"rs_dl_{fmt}",
        on_click="ignore",
        disabled=view.empty,
    )
