"""LangBatch dashboard: the entry point only lists the pages."""

import streamlit as st

st.set_page_config(page_title="LangBatch", page_icon="📦", layout="wide")
st.title("LangBatch")
st.info("The dashboard pages are being built. Use `langbatch_core` from Python meanwhile.")
