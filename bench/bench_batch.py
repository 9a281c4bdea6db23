"""Batch lifecycle overhead: what LangBatch adds around a provider, against a bare json.loads loop.

    .venv/bin/python bench/bench_batch.py [--quick]

Generates N chat requests, runs create -> start (split in 4 jobs) -> wait -> get_results -> retry against the
local engine (in this process) backed by the fast test upstream, and prints each step's time and its ratio to
a bare ``json.loads`` loop over the same request file (the baseline, measured in the same run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def make_requests(path: Path, count: int) -> None:
    with path.open("wb") as out:
        for i in range(count):
            body = {"model": "gpt-4o-mini", "max_tokens": 50, "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": f"Question number {i}: what is {i} + {i}? " * 3}]}  # fmt: skip
            line = {
                "custom_id": f"request-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": body,
            }
            out.write(orjson.dumps(line) + b"\n")


def baseline(path: Path) -> float:
    start = time.perf_counter()
    with path.open("rb") as handle:
        for line in handle:
            json.loads(line)
    return time.perf_counter() - start


def timed(label: str, results: list, fn):
    start = time.perf_counter()
    value = fn()
    results.append((label, time.perf_counter() - start))
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 requests instead of 20,000")
    count = 2_000 if parser.parse_args().quick else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LANGBATCH_DATA_DIR"] = str(Path(tmp) / "data")
        from support.upstream import Upstream

        from langbatch_core import Connection, DuckDBBatchStorage, Limits, OpenAIChatCompletionBatch
        from langbatch_core.local import LocalEngine

        path = Path(tmp) / "requests.jsonl"
        make_requests(path, count)
        base = baseline(path)
        steps: list[tuple[str, float]] = []
        with (
            Upstream(record=False) as upstream,
            LocalEngine(backend=f"upstream:{upstream.base_url}", concurrency=64, sync_interval=0.2) as engine,
        ):
            connection = Connection.compatible(engine.base_url, limits=Limits(max_requests=count // 4))
            batch = timed("create (validate + copy)", steps, lambda: OpenAIChatCompletionBatch(
                path, connection=connection, storage=DuckDBBatchStorage()))  # fmt: skip
            timed("start (split + upload 4 jobs)", steps, batch.start)
            run_start = time.perf_counter()
            batch.wait(poll_interval=0.2)
            engine_run = time.perf_counter() - run_start
            timed("refresh (completed batch)", steps, batch.refresh)
            ok, failed = timed("get_results", steps, batch.get_results)
            timed("retry (nothing to retry)", steps, batch.retry)
        assert len(ok) == count and not failed, (len(ok), len(failed))
    print(f"{count:,} chat requests; baseline json.loads loop: {base:.3f} s")
    for label, seconds in steps:
        print(f"  {label:<32} {seconds:8.3f} s   {seconds / base:6.2f}x baseline")
    print(
        f"  engine run (wait, not LangBatch's own work): {engine_run:.2f} s = {count / engine_run:,.0f} req/s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
