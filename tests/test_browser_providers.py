"""A batch on Anthropic in a real Chromium: save a connection on Settings → upload a file for a Claude model →
pick that connection → create and start → watch it finish on Batches → read the answers on Results.

The connection points at the Anthropic test server (tests/support/anthropic_server.py), which answers
"echo: <question>" after a few seconds of processing; the dashboard finds its key in ANTHROPIC_API_KEY.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.anthropic_server import AnthropicServer
from support.chromium import CHROMIUM, CHROMIUM_ARGS
from test_browser_dashboard import running_dashboard, settle, shoot

pytestmark = pytest.mark.browser  # without Chromium, conftest.py leaves these out and says so once

MODEL = "claude-haiku-4-5"
QUESTIONS = {
    "capital": "What is the capital of France?",
    "colours": "Name three primary colours.",
    "planet": "Which planet is known as the red planet?",
    "refused": "[[error]] The provider rejects this one.",
}


@pytest.fixture
def claude_file(tmp_path: Path) -> Path:
    lines = [
        {
            "custom_id": custom_id,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": MODEL, "messages": [{"role": "user", "content": q}], "max_tokens": 64},
        }
        for custom_id, q in QUESTIONS.items()
    ]
    path = tmp_path / "claude.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def anthropic():
    # long enough to see the batch running and the page refreshing by itself (every 2 s) before it ends
    with AnthropicServer(processing_seconds=6) as server:
        yield server


@pytest.fixture
def page(anthropic, isolated_data_dir: Path, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    env = {
        "LANGBATCH_DATA_DIR": str(isolated_data_dir),
        "ANTHROPIC_API_KEY": anthropic.api_key,
        "ANTHROPIC_BASE_URL": "",  # the built-in Anthropic connection must not be the test server
    }
    with running_dashboard(env, tmp_path / "streamlit.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1440, "height": 1500})
        tab.set_default_timeout(30_000)
        tab.goto(f"{url}/settings")
        yield tab
        browser.close()


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``label``."""
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def save_anthropic_connection(page, base_url: str) -> None:
    page.get_by_text("Add a connection").click()
    page.get_by_label("Name", exact=True).fill("claude-test")
    choose(page, "Kind", "Anthropic")
    page.get_by_label("Base URL", exact=True).fill(base_url)
    page.get_by_label("Key variable (its name, not the key)").fill("ANTHROPIC_API_KEY")
    page.get_by_role("button", name="Save connection").click()
    page.get_by_text("Connection saved.").wait_for()


def test_a_batch_on_anthropic_is_created_started_watched_and_explored(page, anthropic, claude_file):
    save_anthropic_connection(page, anthropic.base_url)

    # New batch: the file for a Claude model, on the saved Anthropic connection
    page.get_by_role("link", name="New batch").first.click()
    page.locator("input[type=file]").set_input_files(str(claude_file))
    page.get_by_text("Valid: 4 requests ready to run.").wait_for()
    page.get_by_text(f"Model: {MODEL}").wait_for()
    choose(page, "Connection", "claude-test (Anthropic)")
    assert not page.get_by_text("No key for").count()
    shoot(page, "new-batch-anthropic.png")
    page.get_by_role("button", name="Create and start").click()
    page.get_by_text("started.").wait_for()
    assert len(anthropic.created) == 1
    sent = anthropic.created[0]["requests"]
    assert sorted(r["custom_id"] for r in sent) == sorted(QUESTIONS)
    assert {r["params"]["model"] for r in sent} == {MODEL}

    # Batches: running at Anthropic, the page refreshes by itself until it has ended
    page.get_by_role("link", name="Batches").first.click()
    page.get_by_text("Refreshing every").wait_for()
    page.get_by_text("0 of 4 requests finished").wait_for()
    page.get_by_text("4 of 4 requests finished").wait_for(timeout=60_000)
    page.get_by_text("Refreshing every").wait_for(state="detached", timeout=30_000)
    page.get_by_text("Status: completed").wait_for()
    page.get_by_text(f"Model: {MODEL}").wait_for()
    shoot(page, "batches-anthropic.png")

    # Results: the answers, one row's detail by a click, the rejected one's message by its id
    page.get_by_role("button", name="Explore results").click()
    page.get_by_text("4 of 4 rows").wait_for()
    cells = page.locator('[role="gridcell"]')  # the grid's accessible copy of what its canvas draws
    for question in ("What is the capital of France?", "Name three primary colours."):
        cells.get_by_text(f"echo: {question}", exact=True).wait_for(state="attached")
    search = page.get_by_role("textbox", name="Search")
    search.fill("red planet")
    search.press("Enter")
    page.get_by_text("1 of 4 rows").wait_for()
    settle(page)
    grid = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
    page.mouse.click(grid["x"] + 15, grid["y"] + 35 + 17)  # the only row's selection cell
    shown = page.locator('[data-testid="stText"]')  # the row's long texts, whole
    shown.get_by_text("echo: Which planet is known as the red planet?", exact=True).wait_for()
    assert page.get_by_role("textbox", name="Row detail: custom_id").input_value() == "planet"
    page.get_by_text('"custom_id": "planet"').first.wait_for()
    shoot(page, "results-anthropic.png")

    search.fill("")
    search.press("Enter")
    page.get_by_text("4 of 4 rows").wait_for()
    detail = page.get_by_role("textbox", name="Row detail: custom_id")
    detail.fill("refused")
    detail.press("Enter")
    page.get_by_text("Error message", exact=True).wait_for()
    from playwright.sync_api import expect

    # the prompt, then the provider's reason; expect() retries while a rerun replaces the elements
    expect(shown.first).to_contain_text("[[error]]")
    page.get_by_text('"custom_id": "refused"').first.wait_for()
