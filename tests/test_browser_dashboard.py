"""The dashboard in a real Chromium: upload → start on the local engine → watch → filter → download a CSV.

Runs `streamlit run dashboard/app.py` on a free 127.0.0.1 port against a temp data dir and a fast local
engine (upstream backend), and saves screenshots into tests/artifacts/screenshots/.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from support.browser import CHROMIUM

ROOT = Path(__file__).resolve().parents[1]
# What the browser saw, for a look after a failure. The README's screenshots (real answers from the bundled
# model, not this test engine's "echo:" text) come from docs/screenshots/take.py.
SHOTS = ROOT / "tests" / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = pytest.mark.browser  # without Chromium, conftest.py leaves these out and says so once

QUESTIONS = [
    "What is the capital of France?",
    "Name three primary colours.",
    "Translate 'good morning' into Spanish.",
    "What is 12 times 12?",
    "Summarise the plot of Hamlet in one sentence.",
    "Give a synonym for 'happy'.",
    "[[400]] This request is rejected by the API.",
    "Which planet is known as the red planet?",
    "What does CPU stand for?",
    "Write a haiku about batch jobs.",
    "How many continents are there?",
    "[[400]] Another rejected request.",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def request_file(tmp_path: Path) -> Path:
    lines = [
        {
            "custom_id": f"question-{i + 1:02d}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": q}], "max_tokens": 64},
        }
        for i, q in enumerate(QUESTIONS)
    ]
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def dashboard(make_engine, isolated_data_dir: Path, tmp_path: Path):
    """`streamlit run` on a free port, pointed at the temp data dir and the test engine; its URL.

    The engine runs 150 requests a minute, so the 12 requests take a few seconds: long enough to watch the
    Batches page refresh by itself.
    """
    engine = make_engine(rpm=150)
    port = free_port()
    env = {
        **os.environ,
        "LANGBATCH_DATA_DIR": str(isolated_data_dir),
        "LANGBATCH_ENGINE_URL": engine.base_url,
    }
    log = (tmp_path / "streamlit.log").open("wb")
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("streamlit did not start: " + (tmp_path / "streamlit.log").read_text()[-2000:])
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def page(dashboard):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 1500}, accept_downloads=True)
        tab = context.new_page()
        tab.set_default_timeout(30_000)
        tab.goto(dashboard)
        yield tab
        context.close()
        browser.close()


SETTLED = """() => !document.querySelector(
    '[data-testid="stStatusWidget"], [data-testid="stSkeleton"], [data-stale="true"]')"""


def settle(page) -> None:
    """Wait until Streamlit has run the script and drawn everything (no status widget, skeleton, stale)."""
    page.wait_for_timeout(500)
    page.wait_for_function(SETTLED, timeout=30_000)
    page.wait_for_timeout(500)  # charts and tables finish drawing


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    settle(page)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def test_upload_start_watch_filter_and_download(page, request_file, tmp_path):
    # New batch: upload, read the report, create and start on the local engine
    page.get_by_text("Upload a .jsonl request file").wait_for()
    page.locator("input[type=file]").set_input_files(str(request_file))
    page.get_by_text("Valid: 12 requests ready to run.").wait_for()
    shoot(page, "new-batch.png")
    page.get_by_role("button", name="Create and start").click()
    page.get_by_text("started.").wait_for()

    # Batches: the page refreshes by itself until the batch completes
    page.get_by_role("link", name="Batches").first.click()
    page.get_by_text("Refreshing every").wait_for()
    page.get_by_text("12 of 12 requests finished").wait_for(timeout=60_000)
    page.get_by_text("Refreshing every").wait_for(state="detached", timeout=30_000)
    shoot(page, "batches.png")

    # Results: filter by a search, inspect, download the filtered rows as CSV
    page.get_by_role("button", name="Explore results").click()
    page.get_by_text("12 of 12 rows").wait_for()
    search = page.get_by_role("textbox", name="Search")
    search.fill("planet")
    search.press("Enter")
    page.get_by_text("1 of 12 rows").wait_for()
    # click the only row's selection cell in the grid (a canvas: by position, below the 35 px header)
    settle(page)
    grid = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
    page.mouse.click(grid["x"] + 15, grid["y"] + 35 + 17)
    page.get_by_text('"custom_id": "question-08"').first.wait_for()
    detail = page.get_by_role("textbox", name="Row detail: custom_id")
    assert detail.input_value() == "question-08"
    shoot(page, "results.png")
    with page.expect_download() as download:
        page.get_by_role("button", name="CSV", exact=True).click()
    saved = tmp_path / "filtered.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert [r["custom_id"] for r in rows] == ["question-08"]
    assert rows[0]["status"] == "succeeded"
    assert "red planet" in rows[0]["answer"]

    search.fill("")
    search.press("Enter")
    page.get_by_text("12 of 12 rows").wait_for()
    page.get_by_role("tab", name="Charts").click()
    page.get_by_text("Status breakdown").first.wait_for()
    shoot(page, "results-charts.png")

    page.get_by_role("link", name="Settings").first.click()
    page.get_by_text("The local engine is running.").wait_for()
    shoot(page, "settings.png")

    # a broken file: the issues are listed by line and the batch cannot be started
    broken = tmp_path / "broken.jsonl"
    good = request_file.read_text().splitlines()
    broken.write_text("\n".join([good[0], "{not json", good[1].replace('"POST"', '"GET"'), good[0]]) + "\n")
    page.get_by_role("link", name="New batch").first.click()
    page.locator("input[type=file]").set_input_files(str(broken))
    page.get_by_text("this file cannot be started").wait_for()
    assert page.get_by_role("button", name="Create and start").count() == 0
    shoot(page, "new-batch-invalid.png")
