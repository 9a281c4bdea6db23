"""The dashboard in a real Chromium: upload → start on the local engine → watch → filter → download a CSV.

Runs the dashboard as `langbatch dashboard` does (its launcher, then `streamlit run dashboard/app.py`) on a
free 127.0.0.1 port against a temp data dir and a fast local engine (upstream backend), and saves screenshots
into tests/artifacts/screenshots/.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.chromium import CHROMIUM, CHROMIUM_ARGS, SETTLED
from support.processes import running

ROOT = Path(__file__).resolve().parents[1]
# What the browser saw, for a look after a failure. The README's screenshots (real answers from the bundled
# model, not this test engine's "echo:" text) come from docs/screenshots/take.py.
SHOTS = ROOT / "tests" / "artifacts" / "screenshots"

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


@contextmanager
def running_dashboard(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """The dashboard as `langbatch dashboard` starts it, on a free 127.0.0.1 port with ``env`` added; its URL
    until the end."""
    from langbatch_core.cli import dashboard_command

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = dashboard_command(port, "127.0.0.1")
    with running(command, log_path, env={**os.environ, **env}, ready=f"{url}/_stcore/health"):
        yield url


@pytest.fixture
def dashboard(make_engine, isolated_data_dir: Path, tmp_path: Path):
    """The dashboard pointed at the temp data dir and the test engine; its URL.

    The engine runs 150 requests a minute, so the 12 requests take a few seconds: long enough to watch the
    Batches page refresh by itself.
    """
    engine = make_engine(rpm=150)
    env = {"LANGBATCH_DATA_DIR": str(isolated_data_dir), "LANGBATCH_ENGINE_URL": engine.base_url}
    with running_dashboard(env, tmp_path / "streamlit.log") as url:
        yield url


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


# ---------------------------------------------------------------- never twice, nothing from the internet, fit


def stored_batches(data_dir: Path) -> list:
    from langbatch_core.storage import DuckDBBatchStorage

    return DuckDBBatchStorage(data_dir / "langbatch.duckdb").list()


def test_a_double_click_or_second_click_on_create_and_start_makes_one_batch(
    page, request_file, isolated_data_dir
):
    page.get_by_text("Upload a .jsonl request file").wait_for()
    page.locator("input[type=file]").set_input_files(str(request_file))
    page.get_by_text("Valid: 12 requests ready to run.").wait_for()
    create = page.get_by_role("button", name="Create and start")
    create.dblclick()
    page.wait_for_timeout(300)
    create.click()  # and once more while the first may still run
    settle(page)
    page.get_by_text("started.").or_(page.get_by_text("made from this file")).first.wait_for()
    settle(page)
    (batch,) = stored_batches(isolated_data_dir)
    assert batch.jobs and batch.attempts == 1


def seed_results(data_dir: Path, n: int = 30) -> str:
    """A cancelled batch in the dashboard's store: long answers, rejected and never-run requests."""
    from langbatch_core.storage import BatchRecord, DuckDBBatchStorage

    store = DuckDBBatchStorage(data_dir / "langbatch.duckdb")
    record = BatchRecord(id="lb_seeded", endpoint="/v1/chat/completions", name="seeded", status="cancelled")
    requests, results = [], []
    for i in range(n):
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {i}"}]}
        requests.append({"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions", "body": body})
        if i % 5 == 4:
            error = {"error": {"code": "invalid_value", "message": "The request was rejected: bad value."}}
            response, err = {"status_code": 400, "body": error}, None
        elif i % 7 == 6:
            response, err = None, {"code": "batch_cancelled", "message": "The batch was cancelled."}
        else:
            answer = f"Answer {i}: " + "a long and careful explanation " * 40
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }
            usage = {"prompt_tokens": 10, "completion_tokens": 200, "total_tokens": 210}
            response, err = {"status_code": 200, "body": {"choices": [choice], "usage": usage}}, None
        results.append({"custom_id": f"q{i}", "response": response, "error": err})
    folder = store.batch_dir(record.id)
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("requests.jsonl", requests), ("results.jsonl", results)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    record.request_count, record.failed = n, sum(1 for i in range(n) if i % 5 == 4)
    record.not_run = sum(1 for i in range(n) if i % 5 != 4 and i % 7 == 6)
    record.succeeded = n - record.failed - record.not_run
    record.pending = 0
    store.save(record)
    return record.id


OVERFLOW = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    const cut = [...document.querySelectorAll('button [data-testid="stMarkdownContainer"]')]
        .filter(e => e.scrollWidth > e.clientWidth).map(e => e.textContent);
    return {overflow: main.scrollWidth - main.clientWidth, cut: cut};
}"""


def test_every_page_opens_by_its_url_fits_1400_px_and_fetches_nothing_from_outside(
    dashboard, isolated_data_dir
):
    from playwright.sync_api import sync_playwright

    seed_results(isolated_data_dir)
    outside = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.set_default_timeout(30_000)
        local = ("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:", "about:")
        tab.on("request", lambda r: None if r.url.startswith(local) else outside.append(r.url))
        for path, heading in (("new", "New batch"), ("batches", "Batches"), ("results", "Results"),
                              ("settings", "Settings")):  # fmt: skip
            tab.goto(f"{dashboard}/{path}")
            tab.get_by_role("heading", name=heading, exact=True).first.wait_for()
            settle(tab)
            tab.wait_for_timeout(1000)  # the favicon and the grids' fonts load after the script
            assert not tab.get_by_text("Page not found").count(), path
            if path == "results":  # 30 rows: a tall grid shows 16 at once, not 10
                grid = tab.locator('[data-testid="stDataFrame"]').first.bounding_box()
                assert grid["height"] >= 550, grid
            fit = tab.evaluate(OVERFLOW)
            assert fit == {"overflow": 0, "cut": []}, (path, fit)
            SHOTS.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(SHOTS / f"{path}-1400.png"), full_page=True)
        browser.close()
    assert outside == []
