"""The Results page as a user gets it: a fresh `langbatch dashboard` (what `make run` starts), Chromium
opening /results.

    .venv/bin/python bench/bench_dashboard_browser.py              # 50,000 rows, best of 3
    .venv/bin/python bench/bench_dashboard_browser.py --quick      # 5,000 rows, best of 2
    .venv/bin/python bench/bench_dashboard_browser.py --arrival file   # results written in place, none kept
    .venv/bin/python bench/bench_dashboard_browser.py --server streamlit   # a bare `streamlit run`

Profile the server while it runs (py-spy is not a dependency: `pip install py-spy`):
    py-spy record -o page.svg --subprocesses -- .venv/bin/python bench/bench_dashboard_browser.py --repeat 1

For each size (the big batch, and a 100-row batch as the baseline) it writes a batch (requests + results) to
a temp data dir, starts the dashboard on it as `langbatch dashboard` does and waits until it answers its
health check (the time printed as "ready"), opens http://127.0.0.1:PORT/results in Chromium and times until
the grid shows the rows ("N of N rows" and the grid drawn): first visit on a fresh server (the server's
first page: loading the table, Streamlit's first run), then a reload (the table cached). The serving
process's CPU time during the first visit is printed too (a busy machine moves it less than wall time), with
the load average before and after, and a bare `pandas.read_json` of the same result file. Then the server
is started afresh on the same port and the same browser opens the page again: a returning user, whose
browser has Streamlit's frontend (its hashed, immutable JavaScript files) in its cache. Target: the
50,000-row page in ≤ 2 s from a fresh server.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT), str(ROOT / "tests")]

from support.chromium import CHROMIUM, CHROMIUM_ARGS, SETTLED  # noqa: E402

BATCH_ID = "lb_bench"


def seed(data_dir: Path, rows: int, scratch: Path, arrival: str = "refresh") -> Path:
    """A finished batch of ``rows`` requests in ``data_dir``'s store; its result file. ``arrival``: how its
    results came: ``refresh``, a completed job's downloaded output merged by ``batch.refresh()`` as in use
    (a worker or the dashboard's refresh: the results table is kept then); ``file``, results.jsonl written
    in place (nothing kept: each fresh server loads the results; see ``forget_kept``)."""
    from bench_dashboard import write_files

    from langbatch_core import OpenAIChatCompletionBatch
    from langbatch_core.storage import BatchRecord, JobRecord
    from langbatch_core.storage.default import default_storage

    requests, results = write_files(scratch, rows)
    store = default_storage(data_dir)
    if arrival == "file":
        store.save(
            BatchRecord(id=BATCH_ID, endpoint="/v1/chat/completions", request_count=rows, succeeded=rows)
        )
        target = store.batch_dir(BATCH_ID)
        target.mkdir(parents=True, exist_ok=True)
        shutil.move(requests, target / "requests.jsonl")
        shutil.move(results, target / "results.jsonl")
        return target / "results.jsonl"
    batch = OpenAIChatCompletionBatch(requests, storage=store)
    output = batch.directory / "jobs" / "a1-j1" / "output.jsonl"
    output.parent.mkdir(parents=True)
    shutil.move(results, output)
    job = JobRecord("a1-j1", 1, rows, "requests.jsonl", status="completed", provider_job_id="batch_1",
                    output_file="jobs/a1-j1/output.jsonl", downloaded=True)  # fmt: skip
    batch.record.jobs.append(job)
    store.save(batch.record)
    batch.refresh()
    assert (batch.directory / ".results.arrow").is_file()
    return batch.results_path


def forget_kept(data_dir: Path) -> None:
    """Removes every kept results table: the next fresh server loads the results (``--arrival file``)."""
    for kept in data_dir.glob("batches/*/.results.arrow"):
        kept.unlink()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SERVERS = {
    # what a user runs (`make run`): the launcher imports the pages' libraries before the server is ready
    "langbatch": [sys.executable, "-m", "langbatch_core.cli", "dashboard", "--host", "127.0.0.1", "--port"],
    # a bare `streamlit run` (as before the launcher), for comparison
    "streamlit": [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true",
                  "--browser.gatherUsageStats", "false", "--server.address", "127.0.0.1", "--server.port"],
}  # fmt: skip
LABELS = {"langbatch": "langbatch dashboard", "streamlit": "streamlit run dashboard/app.py"}


@contextlib.contextmanager
def dashboard_server(
    data_dir: Path, log: Path, server: str = "langbatch", port: int | None = None
) -> Iterator[tuple[str, int, float]]:
    """A fresh dashboard on ``data_dir``, started as ``SERVERS[server]`` on ``port`` (default: a free one);
    (URL, pid of the process that serves it, seconds until it answered its health check) once it answers."""
    import httpx

    port = port or free_port()
    env = {**os.environ, "LANGBATCH_DATA_DIR": str(data_dir)}
    start = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*SERVERS[server], str(port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the dashboard did not start: " + log.read_text()[-2000:])
            time.sleep(0.05)
        ready = time.perf_counter() - start
        yield url, serving_pid(process.pid), ready
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def serving_pid(pid: int) -> int:
    """The process that serves: ``pid`` itself (`streamlit run`) or its one child (`langbatch dashboard`)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0]) if children else pid


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_page(context, url: str, pid: int, rows: int, reload: bool = True) -> tuple[float, float, float]:
    """(first visit, reload, server CPU of the first visit) seconds until /results shows "rows of rows" and
    its grid, settled, in a new tab of the browser ``context``; reload is 0 unless ``reload``. The server's
    CPU time moves less than wall time on a busy machine."""
    tab = context.new_page()
    tab.set_default_timeout(120_000)

    def shown(open_page) -> float:
        start = time.perf_counter()
        open_page()
        tab.get_by_text(f"{rows:,} of {rows:,} rows").wait_for()
        tab.locator('[data-testid="stDataFrame"] canvas').first.wait_for()
        tab.wait_for_function(SETTLED)
        return time.perf_counter() - start

    cpu = cpu_seconds(pid)
    first = shown(lambda: tab.goto(f"{url}/results"))
    cpu = cpu_seconds(pid) - cpu
    again = shown(tab.reload) if reload else 0.0
    tab.close()
    return first, again, cpu


def visits(browser, serve, rows: int, before=lambda: None) -> dict[str, float]:
    """One run: a fresh server (``serve()``, a ``dashboard_server``) and a browser with an empty cache: the
    server's start until ready, the first visit, its server CPU, a reload; then another fresh server on the
    same port and the same browser, which has Streamlit's frontend in its cache (a returning user): the
    first visit again. ``before()`` runs before each server starts."""
    context = browser.new_context(viewport={"width": 1440, "height": 1200})
    try:
        before()
        with serve() as (url, pid, ready):
            first, reload, cpu = time_page(context, url, pid, rows)
        before()
        with serve() as (url, pid, _):
            returning, _, returning_cpu = time_page(context, url, pid, rows, reload=False)
    finally:
        context.close()
    return {"ready": ready, "first": first, "cpu": cpu, "reload": reload, "returning": returning,
            "returning_cpu": returning_cpu}  # fmt: skip


def measure(browser, rows: int, repeat: int, scratch: Path, server: str, arrival: str) -> dict[str, float]:
    """Best of ``repeat`` runs (``visits``); and a bare pandas read of the result file."""
    import pandas as pd

    data_dir = scratch / f"data-{rows}"
    results = seed(data_dir, rows, scratch, arrival)
    read = min(timed(lambda: pd.read_json(results, lines=True)) for _ in range(repeat))
    serve = functools.partial(dashboard_server, data_dir, scratch / f"server-{rows}.log", server, free_port())
    before = functools.partial(forget_kept, data_dir) if arrival == "file" else (lambda: None)
    runs = [visits(browser, serve, rows, before) for _ in range(repeat)]
    best = {key: min(run[key] for run in runs) for key in runs[0]}
    return best | {"rows": rows, "mb": results.stat().st_size / 1e6, "pandas": read}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 rows, best of 2")
    parser.add_argument("--rows", type=int, default=None, help="rows of the big batch (default 50,000)")
    parser.add_argument("--repeat", type=int, default=None, help="fresh servers per size (default 3)")
    parser.add_argument(
        "--server", choices=sorted(SERVERS), default="langbatch", help="how to start it (default: langbatch)"
    )
    parser.add_argument(
        "--arrival",
        choices=("refresh", "file"),
        default="refresh",
        help="results merged by a refresh (default: the results table is kept then) or results.jsonl written "
        "in place and nothing kept (each fresh server loads the results)",
    )
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"skipped: no {CHROMIUM} (apt-get install chromium)")
        return
    rows = args.rows or (5_000 if args.quick else 50_000)
    repeat = args.repeat or (2 if args.quick else 3)
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        small = measure(browser, 100, repeat, Path(tmp), args.server, args.arrival)
        big = measure(browser, rows, repeat, Path(tmp), args.server, args.arrival)
        browser.close()
    print(
        f"Results page in Chromium, a fresh `{LABELS[args.server]}` each time, best of "
        f"{repeat} (load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after); results "
        + (
            "merged by a refresh (the results table kept then)"
            if args.arrival == "refresh"
            else "written in place, nothing kept"
        )
    )
    for run in (small, big):
        print(
            f"  {run['rows']:>7,} rows ({run['mb']:5.1f} MB): ready {run['ready']:5.2f} s; "
            f"first visit {run['first']:5.2f} s (server CPU {run['cpu']:4.2f} s), "
            f"reload {run['reload']:5.2f} s; returning browser: first visit {run['returning']:5.2f} s "
            f"(server CPU {run['returning_cpu']:4.2f} s); bare pandas.read_json {run['pandas']:5.2f} s"
        )
    print(
        f"  {rows:,} rows vs 100 rows, first visit: {big['first'] / small['first']:.2f}x "
        f"(+{big['first'] - small['first']:.2f} s); vs a bare pandas.read_json: "
        f"{big['first'] / big['pandas']:.2f}x"
    )


if __name__ == "__main__":
    main()
