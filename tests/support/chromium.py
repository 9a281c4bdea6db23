"""How LangBatch's browser tests, benchmarks and screenshot script drive Debian's Chromium (no pytest here, so
``bench/`` and ``docs/screenshots/`` can import it too).

    from support.chromium import CHROMIUM, CHROMIUM_ARGS, SETTLED
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    page.wait_for_function(SETTLED)

``LANGBATCH_TEST_CHROMIUM`` names another executable (tests of the missing-browser rule point it at nothing).
"""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = Path(os.environ.get("LANGBATCH_TEST_CHROMIUM", "/usr/bin/chromium"))
# headless as root, and nothing sent anywhere: this machine's network is closed, and a test reaches no network
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# Streamlit has run the script and drawn everything: no running-man widget, no skeleton, nothing stale
SETTLED = """() => !document.querySelector(
    '[data-testid="stStatusWidget"], [data-testid="stSkeleton"], [data-stale="true"]')"""
