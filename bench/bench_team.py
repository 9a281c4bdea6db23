"""A team on one PostgreSQL store: dashboards, workers and CLI loops at once; then 10,000 batches.

    .venv/bin/python bench/bench_team.py [--quick] [--seconds 60] [--batches 10000] [--active 1000]

Part 1 (``--seconds``, 60): 3 dashboard-like processes (the Batches page's loop: list the store, build its
table, refresh every running batch, every 2 s), 2 ``Worker`` processes (poll interval 2 s, auto-retry of
server errors) and 2 CLI-like loops (what ``langbatch create --start``, ``status``, ``retry`` and ``cancel``
call) on one PostgreSQL server and one local engine. Counted: errors shown to a user (any exception in a
loop; lock errors among them), batches lost or duplicated (every id a CLI created is stored once), jobs lost
or duplicated (the engine's jobs of each batch are exactly its recorded jobs), requests answered more than
expected, and the longest time a running batch waited for a worker's advance.

Part 2: ``--batches`` records in the store, ``--active`` of them real running batches on the engine (their
requests held at the upstream): the Batches page's listing (``storage.summaries()`` + its table; and from
whole records, as before summaries), and one worker
cycle over the active batches next to the bare provider calls it makes (one ``batches.retrieve`` each).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "dashboard")]
REFRESH_SECONDS = 2.0
WORKER_INTERVAL = 2.0


def write_requests(path: Path, label: str, count: int, flaky: int = 0, slow: float = 1.0) -> Path:
    import orjson

    lines = []
    for j in range(count):
        fault = " [[500x3]]" if j < flaky else ""
        prompt = f"{label} r{j}{fault} [[slow:{slow}]]"
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}
        lines.append({"custom_id": f"r{j}", "method": "POST", "url": "/v1/chat/completions", "body": body})
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


# -- roles (each a process of its own) -----------------------------------------------------------------


def role_dashboard(engine_url: str, seconds: float, name: str) -> dict:
    import tables

    from langbatch_core import Batch
    from langbatch_core.storage import default_storage

    storage, errors, listings = default_storage(), collections.Counter(), []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            summaries = storage.summaries()
            tables.batch_table(summaries)
            listings.append(time.monotonic() - started)
            for summary in summaries:
                if summary.status in ("validating", "in_progress", "finalizing", "cancelling"):
                    Batch.load(summary.id, storage=storage).get_status()
        except Exception as exc:  # counted: what a user would see
            errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
        time.sleep(max(REFRESH_SECONDS - (time.monotonic() - started), 0))
    return {"errors": dict(errors), "listings": len(listings), "max_listing": max(listings, default=0)}


def role_worker(engine_url: str, seconds: float, name: str) -> dict:
    import threading

    from langbatch_core.worker import RetryPolicy, Worker

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker = Worker(name=name, poll_interval=WORKER_INTERVAL, retry=RetryPolicy(("server_error",), 3))
    errors, cycles, skipped, longest = collections.Counter(), 0, 0, 0.0
    while not stop.is_set():
        started = time.monotonic()
        try:
            report = worker.run_once()
            errors.update(report.errors.values())
            cycles, skipped, longest = cycles + 1, skipped + len(report.skipped), max(longest, report.seconds)
        except Exception as exc:
            errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
        stop.wait(max(WORKER_INTERVAL - (time.monotonic() - started), 0))
    return {"errors": dict(errors), "cycles": cycles, "skipped": skipped, "longest_cycle": longest}


def role_cli(engine_url: str, seconds: float, name: str) -> dict:
    from langbatch_core import Batch, Connection, OpenAIChatCompletionBatch
    from langbatch_core.storage import default_storage

    storage, connection = default_storage(), Connection.compatible(engine_url)
    errors, created, cancelled = collections.Counter(), [], []
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        n += 1
        try:
            path = write_requests(folder / f"{n}.jsonl", f"{name}-{n}", 6, flaky=2, slow=5.0)
            batch = OpenAIChatCompletionBatch(
                path, connection=connection, storage=storage, name=f"{name}-{n}"
            )
            created.append(batch.id)
            batch.start()
            mine = Batch.load(random.choice(created), storage=storage)
            mine.get_status()
            if n % 3 == 0:
                mine.retry()
            if n % 7 == 0 and mine.record.status == "in_progress":
                mine.cancel()
                cancelled.append(mine.id)
            storage.list()
        except Exception as exc:
            errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
        time.sleep(0.5)
    return {"errors": dict(errors), "created": created, "cancelled": cancelled}


ROLES = {"dashboard": role_dashboard, "worker": role_worker, "cli": role_cli}


def spawn(role: str, name: str, engine_url: str, seconds: float) -> subprocess.Popen:
    command = [sys.executable, __file__, "--role", role, "--name", name, "--engine", engine_url]
    return subprocess.Popen([*command, "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)


def result_of(proc: subprocess.Popen) -> dict:
    return json.loads(proc.communicate(timeout=600)[0].strip().splitlines()[-1])


# -- part 1: everyone at once ---------------------------------------------------------------------------


def part_one(engine, upstream, seconds: float) -> None:
    import openai

    from langbatch_core.storage import default_storage

    storage = default_storage()
    url = engine.base_url
    workers = [spawn("worker", f"worker-{i}", url, 0) for i in (1, 2)]
    others = [spawn("dashboard", f"dash-{i}", url, seconds) for i in (1, 2, 3)]
    others += [spawn("cli", f"cli-{i}", url, seconds) for i in (1, 2)]
    # until the loops end (their time starts once imported) and the workers have finished every batch:
    # how long a running batch waits for a worker
    longest_wait, longest_quiet, samples, drain_end = 0.0, 0.0, 0, time.monotonic() + seconds + 300
    worst = None
    while time.monotonic() < drain_end:
        now, running = time.time(), 0
        for record in storage.list():
            if any(job.active for job in record.jobs):
                since = max(record.advanced_at or 0.0, max(job.created_at for job in record.jobs))
                if now - since > longest_wait:
                    worst = (record.id, record.advanced_by, [job.status for job in record.jobs])
                longest_wait, samples, running = max(longest_wait, now - since), samples + 1, running + 1
                longest_quiet = max(longest_quiet, now - max(record.updated_at, since))  # by anyone
        if not running and all(proc.poll() is not None for proc in others):
            break
        time.sleep(0.5)
    found = [result_of(proc) for proc in others]
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    found += [result_of(proc) for proc in workers]

    created = [batch_id for f in found for batch_id in f.get("created", [])]
    stored = [r.id for r in storage.list()]
    lost = set(created) - set(stored)
    duplicated = len(stored) - len(set(stored))
    client = openai.OpenAI(base_url=url, api_key="bench", max_retries=0)
    remote = collections.defaultdict(set)
    for job in client.batches.list(limit=100):
        remote[job.metadata.get("langbatch_batch_id")].add(job.id)
    job_mismatch = [r.id for r in storage.list() if remote[r.id] != {j.provider_job_id for j in r.jobs}]
    received = collections.Counter(item["body"]["messages"][-1]["content"] for item in upstream.received)
    # a request running when its batch was cancelled is answered, dropped, and sent again by a retry
    cancelled = {r.name for r in storage.list() if any(j.status == "cancelled" for j in r.jobs)}
    extra = {
        p: n
        for p, n in received.items()
        if n > (4 if "[[500x3]]" in p else 1) + (p.split(" ")[0] in cancelled)
    }
    if extra:
        print(f"  answered more than expected: {extra}")
    errors = collections.Counter()
    for f in found:
        errors.update(f["errors"])
    lock_errors = sum(n for e, n in errors.items() if "lock" in e.lower() or "Stale" in e)
    statuses = collections.Counter(r.status for r in storage.list())
    print(f"part 1: {seconds:g} s, 3 dashboards + 2 workers + 2 CLI loops on one PostgreSQL")
    print(f"  batches created {len(created)}, stored {len(stored)}, statuses {dict(statuses)}")
    print(f"  errors shown to a user: {sum(errors.values())} (lock errors {lock_errors}) {dict(errors)}")
    print(f"  batches lost {len(lost)}, duplicated {duplicated}; batches whose jobs differ at the engine "
          f"{len(job_mismatch)}; requests answered more than expected {len(extra)}")  # fmt: skip
    print(f"  longest wait of a running batch for a worker's advance: {longest_wait:.1f} s; for any "
          f"refresh (a worker, a dashboard, a CLI): {longest_quiet:.1f} s; {samples} samples "
          f"(worker poll interval {WORKER_INTERVAL:g} s); longest: {worst}")  # fmt: skip
    workers_found = [f for f in found if "cycles" in f]
    listings = [f["max_listing"] for f in found if "max_listing" in f]
    print(
        f"  worker cycles {[f['cycles'] for f in workers_found]}, longest "
        f"{max(f['longest_cycle'] for f in workers_found):.1f} s, batches skipped as busy elsewhere "
        f"{sum(f['skipped'] for f in workers_found)}; slowest dashboard listing {max(listings):.3f} s"
    )


# -- part 2: a big store --------------------------------------------------------------------------------


def part_two(engine, upstream, total: int, active: int) -> None:
    import openai
    import tables

    from langbatch_core import Connection, OpenAIChatCompletionBatch
    from langbatch_core.storage import BatchRecord, BatchSummary, JobRecord, default_storage
    from langbatch_core.worker import ADVANCE_THREADS, Worker

    storage = default_storage()
    for existing in storage.list():
        storage.delete(existing.id)
    started = time.perf_counter()
    for i in range(total - active):
        job = JobRecord(key="a1-j1", attempt=1, request_count=100, input_file="jobs/a1-j1/input.jsonl",
                        status="completed", provider_job_id=f"batch_{i}")  # fmt: skip
        storage.save(BatchRecord(id=f"lb_old{i:06d}", endpoint="/v1/chat/completions", name=f"old {i}",
                                 status="completed", request_count=100, succeeded=100, jobs=[job],
                                 created_at=1.7e9 + i, version=1))  # fmt: skip
    saving = time.perf_counter() - started
    folder = Path(tempfile.mkdtemp(prefix="bench-team-"))
    connection = Connection.compatible(engine.base_url)
    started = time.perf_counter()
    for i in range(active):  # held at the upstream for the whole part: they stay in progress
        path = write_requests(folder / f"{i}.jsonl", f"held-{i}", 1, slow=600)
        OpenAIChatCompletionBatch(path, connection=connection, storage=storage).start()
    starting = time.perf_counter() - started
    print(f"part 2: {total:,} batches in the store, {active:,} running on the local engine")
    print(
        f"  saving {total - active:,} records: {saving:.1f} s; "
        f"creating + starting {active:,}: {starting:.1f} s"
    )

    for label, read in (("storage.summaries()", storage.summaries), ("whole records: storage.list()", None)):
        listing = []
        for _ in range(3):
            started = time.perf_counter()
            rows = read() if read else [BatchSummary.of(r) for r in storage.list()]
            table = tables.batch_table(rows)
            listing.append(time.perf_counter() - started)
        assert len(table) == total, len(table)
        print(f"  Batches page listing ({label} + table), best of 3: {min(listing):.3f} s "
              f"(runs {', '.join(f'{s:.3f}' for s in listing)})")  # fmt: skip

    worker = Worker(name="bench", poll_interval=0, batch_limit=active)
    report = worker.run_once()
    assert len(report.advanced) == active, report.summary()
    client = openai.OpenAI(base_url=engine.base_url, api_key="bench", max_retries=0)
    ids = [j.provider_job_id for r in storage.list() for j in r.jobs if j.active]
    started = time.perf_counter()
    for job_id in ids:
        client.batches.retrieve(job_id)
    bare = time.perf_counter() - started
    own = report.seconds - bare
    print(
        f"  one worker cycle over {active:,} running batches: {report.seconds:.2f} s ({ADVANCE_THREADS} "
        f"side by side); the same {len(ids):,} provider polls one by one: {bare:.2f} s"
        + (f"; LangBatch's own part: {own:.2f} s ({own / active * 1000:.1f} ms a batch)" if own > 0 else "")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="15 s, 1,000 batches, 100 running")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--batches", type=int, default=10_000)
    parser.add_argument("--active", type=int, default=1_000)
    parser.add_argument("--part", type=int, choices=[1, 2], help="run only this part")
    parser.add_argument("--role", choices=sorted(ROLES))
    parser.add_argument("--name", default="")
    parser.add_argument("--engine", default="")
    args = parser.parse_args()
    if args.role:
        print(json.dumps(ROLES[args.role](args.engine, args.seconds, args.name)), flush=True)
        return 0
    if args.quick:
        args.seconds, args.batches, args.active = 15, 1_000, 100
    from support.postgres import PostgresServer, _bin_dir
    from support.upstream import Upstream

    from bench._measure import machine

    bin_dir = _bin_dir()
    if bin_dir is None:
        print("needs PostgreSQL: apt-get install -y postgresql")
        return 1
    server = PostgresServer(bin_dir)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["LANGBATCH_DATA_DIR"] = str(Path(tmp) / "data")
            os.environ["LANGBATCH_STORE"] = server.new_database()
            from langbatch_core.local import LocalEngine

            print(machine())
            with Upstream(retry_after=0.05) as upstream:
                settings = {"backend": f"upstream:{upstream.base_url}", "concurrency": 32,
                            "sync_interval": 0.2, "max_retries": 2, "retry_base_delay": 0.01,
                            "request_timeout": 30}  # fmt: skip
                if args.part in (None, 1):
                    with LocalEngine(**settings) as engine:
                        part_one(engine, upstream, args.seconds)
                upstream.reset()
                if args.part in (None, 2):
                    with LocalEngine(**{**settings, "request_timeout": 900}) as engine:
                        part_two(engine, upstream, args.batches, args.active)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
