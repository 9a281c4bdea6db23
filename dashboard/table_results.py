"""The Results page of a batch made from a table: the user's rows with the answers joined, answer fields as
filters and charts, a row's parsed fields beside its raw answer, downloads; after a pilot, the rest."""

from __future__ import annotations

import functools
from typing import Any

import common
import explore
import pandas as pd
import streamlit as st
import table_support as ts

DOWNLOADS = {".csv": ("CSV", "text/csv"), ".xlsx": ("Excel", "application/vnd.openxmlformats-officedocument."
             "spreadsheetml.sheet"), ".parquet": ("Parquet", "application/vnd.apache.parquet")}  # fmt: skip


def show(record: Any) -> None:
    batch = common.load_batch(record.id)
    spec = batch.table_spec
    joined = ts.joined_table(batch)
    names = joined.attrs.get("answer_columns", {})
    pilot_section(batch, spec, batch.table_rows())
    status = joined[names["status"]]
    cols = st.columns(5)
    cols[0].metric("Rows", common.count(len(joined)))
    cols[1].metric("Answered", common.count(int((status == "succeeded").sum())))
    errors = names.get("schema_error")
    cols[2].metric(
        "Answers off the schema",
        common.count(int(joined[errors].notna().sum())) if errors else "—",
        help="Kept as text, with the reason in schema_error.",
    )
    cols[3].metric("Total tokens", common.count(int(joined[names["total_tokens"]].fillna(0).sum())))
    cost = joined[names["cost_usd"]]
    cols[4].metric("Cost", common.money(float(cost.fillna(0).sum())) if cost.notna().any() else "—")
    view = filtered(joined, spec, names)
    tab_rows, tab_charts = st.tabs(["Rows", "Charts"], key="rt_tab", on_change="rerun")
    if tab_rows.open:
        with tab_rows:
            grid(view, joined, spec, names)
    if tab_charts.open:
        with tab_charts:
            charts(view, spec, names)
    downloads(view, record.id)
    st.page_link("views/compare.py", label="Compare with another batch", icon=":material/compare:")
    if st.button("Run again on another file", key="rt_again", icon=":material/replay:"):
        ts.run_again(record.id)


def pilot_section(batch: Any, spec: Any, total: int) -> None:
    if spec.pilot_id:
        st.caption(f"The rest of pilot {spec.pilot_id}: every row is here, the pilot's answers included.")
        return
    if spec.rows[1] >= total:
        return
    if spec.rest_id:
        st.info(f"A pilot of {spec.rows[1]:,} of {total:,} rows; the rest runs as {spec.rest_id}.")
        if st.button("Show the whole table (the rest's results)", key="rt_show_rest"):
            st.session_state["results_batch"] = spec.rest_id
            st.rerun()
        return
    st.info(
        f"A pilot of {spec.rows[1]:,} of {total:,} rows. Happy with the answers? Run the other "
        f"{total - spec.rows[1]:,} rows: the pilot's are not sent again, and its answers count.",
        icon=":material/science:",
    )
    if st.button(f"Run the other {total - spec.rows[1]:,} rows", key="rt_rest", type="primary"):
        rest = None
        with common.shown_errors("Making the rest"), st.spinner("Submitting the rest…"):

            def make():
                made = common.load_batch(batch.id).rest()
                made.save()
                return made

            rest, _ = common.create_once(common.form_token("rest", batch.id), make)
            common.start_once(rest.id)
        if rest is not None:
            st.session_state["selected_batch"] = rest.id
            st.success(f"The rest started as {rest.id}; its results appear here as they come.")


def filtered(joined: pd.DataFrame, spec: Any, names: dict[str, str]) -> pd.DataFrame:
    with st.container(border=True):
        fields = spec.fields[:8]
        columns = st.columns(max(2, min(4, len(fields) + 1)))
        statuses = sorted(joined[names["status"]].dropna().unique())
        chosen = columns[0].multiselect("Status", statuses, key="rt_status")
        filters = {}
        for index, name in enumerate(fields, start=1):
            where = columns[index % len(columns)]
            filters[name] = ts.field_filter(joined, name, where, key=f"rt_field_{name}")
        search = st.text_input("Search the answers", key="rt_search", placeholder="answer contains…")
    view = ts.apply_field_filters(joined, filters)
    if chosen:
        view = view[view[names["status"]].isin(chosen)]
    if search and "answer" in names:
        found = view[names["answer"]].str.contains(search, case=False, regex=False)
        view = view[found.fillna(False).astype(bool)]
    return view


def grid(view: pd.DataFrame, joined: pd.DataFrame, spec: Any, names: dict[str, str]) -> None:
    shown = view.head(explore.GRID_ROWS)
    cut = len(view) > len(shown)
    more = f" The grid shows the first {len(shown):,}: filter to see others." if cut else ""
    st.caption(
        f"{len(view):,} of {len(joined):,} rows, in your table's order.{more} Click a row for its detail."
    )
    event = common.table(shown, on_select="rerun", selection_mode="single-row", height=420, key="rt_grid")
    if not event.selection.rows:
        return
    row = shown.iloc[event.selection.rows[0]]
    left, right = st.columns(2)
    left.markdown("**Answer fields**")
    parsed = {name: _plain(row[ts.field_column(joined, name)]) for name in spec.fields}
    if parsed:
        left.json(parsed)
    if names.get("schema_error") and isinstance(row[names["schema_error"]], str):
        left.warning(f"Does not fit the schema: {row[names['schema_error']]}")
    right.markdown("**Raw answer**")
    answer = row.get(names.get("answer", "answer"))
    right.code(answer if isinstance(answer, str) else common.EMPTY, None, wrap_lines=True)
    message = row[names["error_message"]]
    if isinstance(message, str):
        right.error(f"{row[names['error_code']]}: {message}")


def charts(view: pd.DataFrame, spec: Any, names: dict[str, str]) -> None:
    options = [ts.field_column(view, name) for name in spec.fields] + [names["status"]]
    column = st.selectbox("Distribution of", options, key="rt_chart_field")
    if view[column].dropna().empty:
        st.info("No values to chart in the rows shown.")
        return
    common.chart(ts.distribution_chart(view, column))


def downloads(view: pd.DataFrame, batch_id: str) -> None:
    st.markdown("**Download the rows shown**")
    row = st.container(horizontal=True)
    for suffix, (label, mime) in DOWNLOADS.items():
        row.download_button(
            label,
            data=functools.partial(ts.export_bytes, view, suffix),
            file_name=f"{batch_id}-answers{suffix}",
            mime=mime,
            key=f"rt_dl_{suffix}",
            on_click="ignore",
            disabled=view.empty,
        )


def _plain(value: Any) -> Any:
    if value is None or (not isinstance(value, list | dict | str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value
