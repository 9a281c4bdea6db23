"""The dashboard's launcher (`langbatch dashboard` runs dashboard/launch.py): the pages' libraries are loaded
before the server answers, so the first visitor does not wait for them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from support.data_results import success

from .conftest import DASHBOARD, stored_batch_with_results

HEAVY = ("pandas", "pyarrow", "numpy", "duckdb", "altair", "narwhals", "jsonschema", "jinja2")
HEAVY += ("langbatch_core",)
PAGE_MODULES = {path.stem for path in DASHBOARD.glob("*.py")} - {"app", "launch"}

# Runs in a fresh interpreter: warm up as the launcher does, then run every page the way Streamlit does
# (AppTest), the Results page on a plain batch and on a table batch with its charts; prints the modules the
# page runs imported.
PAGES_AFTER_WARM = """
import json, sys
sys.path.insert(0, sys.argv[1])
import launch
from streamlit.testing.v1 import AppTest

launch.warm()
before = set(sys.modules)
at = AppTest.from_file(str(launch.APP), default_timeout=120)
at.run()  # New batch, the default page
for batch_id, tab in ((sys.argv[2], "rs_tab"), (sys.argv[3], "rt_tab")):
    at.switch_page("views/results.py")
    at.session_state["results_batch"] = batch_id
    at.run()
    at.session_state[tab] = "Charts"
    at.run()
for page in ("batches", "compare", "new_table", "settings", "audit"):
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, (page, at.exception)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_a_page_run_after_the_warm_up_imports_nothing_heavy(data_dir, tmp_path):
    plain = stored_batch_with_results(20)
    table = stored_table_batch(tmp_path)
    run = subprocess.run(
        [sys.executable, "-c", PAGES_AFTER_WARM, str(DASHBOARD), plain.id, table.id],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    imported = json.loads(run.stdout.splitlines()[-1])
    late = [name for name in imported if name.split(".")[0] in HEAVY or name in PAGE_MODULES]
    assert not late, f"imported by the first page runs, not by launch.warm(): {late}"


def stored_table_batch(folder: Path):
    """A finished batch made from a 3-row table with 2 answer fields, in the dashboard's store."""
    import common

    from langbatch_core import OpenAIChatCompletionBatch

    csv = folder / "reviews.csv"
    csv.write_text("id,review\nR1,great\nR2,awful\nR3,fine\n", encoding="utf-8")
    fields = [{"name": "sentiment", "type": "enum", "values": ["positive", "negative"]}]
    fields.append({"name": "score", "type": "number"})
    batch = OpenAIChatCompletionBatch.from_table(
        csv, template="Sentiment of: {{ review }}", schema=fields, id_column="id", storage=common.storage()
    )
    answers = [success(f"R{n}", json.dumps({"sentiment": "positive", "score": n})) for n in (1, 2, 3)]
    batch.results_path.write_text("".join(json.dumps(line) + "\n" for line in answers), encoding="utf-8")
    batch.record.succeeded = 3
    common.storage().save(batch.record)
    return batch.record


def test_the_warm_up_needs_no_extra_beyond_make_runs(tmp_path):
    """`make run` installs the model extra only: without the team extra's psycopg and boto3 the launcher
    still starts (the names that need them are left to the code that uses them)."""
    script = "import sys\nsys.modules.update(psycopg=None, boto3=None)\nimport launch\nlaunch.warm()\n"
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=DASHBOARD, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]


def test_every_dashboard_module_is_warmed():
    import launch

    assert set(launch.PAGE_MODULES) >= PAGE_MODULES


def test_the_server_has_the_libraries_loaded_before_it_answers(data_dir, tmp_path):
    """`langbatch dashboard` as a user runs it: once /_stcore/health says ok, and before any page was asked
    for, the serving process has pyarrow's and DuckDB's native libraries mapped (a bare `streamlit run`
    loads them only when a page needs them)."""
    port = free_port()
    command = [sys.executable, "-m", "langbatch_core.cli", "dashboard", "--port", str(port)]
    log = (tmp_path / "dashboard.log").open("wb")
    dashboard = subprocess.Popen(
        command, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", dashboard, tmp_path / "dashboard.log")
        server = serving_process(dashboard.pid)
        mapped = Path(f"/proc/{server}/maps").read_text()
    finally:
        os.killpg(dashboard.pid, signal.SIGINT)
        dashboard.wait(timeout=60)
        log.close()
    assert "libarrow.so" in mapped and "duckdb" in mapped and "pandas/_libs" in mapped


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                return
        except httpx.HTTPError:
            pass
        assert process.poll() is None, "the dashboard stopped: " + log.read_text()[-2000:]
        time.sleep(0.1)
    raise AssertionError("the dashboard did not answer: " + log.read_text()[-2000:])


def serving_process(pid: int) -> int:
    """The one child of `langbatch dashboard`: the process that serves the pages."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])
