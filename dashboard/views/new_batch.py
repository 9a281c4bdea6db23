"""New batch: upload a request file (or pick a sample) → validation report → connection and name → create."""

from pathlib import Path

import common
import connections
import streamlit as st

from langbatch_core.estimates import estimate_run

common.sidebar()
st.title("New batch")
st.caption(
    "A batch is a JSONL file of requests in OpenAI's batch format: one "
    '`{"custom_id", "method": "POST", "url", "body"}` per line. It runs at batch prices on the connection '
    "you choose — by default the local engine, which needs no key."
)

created = st.session_state.pop("nb_created", None)
if created:
    st.success(created["message"], icon=":material/check_circle:")
    st.page_link("views/batches.py", label="Watch it on the Batches page", icon=":material/list_alt:")


def _use_sample() -> None:
    st.session_state["nb_source"] = "Try a sample"  # a callback runs before the radio is drawn


source = st.radio("Requests", ["Upload a file", "Try a sample"], horizontal=True, key="nb_source")
path = None
if source == "Upload a file":
    # no type= filter: Streamlit would refuse other names with a traceback; common.check_upload says why
    upload = st.file_uploader("Request file (.jsonl, up to 200 MB)", key="nb_upload", max_upload_size=200)
    if upload is None:
        st.info(
            "Upload a .jsonl request file — or try the bundled sample: 12 short questions that the local "
            "engine answers with its own small model, no key needed.",
            icon=":material/upload_file:",
        )
        st.button("Try the sample", key="nb_try_sample", type="primary", on_click=_use_sample)
        st.stop()
    saved = st.session_state.get("nb_saved")
    if saved and saved[0] == upload.file_id and saved[1].exists():
        path = saved[1]  # stored on an earlier run: no second hash of a 200 MB file
    else:
        with common.shown_errors("Uploading the file"):
            path = common.save_upload(upload.name, upload.getvalue())
            st.session_state["nb_saved"] = (upload.file_id, path)
else:
    label = st.selectbox("Sample", list(common.SAMPLES), key="nb_sample")
    path = common.sample_path(label)
if path is None:
    st.stop()

# ---------------------------------------------------------------- the validation report
report = None
with common.shown_errors("Validating the file"):
    report = common.validate(path)
if report is None:
    st.stop()

st.subheader("Validation report")
# values from the file go through st.text/st.dataframe only: never rendered as markdown
st.text(f"File: {path.name}\nEndpoint: {report.endpoint or '—'}\nModel: {common.models_text(report)}")
cols = st.columns(6)
cols[0].metric("Requests", common.count(report.request_count))
cols[1].metric("Size", common.size(report.bytes))
cols[2].metric("Jobs planned", len(report.jobs), help="Provider limits split a big file into several jobs.")
cols[3].metric("Input tokens (est.)", common.count(report.input_tokens))
cols[4].metric("Max output tokens", common.count(report.max_output_tokens), help="The requests' ceiling.")
cols[5].metric("Estimated cost", common.money(report.estimated_cost_usd), help="At batch prices, if known.")

if report.error_count:
    st.error(
        f"{report.error_count:,} error(s) found: this file cannot be started. "
        "Fix the lines listed below and upload it again.",
        icon=":material/block:",
    )
elif report.warning_count:
    st.warning(f"Valid, with {report.warning_count:,} warning(s) listed below.", icon=":material/warning:")
else:
    st.success(f"Valid: {report.request_count:,} requests ready to run.", icon=":material/check_circle:")

if report.issues:
    shown = len(report.issues)
    total = report.error_count + report.warning_count
    by_code = common.issue_summary(report.issues)
    if len(by_code) < shown:  # some code repeats: sum them up first
        st.markdown("**Issues by code**")
        common.table(
            by_code,
            column_config={
                "severity": st.column_config.TextColumn("severity", width="small"),
                "count": st.column_config.NumberColumn("count", width="small"),
                "example": st.column_config.TextColumn("example", width="large"),
            },
            key="nb_issue_codes",
        )
    st.markdown(f"**Issues line by line** ({shown:,} listed of {total:,})")
    common.table(
        common.issues_table(report.issues),
        column_config={
            "line": st.column_config.NumberColumn("line", width="small"),
            "severity": st.column_config.TextColumn("severity", width="small"),
            "message": st.column_config.TextColumn("message", width="large"),
        },
        key="nb_issues",
    )

with st.expander(f"Split plan: {len(report.jobs)} job(s)", expanded=len(report.jobs) > 1):
    common.table(common.plan_table(report.jobs))

if not report.ok:
    st.stop()

# ---------------------------------------------------------------- connection, name, create
st.subheader("Run it")
choices = connections.all_connections()
conn = st.selectbox("Connection", choices, format_func=connections.label, key="nb_conn")
refused = None
with common.shown_errors("Checking the requests against the connection"):
    refused = common.refusals(path, conn)
if refused:
    st.error(
        f"{len(refused):,} request(s) ask for what {common.md_escape(conn.name)} cannot do: fix these "
        "lines, or pick another connection.",
        icon=":material/block:",
    )
    st.dataframe(common.issues_table(refused), hide_index=True, key="nb_refused")
    st.stop()
missing_key = not connections.key_configured(conn)
if missing_key:
    st.warning(
        f"No key for {common.md_escape(conn.name)}: set the environment variable `{conn.api_key_env}` "
        "(or add it to .streamlit/secrets.toml) and restart the dashboard. You can still create the batch "
        "now and start it later.",
        icon=":material/key:",
    )
# the cost on this connection ($0 on the local engine) and, on the local engine, how long it will take
estimate = estimate_run(report, connections.to_core(conn))
st.text("\n".join(estimate.lines()))
if estimate.warning:
    st.warning(estimate.warning, icon=":material/schedule:")
with common.shown_errors("Reading this month's spend"):
    for line in common.spend_lines():
        st.caption(line)
max_cost = st.number_input(
    "Spend cap for this batch, US$ (optional)",
    min_value=0.0,
    value=None,
    step=1.0,
    key="nb_max_cost",
    help="A start or retry whose estimated cost would pass it is refused.",
)
# another file: suggest its name, not the last one's. Streamlit drops a widget's state when a run is cut
# short before drawing it (a double click): suggest it again, so the form (and its token) stays the same.
if st.session_state.get("nb_name_for") != str(path) or "nb_name" not in st.session_state:
    st.session_state["nb_name_for"] = str(path)
    st.session_state["nb_name"] = common.default_batch_name(path)
# an empty name is the suggested one: a rerun cut short can also send the box's value as "" for a moment
name = st.text_input("Name", max_chars=100, key="nb_name").strip() or common.default_batch_name(path)
# one batch per form content: a double click or a second press finds the batch made by the first
token = common.form_token(str(path), common.file_key(path), conn.name, name, max_cost)
row = st.container(horizontal=True)  # buttons as wide as their labels: never cut off
create = row.button("Create", key="nb_create")
start = row.button("Create and start", key="nb_start", type="primary", disabled=missing_key)
if common.made_from(token) and not (create or start):
    st.caption(
        f"Batch {common.made_from(token)} was made from this file, connection and name. "
        "Change the name to make another."
    )


def create_and_maybe_start(path: Path, endpoint: str | None) -> None:
    batch, new = None, False
    with common.shown_errors("Creating the batch"), st.spinner("Creating the batch…"):
        batch, new = common.create_once(
            token, lambda: common.create_batch(path, endpoint, conn, name, max_cost)
        )
    if batch is None:
        return
    st.session_state["selected_batch"] = batch.id
    if start and common.can_start(batch.record):
        started = None
        with common.shown_errors("Starting the batch"), st.spinner("Submitting the jobs…"):
            common.start_once(batch.id)  # False: an earlier press's run, cut short, started it
            started = True
        if started is None:
            st.info(f"Batch {batch.id} was created but not started; start it from the Batches page.")
            return
        st.session_state["nb_created"] = {"message": f"Batch {batch.id} started."}
    elif new:
        st.session_state["nb_created"] = {
            "message": f"Batch {batch.id} created; start it from the Batches page."
        }
    else:
        st.info(
            f"Batch {batch.id} was already made from this file, connection and name ({batch.record.status}): "
            "nothing new was created. Watch it on the Batches page, or change the name to make another.",
            icon=":material/info:",
        )
        return
    st.rerun()


if create or start:
    create_and_maybe_start(path, report.endpoint)
