"""Batches: every batch in the store, refreshing by itself while one runs; details and actions per batch."""

import common
import signin
import streamlit as st
import tables

common.sidebar()
st.title("Batches")

done = st.session_state.pop("bt_done", None)
if done and done[0] == "info":
    st.info(done[1], icon=":material/info:")
elif done:
    st.success(done[1], icon=":material/check_circle:")

records = None
with common.shown_errors("Reading the batch store"):
    records = common.list_summaries()  # the table's columns only: the details load the one batch shown
if records is None:
    st.stop()
if not records:
    st.info(
        "No batches yet. Create one on the New batch page — the bundled sample runs on the local engine, "
        "no key needed.",
        icon=":material/inbox:",
    )
    st.page_link("views/new_batch.py", label="New batch", icon=":material/add_circle:")
    st.stop()

running_at_start = any(common.is_running(r) for r in records)


def pick_from_table(event, table) -> None:
    """A row clicked in the table becomes the batch shown below (once per click, not on every rerun)."""
    rows = event.selection.rows if event else []
    picked = table["id"].iloc[rows[0]] if rows else None
    if picked and picked != st.session_state.get("bt_last_pick"):
        st.session_state["bt_last_pick"] = picked
        st.session_state["selected_batch"] = picked


def action_button(where, label: str, action: str, record, **kwargs) -> None:
    """A button that asks for ``action`` on ``record`` as drawn now; a press on an older drawing is stale."""
    stamp = common.action_stamp(record)
    where.button(
        label,
        key=f"bt_{action}_{record.id}_{stamp}",  # a new state draws a new button: old presses go nowhere
        on_click=common.request_action,
        args=(record.id, action, stamp),
        **kwargs,
    )


def actions(record) -> None:
    """Start / refresh / retry / cancel / delete buttons, downloads and a link to the results."""
    active = record.status in common.ACTIVE_STATUSES
    row = st.container(horizontal=True)  # buttons as wide as their labels: never cut off
    action_button(
        row,
        "Start",
        "start",
        record,
        disabled=not common.can_start(record),
        help="Submits the requests; after an interrupted start it finishes the submission.",
    )
    action_button(row, "Refresh", "refresh", record)
    action_button(
        row,
        "Retry failed",
        "retry",
        record,
        disabled=active
        or record.status == "not_started"
        or not (record.failed or record.not_run or record.pending),
        help="Resubmits only the requests without a successful result.",
    )
    action_button(row, "Cancel", "cancel", record, disabled=not active)
    if row.button("Delete…", key="bt_delete"):
        st.session_state["bt_confirm_delete"] = record.id
    if row.button("Explore results", key="bt_explore", type="primary", disabled=not tables.finished(record)):
        st.session_state["results_batch"] = record.id
        st.switch_page("views/results.py")
    if st.session_state.get("bt_confirm_delete") == record.id:
        confirm_delete(record)
    downloads(record)


def run_requested_action() -> None:
    """The action a button asked for (before anything is drawn, so its buttons show the new state)."""
    request = st.session_state.get("bt_request")
    if request is None:
        return
    batch_id, action = request[0], request[1]
    with common.shown_errors(f"{action.capitalize()} of batch {batch_id}"), st.spinner(f"{action}…"):
        outcome = common.run_requested_action()
        if outcome:
            st.session_state["bt_done"] = outcome
            if action == "delete":
                st.session_state.pop("bt_confirm_delete", None)
                st.session_state.pop("selected_batch", None)
            st.rerun()


def confirm_delete(record) -> None:
    st.warning(
        f"Delete batch {record.id} and its files from this data directory? Jobs still running at the "
        "provider are cancelled first. This cannot be undone.",
        icon=":material/delete:",
    )
    row = st.container(horizontal=True)
    row.button(
        "Yes, delete it",
        key="bt_delete_yes",
        type="primary",
        on_click=common.request_action,
        args=(record.id, "delete", common.action_stamp(record)),
    )
    if row.button("Keep it", key="bt_delete_no"):
        st.session_state.pop("bt_confirm_delete", None)
        st.rerun()


def downloads(record) -> None:
    row = st.container(horizontal=True)
    requests_path = common.requests_file(record.id)
    if requests_path.exists():
        row.download_button(
            "Download input (JSONL)",
            data=common.audited(requests_path.read_bytes, record, "input (JSONL)"),
            file_name=f"{record.id}-requests.jsonl",
            mime="application/jsonl",
            key="bt_dl_input",
            on_click="ignore",
        )
    results_path = common.results_file(record)
    if results_path is not None:
        row.download_button(
            "Download results (JSONL)",
            data=common.audited(results_path.read_bytes, record, "results (JSONL)"),
            file_name=f"{record.id}-results.jsonl",
            mime="application/jsonl",
            key="bt_dl_results",
            on_click="ignore",
        )


def details(record) -> None:
    st.subheader(f"Batch {record.id}")
    st.text(
        f"Name: {record.name or '—'}   Status: {record.status}   Owner: {record.owner or '—'}\n"
        f"Endpoint: {record.endpoint or '—'}   Model: {record.model or '—'}\n"
        f"Last advanced by a worker (UTC): {tables.advanced_text(record) or '—'}"
    )
    cols = st.columns(6)
    cols[0].metric("Requests", common.count(record.request_count))
    cols[1].metric("Succeeded", common.count(record.succeeded))
    cols[2].metric("Failed", common.count(record.failed), help=common.FAILED_HELP)
    cols[3].metric("Not run", common.count(record.not_run), help=common.NOT_RUN_HELP)
    cols[4].metric("Pending", common.count(record.pending))
    cols[5].metric("Est. cost", common.money(record.estimated_cost_usd))
    if common.start_interrupted(record):
        st.warning(
            "The start of this batch did not finish: its requests never reached the provider, so nothing "
            "runs. Press Start to submit them again; if it fails again, the message says why.",
            icon=":material/pause_circle:",
        )
    st.progress(
        tables.progress(record),
        text=f"{tables.finished(record):,} of {record.request_count:,} requests finished",
    )
    actions(record)
    if record.jobs:
        common.chart(tables.timeline_chart(record))
        common.table(tables.jobs_table(record), key="bt_jobs", column_config=tables.JOB_COLUMN_CONFIG)
    else:
        st.caption("No jobs yet: the batch has not been started.")
    errors = common.errors_by_code(record)
    if not errors.empty:
        st.markdown("**Errors by code**")
        common.table(errors, key="bt_errors")


@st.fragment(run_every=common.REFRESH_SECONDS if running_at_start else None)
def live() -> None:
    # a fragment's rerun does not pass through app.py's guard: it needs its own
    with common.shown_errors("Showing the batches"):
        run_requested_action()
        live_table()


def live_table() -> None:
    batches = common.list_summaries()
    if running_at_start:
        for message in common.poll_active(batches):
            st.warning(message, icon=":material/warning:")
        batches = common.list_summaries()
        if not any(common.is_running(r) for r in batches):
            if done:
                st.session_state["bt_done"] = done  # keep the last action's message for the redraw
            st.rerun()  # everything finished: redraw once without the timer
        st.caption(f"Refreshing every {common.REFRESH_SECONDS} s while a batch runs.")
    find, status = st.columns([2, 1])
    needle = find.text_input("Find", key="bt_find", placeholder="name, id or model contains…")
    wanted = status.multiselect("Status", sorted({r.status for r in batches}), key="bt_status")
    batches = tables.matching(batches, needle, wanted)
    if not batches:
        st.info("No batch matches these filters.", icon=":material/filter_alt_off:")
        return
    table = tables.batch_table(batches)
    event = common.table(
        table,
        column_config=tables.BATCH_COLUMN_CONFIG,
        column_order=tables.BATCH_SHOWN + (["owner"] if signin.viewer().signed_in else []),
        on_select="rerun",
        selection_mode="single-row",
        key="bt_table",
    )
    pick_from_table(event, table)
    details(common.load_record(common.pick_batch(batches, "Details of", key="selected_batch").id))


live()
