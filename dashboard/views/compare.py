"""Compare: two batches made from the same table (two models, two prompts) side by side, per row."""

import common
import explore
import streamlit as st
import table_support as ts
import tables

from langbatch_core.tables import compare_batches

common.sidebar()
st.title("Compare two batches")
st.caption("Two batches over the same rows — two models, or two prompts: where do their answers agree?")

records = None
with common.shown_errors("Reading the batch store"):
    records = [r for r in common.list_batches() if tables.finished(r) and ts.is_table_batch(r)]
if records is None:
    st.stop()
if len(records) < 2:
    st.info(
        "Compare needs two batches made from a table with results. Make them on the From a table page "
        "(the same table, another model or template).",
        icon=":material/compare:",
    )
    st.stop()
if st.session_state.get("cmp_b") in (None, st.session_state.get("cmp_a")) and len(records) > 1:
    st.session_state["cmp_b"] = records[1].id
left, right = st.columns(2)
with left:
    first = common.pick_batch(records, "Batch A", key="cmp_a")
with right:
    second = common.pick_batch(records, "Batch B", key="cmp_b")
if first.id == second.id:
    st.info("Pick two different batches.")
    st.stop()

found = None
with common.shown_errors("Comparing the batches"):
    found = compare_batches(common.load_batch(first.id), common.load_batch(second.id))
if found is None:
    st.stop()
if found.rows.empty:
    st.warning("These two batches have no row in common (their ids differ).", icon=":material/warning:")
    st.stop()

st.subheader("Agreement")
cols = st.columns(max(1, len(found.fields)))
for column, name in zip(cols, found.fields, strict=False):
    rate = found.agreement.get(name)
    column.metric(name, common.EMPTY if rate is None else f"{rate:.0%}", help="Of the rows both answered.")
st.markdown("**Cost and tokens**")
money = st.column_config.NumberColumn(format="$%.4f")
common.table(found.totals, key="cmp_totals", column_config={"cost (USD)": money})
for name, table in found.confusion.items():
    st.markdown(f"**{common.md_escape(name)}: rows are A's answer, columns B's**")
    st.dataframe(table, key=f"cmp_confusion_{name}")

st.subheader("Row by row")
only = st.toggle(
    f"Only the {len(found.disagreements):,} rows where they disagree", key="cmp_only_disagreements"
)
rows = found.disagreements if only else found.rows
common.table(rows.head(explore.GRID_ROWS), key="cmp_rows", height=420)
