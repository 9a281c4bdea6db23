"""LangBatch dashboard: the entry point only lists the pages.

streamlit run dashboard/app.py        # http://127.0.0.1:8501 (see .streamlit/config.toml)
"""

import sys
from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # pages import the shared module `common` next to this file
    sys.path.insert(0, str(HERE))

# an emoji favicon is drawn by the browser: a :material/...: one would be fetched from a font CDN
st.set_page_config(page_title="LangBatch", page_icon="📦", layout="wide")
import common  # noqa: E402  (found through the sys.path entry above)
import signin  # noqa: E402

# with sign-in configured, nothing below is drawn (no page, no download) until an allowed person signs in
viewer = None
with common.shown_errors("Checking who you are"):  # e.g. a wrong [langbatch] setting: a sentence, then stop
    viewer = signin.gate()
if viewer is None:
    st.stop()

new_batch = st.Page(
    HERE / "views" / "new_batch.py", title="New batch", icon=":material/add_circle:", url_path="new"
)
pages = [
    # the default page lives at "/" whatever its url_path: a hidden one sends "/" on to "/new", so that every
    # page, New batch too, opens by its own URL
    st.Page(
        lambda: st.switch_page(new_batch),
        title="LangBatch",
        url_path="home",
        default=True,
        visibility="hidden",
    ),
    new_batch,
    st.Page(
        HERE / "views" / "new_table.py", title="From a table", icon=":material/table_view:", url_path="table"
    ),
    st.Page(HERE / "views" / "batches.py", title="Batches", icon=":material/list_alt:", url_path="batches"),
    st.Page(HERE / "views" / "results.py", title="Results", icon=":material/search:", url_path="results"),
    st.Page(HERE / "views" / "compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
    st.Page(
        HERE / "views" / "settings.py", title="Settings", icon=":material/settings:", url_path="settings"
    ),
]
if viewer.admin:
    pages.append(
        st.Page(HERE / "views" / "audit.py", title="Audit log", icon=":material/policy:", url_path="audit")
    )
page = st.navigation(pages)

with common.shown_errors(f"Showing the {page.title} page"):  # a bug shows a sentence, not a traceback
    page.run()
