"""Settings: the connections (never a key's value), the data directory and the local engine."""

import os

import common
import connections
import pandas as pd
import signin
import streamlit as st

from langbatch_core.local.control import stop_engine
from langbatch_core.storage import describe_default_storage

common.sidebar()
st.title("Settings")
viewer = signin.viewer()

# ---------------------------------------------------------------- connections
st.subheader("Connections")
st.caption(
    "Per-job limits shape how a big file is split into jobs (the provider's batch rate limits). "
    "Keys are read from environment variables or `.streamlit/secrets.toml` (the variable of the same name); "
    "LangBatch shows only whether a key is configured and never stores or displays its value."
)
conns = connections.all_connections()
table = pd.DataFrame([connections.describe(c) for c in conns])
st.dataframe(
    table,
    hide_index=True,
    column_config={"key configured": st.column_config.CheckboxColumn("key configured")},
    key="settings_connections",
)
for conn in conns:
    if not connections.key_configured(conn):
        st.info(f"{common.md_escape(conn.name)}: set `{conn.api_key_env}` to use it.", icon=":material/key:")


def connection_forms() -> None:
    """Add and remove saved connections (admins only, when the dashboard has sign-in)."""
    adding = st.expander(
        "Add a connection: an OpenAI-compatible API (Groq, Together, a remote langbatch serve, …)"
    )
    with adding, st.form("settings_add", clear_on_submit=False):
        kinds = connections.kind_labels()
        name = st.text_input("Name", key="conn_name", placeholder="My provider")
        kind = st.selectbox("Kind", list(kinds), index=list(kinds).index("compatible"),
                            format_func=lambda kind: kinds[kind], key="conn_kind")  # fmt: skip
        base_url = st.text_input("Base URL", key="conn_url", placeholder="https://api.example.com/v1")
        key_env = st.text_input(
            "Key variable (its name, not the key)", key="conn_key_env", placeholder="EXAMPLE_API_KEY"
        )
        model = st.text_input("Default model (optional)", key="conn_model")
        left, right = st.columns(2)
        max_requests = left.number_input(
            "Max requests per job (0: 50,000)", min_value=0, step=1000, key="conn_max_requests"
        )
        max_tokens = right.number_input(
            "Max enqueued tokens (0: no limit)", min_value=0, step=100_000, key="conn_max_tokens"
        )
        if st.form_submit_button("Save connection", type="primary"):
            with common.shown_errors("Saving the connection"):
                entry = connections.make_connection(
                    kind,
                    name.strip(),
                    base_url=base_url.strip() or None,
                    api_key_env=key_env.strip() or None,
                    model=model.strip() or None,
                    max_requests=int(max_requests) or None,
                    max_enqueued_tokens=int(max_tokens) or None,
                )
                connections.save_connection(entry)
                st.success("Connection saved.", icon=":material/check_circle:")

    saved = connections.saved_connections()
    if saved:
        with st.expander("Remove a saved connection"):
            doomed = st.selectbox("Connection", [c.name for c in saved if c.name], key="conn_delete_name")
            if st.button("Remove", key="conn_delete"):
                connections.delete_connection(doomed)
                st.rerun()


if viewer.admin:
    connection_forms()
else:
    st.caption("Connections are the deployment's: an admin adds or removes them; you pick one on New batch.")

# ---------------------------------------------------------------- data and engine
st.subheader("Where your batches are")
where = describe_default_storage(common.data_dir())
rows = [("Data directory", "data_dir"), ("Batch store", "store"), ("Batch files", "batches")]
st.code("\n".join(f"{label:<16}{where[key]}" for label, key in rows), language=None)
st.caption(
    "Python (`OpenAIChatCompletionBatch(...)` without `storage=`), the `langbatch` CLI and this dashboard "
    "share this store. Set `LANGBATCH_DATA_DIR` before starting the dashboard to use another data "
    "directory; uploads and the local engine's state live there too."
)

st.subheader("Local engine")
status = common.engine_status()
external = bool(os.environ.get(connections.ENGINE_URL_ENV))
if status["running"]:
    st.success("The local engine is running.", icon=":material/check_circle:")
    st.text(
        f"Address: {status['base_url']}   Process id: {status.get('pid') or '—'}\n"
        f"Backend: {status.get('backend') or '—'}   Model: {status.get('model') or '—'}\n"
        f"Data directory: {status.get('data_dir') or '—'}\n"
        f"Batches running now: {status.get('running_batches', '—')}"
    )
    if not external and viewer.admin:
        st.caption(
            "It keeps running when the dashboard stops, so batches finish. Stopping it pauses running "
            "batches: they resume where they were at its next start. In a terminal: `langbatch engine stop`."
        )
        if st.button("Stop the local engine", key="engine_stop"):
            with common.shown_errors("Stopping the local engine"), st.spinner("Stopping the local engine…"):
                stopped = stop_engine(common.data_dir())
                st.session_state["engine_stopped"] = stopped["pid"] if stopped else None
                st.rerun()
elif status["base_url"]:
    st.error(
        f"The local engine at {common.md_escape(status['base_url'])} does not answer. Check that it runs "
        f"(`langbatch serve`), or unset {connections.ENGINE_URL_ENV} to let the dashboard start its own.",
        icon=":material/error:",
    )
else:
    if st.session_state.pop("engine_stopped", None):
        st.success("The local engine stopped. Its running batches resume at its next start.")
    st.info(
        "The local engine is not running. It starts by itself when a batch on the local engine starts "
        "(first start: a few seconds), or start it now.",
        icon=":material/power_settings_new:",
    )
    if viewer.admin and st.button("Start the local engine", key="engine_start"):
        with common.shown_errors("Starting the local engine"), st.spinner("Starting the local engine…"):
            common.start_engine()
            st.rerun()
