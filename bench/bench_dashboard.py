"""Benchmark of the dashboard's Results and Batches pages.

    .venv/bin/python bench/bench_dashboard.py            # 50,000 results, 1,000 batches
    .venv/bin/python bench/bench_dashboard.py --quick    # 5,000 results, 200 batches

Results page: load the flat table of a result file (what the page caches) against the baseline
`pandas.read_json(lines=True)` + `json_normalize` on the same file, then the filters and the whole page
through Streamlit's AppTest (first load, then a rerun after a filter change). Batches page: the page with N
batches in a real DuckDB store. Everything runs in one process on files generated here.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "dashboard"), str(ROOT)]

WORDS = [
    "batch",
    "model",
    "answer",
    "token",
    "request",
    "result",
    "provider",
    "engine",
    "window",
    "retry",
    "cost",
    "table",
    "filter",
]


def timed(fn, repeat: int = 1):
    """(best seconds over ``repeat`` runs, last result)."""
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def write_files(folder: Path, n: int) -> tuple[Path, Path]:
    """A request file and its result file: ~85% answers of a few hundred characters, 400s, expiries."""
    rng = random.Random(7)
    requests, results = folder / "requests.jsonl", folder / "results.jsonl"
    with requests.open("w") as req, results.open("w") as res:
        for i in range(n):
            cid = f"req-{i}"
            prompt = " ".join(rng.choices(WORDS, k=rng.randint(8, 40)))
            body = {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": 400,
            }
            req.write(
                json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": body})
            )
            req.write("\n")
            res.write(json.dumps(result_line(rng, i, cid)) + "\n")
    return requests, results


def result_line(rng: random.Random, i: int, cid: str) -> dict:
    line = {"id": f"br_{i}", "custom_id": cid, "response": None, "error": None}
    roll = rng.random()
    if roll < 0.05:
        line["error"] = {"code": "batch_expired", "message": "The completion window expired."}
        return line
    if roll < 0.15:
        error = {"message": "Invalid max_tokens.", "type": "invalid_request_error", "code": "invalid_value"}
        line["response"] = {"status_code": 400, "request_id": f"r{i}", "body": {"error": error}}
        return line
    completion = rng.randint(20, 400)
    message = {"role": "assistant", "content": " ".join(rng.choices(WORDS, k=rng.randint(100, 300)))}
    finish = "length" if completion == 400 else "stop"
    body = {
        "id": f"chatcmpl-{i}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 30, "completion_tokens": completion, "total_tokens": 30 + completion},
    }
    line["response"] = {"status_code": 200, "request_id": f"r{i}", "body": body}
    return line


def bench_results(n: int, folder: Path) -> None:
    import common
    import explore
    import pandas as pd

    from langbatch_core.results import load_results

    requests, results = write_files(folder, n)
    print(f"results: {n:,} rows, result file {results.stat().st_size / 1e6:.0f} MB")

    def baseline():
        raw = pd.read_json(results, lines=True)
        return pd.json_normalize(raw.to_dict("records"))

    base, _ = timed(baseline)
    load, table = timed(lambda: load_results([results], requests=requests))
    print(f"  baseline pandas.read_json + json_normalize : {base:6.2f} s")
    print(f"  load_results (the page's first load)       : {load:6.2f} s   ({base / load:.1f}x faster)")
    key = (common.file_key(results), common.file_key(requests))
    common._load_table(*key)  # fill the cache
    hit, _ = timed(lambda: common._load_table(*key), repeat=3)
    print(f"  cached table, per rerun (st.cache_resource): {hit:6.3f} s")

    filters = {
        "status = failed": explore.Filters(statuses=["failed"]),
        "text search 'retry cost'": explore.Filters(text="retry cost"),
        "tokens 100..200, sorted": explore.Filters(
            tokens=(100, 200), sort_by="total_tokens", descending=True
        ),
        "all of them": explore.Filters(
            statuses=["succeeded"], text="engine", tokens=(50, 300), sort_by="custom_id"
        ),
    }
    for label, chosen in filters.items():
        seconds, view = timed(lambda chosen=chosen: explore.apply(table, chosen), repeat=3)
        print(f"  filter {label:<36}: {seconds * 1000:6.1f} ms ({len(view):,} rows)")
    page_times(n, folder, requests, results, base)


def page_times(n: int, folder: Path, requests: Path, results: Path, base: float) -> None:
    """The whole Results page through AppTest: first load, then a filter change (cache warm)."""
    import common
    from streamlit.testing.v1 import AppTest

    from langbatch_core.storage import BatchRecord

    record = BatchRecord(id="lb_bench", endpoint="/v1/chat/completions", request_count=n, succeeded=n)
    common.storage().save(record)
    target = common.storage().batch_dir(record.id)
    target.mkdir(parents=True, exist_ok=True)
    os.replace(requests, target / "requests.jsonl")
    os.replace(results, target / "results.jsonl")
    common._load_table.clear()
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
    at.run()
    first, _ = timed(lambda: at.switch_page("views/results.py").run())
    assert not at.exception, at.exception
    at.multiselect(key="rs_status").set_value(["failed"])
    again, _ = timed(lambda: at.run())
    at.text_input(key="rs_text").input("retry")
    search, _ = timed(lambda: at.run())
    ratio = base / first
    print(f"  Results page, first load (AppTest)         : {first:6.2f} s   ({ratio:.1f}x faster)")
    print(f"  Results page, status filter rerun          : {again:6.2f} s")
    print(f"  Results page, text search rerun            : {search:6.2f} s")


def bench_batches(count: int) -> None:
    import common
    from streamlit.testing.v1 import AppTest

    from langbatch_core.storage import BatchRecord

    store = common.storage()
    seed, _ = timed(
        lambda: [
            store.save(
                BatchRecord(
                    id=f"lb_b{i:05d}",
                    endpoint="/v1/chat/completions",
                    name=f"batch {i}",
                    status="completed",
                    request_count=100,
                    succeeded=90,
                    failed=10,
                )
            )
            for i in range(count)
        ]
    )
    listed, _ = timed(store.list, repeat=3)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
    at.run()
    first, _ = timed(lambda: at.switch_page("views/batches.py").run())
    assert not at.exception, at.exception
    rerun, _ = timed(lambda: at.run(), repeat=3)
    print(f"batches: {count:,} in the DuckDB store (seeded one save at a time in {seed:.1f} s)")
    print(f"  storage.list()                             : {listed:6.3f} s")
    print(f"  Batches page, first render (AppTest)       : {first:6.2f} s")
    print(f"  Batches page, rerun                        : {rerun:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 results and 200 batches")
    args = parser.parse_args()
    rows, batches = (5_000, 200) if args.quick else (50_000, 1_000)
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        os.environ["LANGBATCH_DATA_DIR"] = str(Path(tmp) / "data")
        bench_results(rows, Path(tmp))
        os.environ["LANGBATCH_DATA_DIR"] = str(Path(tmp) / "data-batches")
        bench_batches(batches)


if __name__ == "__main__":
    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    main()
