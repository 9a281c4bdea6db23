"""Retake the README's screenshots with real answers from the bundled model.

    .venv/bin/python docs/screenshots/take.py            # about a minute; needs /usr/bin/chromium

Starts `streamlit run dashboard/app.py` on a free 127.0.0.1 port and a temp data directory, with the default
local engine (the bundled SmolLM2 model on numpy, started on demand), then clicks through what a newcomer
does: try the sample → create and start → watch the Batches page → explore the results → Settings → a broken
file. Writes the PNGs next to this script; stops the dashboard and the engine it started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))
from support.chromium import CHROMIUM, CHROMIUM_ARGS, SETTLED  # noqa: E402

BROKEN = [
    '{"custom_id": "q-1", "method": "POST", "url": "/v1/chat/completions", '
    '"body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}}',
    '{"custom_id": "q-2", "method": "POST", "url": "/v1/chat/completions", "body": {',
    '{"custom_id": "q-3", "method": "GET", "url": "/v1/chat/completions", '
    '"body": {"model": "gpt-4o-mini", "messages": []}}',
    '{"custom_id": "q-1", "method": "POST", "url": "/v1/chat/completions", '
    '"body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello again"}]}}',
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_dashboard(data_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """`streamlit run` on a free port with the default (bundled model) engine; the process and its URL."""
    env = {k: v for k, v in os.environ.items() if k not in ("LANGBATCH_ENGINE_URL", "OPENAI_API_KEY")}
    env["LANGBATCH_DATA_DIR"] = str(data_dir)
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                return process, url
        except httpx.HTTPError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"streamlit did not start; see {log}")


def stop_engine(data_dir: Path) -> None:
    """Stop the local engine the dashboard started for ``data_dir`` (its pid is in engine/engine.json)."""
    info = data_dir / "engine" / "engine.json"
    if info.exists():
        with contextlib.suppress(ProcessLookupError, KeyError, ValueError):
            os.kill(json.loads(info.read_text())["pid"], signal.SIGTERM)


def settle(page) -> None:
    page.wait_for_timeout(500)
    page.wait_for_function(SETTLED, timeout=60_000)
    page.wait_for_timeout(800)  # charts and grids finish drawing


def shoot(page, name: str) -> None:
    settle(page)
    page.screenshot(path=str(SHOTS / name), full_page=True)
    print("wrote", SHOTS / name)


def walk(page, work: Path) -> None:
    """The newcomer's walk, one screenshot per page."""
    page.get_by_role("button", name="Try the sample").click()
    page.get_by_text("Valid: 12 requests ready to run.").wait_for()
    shoot(page, "new-batch.png")
    page.get_by_role("button", name="Create and start").click()
    page.get_by_text("started.").wait_for(timeout=120_000)

    page.get_by_role("link", name="Watch it on the Batches page").click()
    page.get_by_text("12 of 12 requests finished").wait_for(timeout=600_000)
    page.get_by_text("Refreshing every").wait_for(state="detached", timeout=60_000)
    shoot(page, "batches.png")

    page.get_by_role("button", name="Explore results").click()
    page.get_by_text("12 of 12 rows").wait_for()
    settle(page)
    grid = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
    page.mouse.click(grid["x"] + 15, grid["y"] + 35 + 17)  # the first row's selection cell (a canvas)
    page.get_by_text('"custom_id": "sample-01"').first.wait_for()
    answer = page.locator('[data-testid="stText"]').nth(1).inner_text()
    if answer.startswith("echo:"):
        raise SystemExit("the answers come from the test upstream, not the bundled model")
    shoot(page, "results.png")
    page.get_by_role("tab", name="Charts").click()
    page.get_by_text("Status breakdown").first.wait_for()
    shoot(page, "results-charts.png")

    page.get_by_role("link", name="Settings").first.click()
    page.get_by_text("The local engine is running.").wait_for()
    shoot(page, "settings.png")

    broken = work / "broken.jsonl"
    broken.write_text("\n".join(BROKEN) + "\n", encoding="utf-8")
    page.get_by_role("link", name="New batch").first.click()
    page.locator("input[type=file]").set_input_files(str(broken))
    page.get_by_text("this file cannot be started").wait_for()
    shoot(page, "new-batch-invalid.png")


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="langbatch-shots-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        process, url = start_dashboard(data_dir, work / "streamlit.log")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 1500})
                page.set_default_timeout(60_000)
                page.goto(url)
                walk(page, work)
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=15)
            stop_engine(data_dir)


if __name__ == "__main__":
    main()
