"""New batch from a table: upload → preview → template (+ answer fields) → first requests → pilot or run."""

from pathlib import Path
from typing import Any

import common
import connections
import pandas as pd
import streamlit as st
import table_support as ts

from langbatch_core import OpenAIChatCompletionBatch, OpenAIEmbeddingBatch
from langbatch_core.estimates import estimate_run
from langbatch_core.tables import TableSpec, excel_sheets, load_schema, plan_requests, table_format

common.sidebar()
st.title("New batch from a table")
st.caption(
    "A spreadsheet and a prompt: one request per row, the answers joined back to your rows as new columns. "
    "Columns are written `{{ column }}` in the template (Jinja2, sandboxed)."
)

like = ts.filled_in_like()
if like:
    st.info(
        f"Running batch {like['id']} again: its template, system prompt, answer schema, model, parameters "
        "and id column are filled in. Upload the new file; its columns are checked against the template.",
        icon=":material/replay:",
    )
created = st.session_state.pop("nt_created", None)
if created:
    st.success(created, icon=":material/check_circle:")
    st.page_link("views/results.py", label="See the answers on the Results page", icon=":material/search:")

upload = st.file_uploader("Table (.csv, .tsv, .xlsx, .parquet, .jsonl of records)", key="nt_upload")
if upload is None:
    st.info("Upload a table: its first row names the columns.", icon=":material/upload_file:")
    st.stop()
saved = None
with common.shown_errors("Uploading the table"):
    saved = ts.save_table_upload(upload.name, upload.getvalue())
if saved is None:
    st.stop()
path: Path = saved  # a Path from here on, in create_and_start too

# ---------------------------------------------------------------- the table
sheet, encoding = None, None
left, right = st.columns(2)
if table_format(path.name) == "excel":
    sheets = []
    with common.shown_errors("Reading the workbook"):
        sheets = excel_sheets(path)
    sheet = left.selectbox("Sheet", sheets, key="nt_sheet") if sheets else None
elif table_format(path.name) in ("csv", "tsv", "jsonl"):
    chosen = left.selectbox("Encoding", ts.ENCODINGS, key="nt_encoding", help="Excel on Windows: cp1252.")
    encoding = None if chosen == "utf-8" else chosen
table = None
with common.shown_errors("Reading the table"):
    table = ts.read(path, sheet, encoding)
if table is None:
    st.stop()
frame = table.frame
columns = [str(c) for c in frame.columns]
cols = st.columns(3)
cols[0].metric("Rows", common.count(len(frame)))
cols[1].metric("Columns", common.count(len(columns)))
cols[2].metric("Size", common.size(path.stat().st_size))
preview, types = st.columns([3, 1])
preview.markdown("**Preview** (first 100 rows)")
with preview:
    common.table(frame.head(100), height=260, key="nt_preview")
types.markdown("**Column types**")
with types:
    common.table(ts.types_table(table), height=260, key="nt_types")
if table.issues:
    st.warning(f"{len(table.issues):,} warning(s) about the table:", icon=":material/warning:")
    common.table(ts.issues_frame(table.issues), key="nt_table_issues")

# ---------------------------------------------------------------- the requests
st.subheader("Requests")
kind = st.radio("Kind", ["Chat completions", "Embeddings"], horizontal=True, key="nt_kind")
choices = connections.all_connections()
conn = st.selectbox("Connection", choices, format_func=connections.label, key="nt_conn")
spec = TableSpec(kind="chat" if kind == "Chat completions" else "embeddings", source=path.name, sheet=sheet)
if like:
    ts.pick_like_columns(like, path, columns)
    if like["id_column"] and like["id_column"] not in columns:
        st.warning(
            f"This table has no column {like['id_column']!r}, the id column of batch {like['id']}: pick its "
            "id column below, or row numbers.",
            icon=":material/warning:",
        )
id_choice = st.selectbox(
    "Id of each row (custom_id)", ["row number", *columns], key="nt_id", help="Unique values; checked."
)
spec.id_column = None if id_choice == "row number" else id_choice
if st.session_state.get("nt_form_for") != str(path):  # another table: its own name and pilot size
    st.session_state["nt_form_for"] = str(path)
    for key in ("nt_name", "nt_pilot", "_held_nt_name", "_held_nt_pilot"):
        st.session_state.pop(key, None)
ts.hold("nt_model", conn.model or "")
model = st.text_input("Model", key="nt_model", placeholder="gpt-4o-mini")
default_model = "gpt-4o-mini" if spec.kind == "chat" else "text-embedding-3-small"
spec.model = model.strip() or conn.model or default_model

if spec.kind == "chat":

    def _insert_column() -> None:
        st.session_state["nt_template"] = (st.session_state.get("nt_template") or "") + (
            "{{ " + st.session_state["nt_insert"] + " }}"
            if st.session_state["nt_insert"].isidentifier()
            else "{{ row['" + st.session_state["nt_insert"].replace("'", "\\'") + "'] }}"
        )

    pick, button = st.columns([3, 1], vertical_alignment="bottom")
    pick.selectbox("Column", columns, key="nt_insert")
    button.button("Insert into the template", key="nt_insert_button", on_click=_insert_column)
    ts.hold("nt_template", "")
    spec.template = st.text_area(
        "Prompt template", key="nt_template", placeholder="Sentiment of: {{ review }}", height=100
    )
    ts.hold("nt_system", "")
    spec.system = st.text_area("System prompt (optional)", key="nt_system", height=68).strip() or None
    left, right = st.columns(2)
    ts.hold("nt_temperature")
    ts.hold("nt_max_tokens")
    temperature = left.number_input("Temperature", 0.0, 2.0, value=None, step=0.1, key="nt_temperature")
    max_tokens = right.number_input("Max tokens", 1, 100_000, value=None, key="nt_max_tokens")
    spec.request_kwargs = {
        **(like["other_kwargs"] if like else {}),
        **{k: v for k, v in (("temperature", temperature), ("max_tokens", max_tokens)) if v is not None},
    }
    ts.hold("nt_answer", "Free text")
    answer = st.radio("Answer", ["Free text", "Fields", "JSON Schema"], horizontal=True, key="nt_answer")
    if answer == "Fields":
        st.caption("One column per field in the results. Strict: the model must answer every field.")
        rows = st.data_editor(
            pd.DataFrame(ts.STARTER_FIELDS, columns=ts.FIELD_COLUMNS),
            num_rows="dynamic",
            column_config=ts.field_editor_config(),
            hide_index=True,
            key="nt_fields",
        )
        with common.shown_errors("Checking the fields"):
            spec.schema = load_schema(ts.fields_from_editor(rows))
        if spec.schema is None:
            st.stop()
    elif answer == "JSON Schema":
        ts.hold("nt_schema", "")
        pasted = st.text_area("JSON Schema", key="nt_schema", height=160, placeholder='{"type": "object"}')
        if not pasted.strip():
            st.stop()
        with common.shown_errors("Checking the JSON Schema"):
            spec.schema = load_schema(pasted)
        if spec.schema is None:
            st.stop()
    if not spec.template.strip():
        st.info("Write the prompt template to see the first requests.", icon=":material/edit:")
        st.stop()
else:
    spec.text_column = st.selectbox("Text column (embedded)", columns, key="nt_text_column")

# ---------------------------------------------------------------- first requests, report, run
plan = None
with common.shown_errors("Rendering the requests"):
    plan = plan_requests(table, spec)
if plan is None:
    st.stop()
st.subheader("First requests, exactly as they will be sent")
for request in plan.first_requests(3):
    st.code(common.pretty(request), "json", wrap_lines=True)
if len(frame) > 3:
    st.caption(f"… and {len(frame) - 3:,} more like them, one per row.")
if plan.issues:
    common.table(ts.issues_frame(plan.issues), key="nt_plan_issues")
report, refused = None, []
with common.shown_errors("Validating the requests"):
    rendered = ts.request_file(plan)
    refused = common.refusals(rendered, conn)
    report = common.validate(rendered)
if report is None:
    st.stop()
if refused:
    st.error(
        f"{common.md_escape(conn.name)} cannot do what these requests ask: "
        f"{common.md_escape(refused[0].message)} Change the answer or parameters, or another connection.",
        icon=":material/block:",
    )
    st.stop()
costs = st.columns(4)
costs[0].metric("Requests", common.count(report.request_count))
costs[1].metric("Input tokens (est.)", common.count(report.input_tokens))
costs[2].metric("Jobs planned", len(report.jobs))
costs[3].metric("Estimated cost", common.money(report.estimated_cost_usd), help="At batch prices, if known.")
if not report.ok:
    st.error("The requests are not valid:", icon=":material/block:")
    common.table(common.issues_table(report.issues), key="nt_report_issues")
    st.stop()
st.text("\n".join(estimate_run(report, connections.to_core(conn)).lines()))

st.subheader("Run it")
ts.hold("nt_name", path.stem)
name = st.text_input("Name", max_chars=100, key="nt_name").strip() or path.stem
ts.hold("nt_pilot", min(20, len(frame)))
pilot = st.number_input(
    "Pilot rows",
    0,
    len(frame),
    key="nt_pilot",
    help="Run the first rows as their own batch, look at the answers, then run the rest.",
)
row = st.container(horizontal=True)
run_pilot = row.button(f"Start a pilot of {pilot:,} rows", key="nt_run_pilot", type="primary",
                       disabled=not 0 < pilot < len(frame))  # fmt: skip
run_all = row.button(f"Start all {len(frame):,} rows", key="nt_run_all")


def create_and_start(rows: int | None) -> None:
    kind_class = OpenAIChatCompletionBatch if spec.kind == "chat" else OpenAIEmbeddingBatch
    options: dict[str, Any] = {  # from_table keywords
        "template": spec.template,
        "system": spec.system,
        "schema": spec.schema,
        "text_column": spec.text_column,
        "id_column": spec.id_column,
        "model": spec.model,
        "request_kwargs": spec.request_kwargs,
        "sheet": sheet,
        "encoding": encoding,
        "pilot": rows,
    }
    if spec.kind == "embeddings":
        options = {k: v for k, v in options.items() if k not in ("template", "system", "schema")}
    else:
        options.pop("text_column")
    token = common.form_token(str(path), common.file_key(path), conn.name, name, repr(options))
    batch = None
    with common.shown_errors("Creating the batch"), st.spinner("Creating the batch…"):

        def make():
            made = kind_class.from_table(
                path, connection=connections.to_core(conn), storage=common.storage(), name=name, **options
            )
            made.save()
            return made

        batch, _ = common.create_once(token, make)
    if batch is None:
        return
    with common.shown_errors("Starting the batch"), st.spinner("Submitting the jobs…"):
        common.start_once(batch.id)
        st.session_state["selected_batch"] = batch.id
        st.session_state["results_batch"] = batch.id
        what = f"Pilot of {rows:,} rows" if rows else f"Batch of {len(frame):,} rows"
        st.session_state["nt_created"] = f"{what} started ({batch.id})."
        st.session_state.pop("nt_like", None)
        st.rerun()


if run_pilot:
    create_and_start(int(pilot))
elif run_all:
    create_and_start(None)
