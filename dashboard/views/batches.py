"""Batches: every batch in the store, refreshing by itself while one runs; details and actions per batch."""

import common
import streamlit as st
import tables

common.sidebar()
st.title("Batches")

done = st.session_state.pop("bt_done", None)
if done and done.startswith("Nothing to retry"):
    st.info(done, icon=":material/info:")
elif done:
    st.success(done, icon=":material/check_circle:")

records = None
with common.shown_errors("Reading the batch store"):
    records = common.list_batches()
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


def actions(record) -> None:
    """Start / refresh / retry / cancel / delete buttons, downloads and a link to the results."""
    active = record.status in common.ACTIVE_STATUSES
    buttons = st.columns(6)
    pressed = {
        "start": buttons[0].button(
            "Start",
            key="bt_start",
            disabled=not common.can_start(record),
            help="Submits the requests; after an interrupted start it finishes the submission.",
        ),
        "refresh": buttons[1].button("Refresh", key="bt_refresh"),
        "retry": buttons[2].button(
            "Retry failed",
            key="bt_retry",
            disabled=active or record.status == "not_started" or not (record.failed or record.pending),
            help="Resubmits only the requests without a successful result.",
        ),
        "cancel": buttons[3].button("Cancel", key="bt_cancel", disabled=not active),
    }
    if buttons[4].button("Delete…", key="bt_delete"):
        st.session_state["bt_confirm_delete"] = record.id
    if buttons[5].button(
        "Explore results", key="bt_explore", type="primary", disabled=not record.succeeded + record.failed
    ):
        st.session_state["results_batch"] = record.id
        st.switch_page("views/results.py")
    for action, clicked in pressed.items():
        if clicked:
            with common.shown_errors(f"{action.capitalize()} of batch {record.id}"), st.spinner(f"{action}…"):
                st.session_state["bt_done"] = common.batch_action(record.id, action)
                st.rerun()
    if st.session_state.get("bt_confirm_delete") == record.id:
        confirm_delete(record)
    downloads(record)


def confirm_delete(record) -> None:
    st.warning(
        f"Delete batch {record.id} and its files from this data directory? Jobs still running at the "
        "provider are cancelled first. This cannot be undone.",
        icon=":material/delete:",
    )
    yes, no, _ = st.columns([1, 1, 4])
    if yes.button("Yes, delete it", key="bt_delete_yes", type="primary"):
        with common.shown_errors(f"Deleting batch {record.id}"):
            st.session_state["bt_done"] = common.batch_action(record.id, "delete")
            st.session_state.pop("bt_confirm_delete", None)
            st.session_state.pop("selected_batch", None)
            st.rerun()
    if no.button("Keep it", key="bt_delete_no"):
        st.session_state.pop("bt_confirm_delete", None)
        st.rerun()


def downloads(record) -> None:
    left, right, _ = st.columns([1, 1, 3])
    requests_path = common.requests_file(record.id)
    if requests_path.exists():
        left.download_button(
            "Download input (JSONL)",
            data=requests_path.read_bytes,
            file_name=f"{record.id}-requests.jsonl",
            mime="application/jsonl",
            key="bt_dl_input",
            on_click="ignore",
        )
    results_path = common.results_file(record)
    if results_path is not None:
        right.download_button(
            "Download results (JSONL)",
            data=results_path.read_bytes,
            file_name=f"{record.id}-results.jsonl",
            mime="application/jsonl",
            key="bt_dl_results",
            on_click="ignore",
        )


def details(record) -> None:
    st.subheader(f"Batch {record.id}")
    st.text(
        f"Name: {record.name or '—'}   Status: {record.status}\n"
        f"Endpoint: {record.endpoint}   Model: {record.model or '—'}"
    )
    cols = st.columns(5)
    cols[0].metric("Requests", common.count(record.request_count))
    cols[1].metric("Succeeded", common.count(record.succeeded))
    cols[2].metric("Failed", common.count(record.failed))
    cols[3].metric("Pending", common.count(record.pending))
    cols[4].metric("Est. cost", common.money(record.estimated_cost_usd))
    if common.start_interrupted(record):
        st.warning(
            "The start of this batch did not finish: its requests never reached the provider, so nothing "
            "runs. Press Start to submit them again; if it fails again, the message says why.",
            icon=":material/pause_circle:",
        )
    done = record.succeeded + record.failed
    st.progress(tables.progress(record), text=f"{done:,} of {record.request_count:,} requests finished")
    actions(record)
    if record.jobs:
        common.chart(tables.timeline_chart(record))
        st.dataframe(tables.jobs_table(record), hide_index=True, key="bt_jobs")
    else:
        st.caption("No jobs yet: the batch has not been started.")
    errors = common.errors_by_code(record)
    if not errors.empty:
        st.markdown("**Errors by code**")
        st.dataframe(errors, hide_index=True, key="bt_errors")


@st.fragment(run_every=common.REFRESH_SECONDS if running_at_start else None)
def live() -> None:
    # a fragment's rerun does not pass through app.py's guard: it needs its own
    with common.shown_errors("Showing the batches"):
        live_table()


def live_table() -> None:
    batches = common.list_batches()
    if running_at_start:
        for message in common.poll_active(batches):
            st.warning(message, icon=":material/warning:")
        batches = common.list_batches()
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
    event = st.dataframe(
        table,
        hide_index=True,
        column_config=tables.BATCH_COLUMN_CONFIG,
        on_select="rerun",
        selection_mode="single-row",
        key="bt_table",
    )
    pick_from_table(event, table)
    details(common.pick_batch(batches, "Details of", key="selected_batch"))


live()
