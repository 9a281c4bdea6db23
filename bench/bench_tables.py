"""Benchmark: a CSV table → request file (read, render, write), and results joined back onto the table.

    .venv/bin/python bench/bench_tables.py            # 100,000 rows
    .venv/bin/python bench/bench_tables.py --quick    # 10,000 rows, one run each
    .venv/bin/python bench/bench_tables.py --browser 100000 --repeat 1   # the Results page in Chromium
    .venv/bin/python bench/bench_tables.py --browser 100000 --arrival file   # no joined table kept yet

Variants, each in a child process of its own (peak memory is its own), best of the runs:
  baseline      pandas.read_csv, one Jinja2 render per row (the template compiled once), json.dumps per line
  write_requests the CSV a block at a time into the request file and table.parquet (the fast path for a
                simple template); the table is never held whole
  jinja_path    the same with a template that needs Jinja (a filter): one sandboxed render per row
  from_table    OpenAIChatCompletionBatch.from_table end to end: write_requests, then the batch validates
                and copies its request file into its folder (a local store)
  join          join_results of one answer per row with 3 schema fields (typed columns), results loaded
  load_and_join the same with load_results of the result file timed too
Targets (issue 10): ≥ 200,000 rows/s for a simple template, ≤ 2× the CSV in memory, join ≤ 0.5 s.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import sys
import tempfile
from pathlib import Path

from _measure import machine, measure, report, run_child, timed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIMPLE = "Classify the sentiment of this review of {{ product }}: {{ review }}"
WITH_FILTER = "Classify the sentiment of this review of {{ product | upper }}: {{ review }}"
FIELDS = [
    {"name": "sentiment", "type": "enum", "values": ["positive", "negative", "neutral"]},
    {"name": "score", "type": "number"},
    {"name": "topic", "type": "string"},
]
WORDS = [
    "the",
    "delivery",
    "was",
    "late",
    "but",
    "the",
    "product",
    "itself",
    "works",
    "well",
    "and",
    "I",
    "would",
    "buy",
    "it",
    "again",
    "maybe",
]


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with path.open("w", encoding="utf-8") as out:
        out.write("id,product,stars,review\n")
        for n in range(rows):
            review = " ".join(rng.choices(WORDS, k=rng.randint(20, 60)))
            out.write(f'R{n},"Kettle, model {n % 50}",{rng.randint(1, 5)},"{review}"\n')


def write_results(path: Path, rows: int) -> None:
    rng = random.Random(8)
    with path.open("wb") as out:
        for n in range(rows):
            answer = json.dumps(
                {"sentiment": rng.choice(["positive", "negative", "neutral"]), "score": rng.random(),
                 "topic": "delivery"}
            )  # fmt: skip
            body = {
                "model": "gpt-4o-mini",
                "choices": [{"message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 60, "completion_tokens": 20, "total_tokens": 80},
            }
            line = {"id": f"r{n}", "custom_id": f"R{n}", "response": {"status_code": 200, "body": body}}
            out.write(json.dumps(line).encode() + b"\n")


def child(variant: str, csv_path: str, results_path: str) -> None:
    import pandas as pd

    from langbatch_core import OpenAIChatCompletionBatch
    from langbatch_core.results import load_results
    from langbatch_core.storage.default import default_storage
    from langbatch_core.tables import TableSpec, custom_ids, join_results, load_schema, write_requests

    out = Path(csv_path).with_suffix(f".{variant}.jsonl")
    if variant in ("join", "load_and_join"):
        frame = pd.read_csv(csv_path)
        ids = custom_ids(frame, "id")
        schema = load_schema(FIELDS)
        results = load_results(results_path) if variant == "join" else None
        with timed() as found:
            loaded = results if results is not None else load_results(results_path)
            joined = join_results(frame, ids, loaded, schema=schema, model="gpt-4o-mini")
        assert joined["sentiment"].notna().all()
        report({**found, "rows": len(joined)})
        return
    with timed() as found:
        if variant == "baseline":
            rows = _baseline(csv_path, out)
        elif variant == "from_table":
            store = default_storage(Path(csv_path).parent / "data")
            batch = OpenAIChatCompletionBatch.from_table(
                csv_path, template=SIMPLE, id_column="id", storage=store
            )
            rows = batch.record.request_count
        else:
            template = SIMPLE if variant == "write_requests" else WITH_FILTER
            spec = TableSpec(template=template, id_column="id", model="gpt-4o-mini")
            rows = write_requests(csv_path, spec, out, out.with_suffix(".parquet")).sent
    report({**found, "rows": rows})


def _baseline(csv_path: str, out: Path) -> int:
    import jinja2
    import pandas as pd

    frame = pd.read_csv(csv_path)
    template = jinja2.Environment().from_string(SIMPLE)
    with out.open("w", encoding="utf-8") as lines:
        for record in frame.to_dict("records"):
            body = {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": template.render(record)}],
            }
            line = {
                "custom_id": str(record["id"]),
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": body,
            }
            lines.write(json.dumps(line) + "\n")
    return len(frame)


VARIANTS = ("baseline", "write_requests", "jinja_path", "from_table", "join", "load_and_join")


def browser(rows: int, repeat: int, server: str = "langbatch", arrival: str = "refresh") -> None:
    """The Results page of a finished table batch (``rows`` rows, 3 answer fields) in Chromium: a fresh
    `langbatch dashboard` (``server``: or a bare `streamlit run`), first visit and reload until the grid shows
    every row (bench_dashboard_browser's way), and the same for a 100-row table batch as the baseline.
    ``arrival`` (``table_batch``): how the results reached the batch, so whether the joined table was kept
    before the first visit."""
    sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]
    from bench_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, LABELS, dashboard_server, free_port, visits
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-tables-browser-") as tmp, sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        found, merged = {}, {}
        for count in (100, rows):
            runs = []
            for run in range(repeat):
                data, merged[count] = table_batch(Path(tmp) / f"{count}-{run}", count, arrival)
                log = Path(tmp) / f"server-{count}-{run}.log"
                serve = functools.partial(dashboard_server, data, log, server, free_port())
                runs.append(visits(chromium, serve, count))
            found[count] = {key: min(run[key] for run in runs) for key in runs[0]}
        chromium.close()
    print(
        f"Results page of a table batch, 3 answer fields, Chromium, a fresh `{LABELS[server]}` each time, "
        f"best of {repeat} (load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after); "
        f"{ARRIVALS[arrival]}:"
    )
    for count, run in found.items():
        refresh = f"; the refresh that merged them took {merged[count]:.2f} s" if arrival == "refresh" else ""
        print(
            f"  {count:>7,} rows: ready {run['ready']:.2f} s; first visit {run['first']:.2f} s (server CPU "
            f"{run['cpu']:.2f} s), reload {run['reload']:.2f} s; returning browser, a fresh server again: "
            f"first visit {run['returning']:.2f} s (server CPU {run['returning_cpu']:.2f} s){refresh}"
        )


ARRIVALS = {
    "refresh": "results merged from a downloaded job's output by a refresh (as a worker or the dashboard's "
    "refresh does), which keeps the joined table",
    "file": "results.jsonl written in place (a batch from before the joined table was kept): the first visit "
    "joins and keeps it, the returning one reads it",
}


def table_batch(scratch: Path, rows: int, arrival: str = "refresh") -> tuple[Path, float]:
    """A data dir holding one finished table batch of ``rows`` rows with 3 answer fields; its path, and the
    seconds of the refresh that merged its results. ``arrival``: ``refresh``, a completed job whose output
    was downloaded, merged by ``batch.refresh()`` as results arrive in use (the joined table is kept then);
    ``file``, results.jsonl written in place (nothing kept until the page joins them)."""
    import time

    from langbatch_core import OpenAIChatCompletionBatch
    from langbatch_core.storage import JobRecord
    from langbatch_core.storage.default import default_storage

    scratch.mkdir(parents=True)
    write_csv(scratch / "reviews.csv", rows)
    store = default_storage(scratch / "data")
    batch = OpenAIChatCompletionBatch.from_table(
        scratch / "reviews.csv", template=SIMPLE, schema=FIELDS, id_column="id", storage=store
    )
    if arrival == "file":
        write_results(batch.results_path, rows)
        batch.record.succeeded = rows
        store.save(batch.record)
        return scratch / "data", 0.0
    output = batch.directory / "jobs" / "a1-j1" / "output.jsonl"
    output.parent.mkdir(parents=True)
    write_results(output, rows)
    job = JobRecord("a1-j1", 1, rows, "requests.jsonl", status="completed", provider_job_id="batch_1",
                    output_file="jobs/a1-j1/output.jsonl", downloaded=True)  # fmt: skip
    batch.record.jobs.append(job)
    store.save(batch.record)
    start = time.perf_counter()
    batch.refresh()
    took = time.perf_counter() - start
    assert batch.record.succeeded == rows and (batch.directory / ".joined.parquet").is_file()
    return scratch / "data", took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 rows, one run each")
    parser.add_argument("--repeat", type=int, help="runs of each variant (default 3; --quick: 1)")
    parser.add_argument("--browser", type=int, metavar="ROWS", help="time the Results page in Chromium")
    parser.add_argument(
        "--server", choices=("langbatch", "streamlit"), default="langbatch",
        help="--browser: start the dashboard as `langbatch dashboard` (default) or a bare `streamlit run`",
    )  # fmt: skip
    parser.add_argument(
        "--arrival", choices=tuple(ARRIVALS), default="refresh",
        help="--browser: results merged by a refresh (default: the joined table kept then) or results.jsonl "
        "written in place (the first visit joins)",
    )  # fmt: skip
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.browser:
        print(machine())
        browser(args.browser, args.repeat or 3, args.server, args.arrival)
        return
    if args.child:
        child(*args.child)
        return
    count, repeat = (10_000, 1) if args.quick else (100_000, 3)
    print(machine())
    with tempfile.TemporaryDirectory(prefix="bench-tables-") as tmp:
        csv_path, results_path = Path(tmp) / "reviews.csv", Path(tmp) / "results.jsonl"
        write_csv(csv_path, count)
        write_results(results_path, count)
        size = csv_path.stat().st_size / 2**20
        print(f"\n{count:,} rows; CSV {size:.1f} MiB; results {results_path.stat().st_size / 2**20:.1f} MiB")
        found = measure(list(VARIANTS), lambda v: run_child(__file__, v, str(csv_path), str(results_path)),
                        args.repeat or repeat)  # fmt: skip
        print(
            f"{'variant':<14} {'wall s':>7} {'cpu s':>7} {'rows/s':>10} {'rows/cpu s':>11} {'added MiB':>10} "
            f"{'added / CSV':>12}"
        )
        for variant, run in found.items():
            added = run["peak_mb"] - run["base_mb"]
            rate, cpu_rate = run["rows"] / run["seconds"], run["rows"] / run["cpu"]
            print(
                f"{variant:<14} {run['seconds']:>7.3f} {run['cpu']:>7.3f} {rate:>10,.0f} {cpu_rate:>11,.0f} "
                f"{added:>10.1f} {added / size:>11.2f}×"
            )
    print("\nbest of the runs, each in a new process timed after its imports; 'added' is the peak RSS growth")
    print("over the process after imports (load_and_join's includes reading the result file).")
    print("rows/cpu s moves less than rows/s on a shared machine: quote it with the load average.")


if __name__ == "__main__":
    main()
