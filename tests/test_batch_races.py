"""Refreshes racing retries, starts and cancels in other processes: no job record lost, no request answered
twice. Every writer of a batch record (start, retry, cancel, refresh, save) works under the batch's lock on
the latest stored record, so a refresh can never put back a record older than a concurrent retry's."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from batch_support import prompts_received, to_engine, write_chat_file

from langbatch_core import (
    Batch,
    BatchNotFoundError,
    DuckDBBatchStorage,
    FileBatchStorage,
    Limits,
    OpenAIChatCompletionBatch,
)
from langbatch_core.storage import default_storage

STORES = {"files": FileBatchStorage, "duckdb": DuckDBBatchStorage, "postgres": default_storage}


@pytest.fixture
def shared_store(request, monkeypatch):
    """Makes the test's store; for "postgres" a fresh database that LANGBATCH_STORE names (the processes the
    test starts inherit it)."""

    def make(store):
        if store == "postgres":
            monkeypatch.setenv("LANGBATCH_STORE", request.getfixturevalue("postgres_url"))
        return STORES[store]()

    return make


# A process that refreshes the batch in a loop, as the dashboard's auto-refresh and `langbatch status` do.
REFRESHER = textwrap.dedent(
    """
    import os, sys, time
    from langbatch_core import Batch, BatchNotFoundError, DuckDBBatchStorage, FileBatchStorage
    from langbatch_core.storage import default_storage
    stores = {"files": FileBatchStorage, "duckdb": DuckDBBatchStorage, "postgres": default_storage}
    storage = stores[sys.argv[2]]()
    end = time.monotonic() + float(sys.argv[3])
    done = sys.argv[4] if len(sys.argv) > 4 else None  # the retrier has finished: stop refreshing
    while time.monotonic() < end and not (done and os.path.exists(done)):
        Batch.load(sys.argv[1], storage=storage).get_status()
    print("ok", flush=True)
    """
)

# A process that retries until nothing is left to retry, as `langbatch retry` + `langbatch wait` do.
RETRIER = textwrap.dedent(
    """
    import sys, time
    from langbatch_core import Batch, BatchNotFoundError, DuckDBBatchStorage, FileBatchStorage
    from langbatch_core.storage import default_storage
    stores = {"files": FileBatchStorage, "duckdb": DuckDBBatchStorage, "postgres": default_storage}
    storage = stores[sys.argv[2]]()
    end = time.monotonic() + float(sys.argv[3])
    batch = Batch.load(sys.argv[1], storage=storage)
    while time.monotonic() < end:
        batch.wait(poll_interval=0.01)
        if batch.retry() == 0 and batch.record.succeeded == batch.record.request_count:
            break
    if len(sys.argv) > 4:
        open(sys.argv[4], "w").close()
    print("ok", batch.record.succeeded, flush=True)
    """
)


def run_all(scripts: list[list[str]], timeout: float = 120) -> list[str]:
    procs = [
        subprocess.Popen([sys.executable, "-c", *args], stdout=subprocess.PIPE, text=True, env=os.environ)
        for args in scripts
    ]
    outputs = [proc.communicate(timeout=timeout)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * len(procs), outputs
    return outputs


def engine_jobs(openai_client, batch_id: str) -> list:
    return [
        job
        for job in openai_client.batches.list(limit=100)
        if job.metadata.get("langbatch_batch_id") == batch_id
    ]


@pytest.mark.parametrize("store", sorted(STORES))
def test_refresh_loops_beside_retries_lose_no_job_and_repeat_no_success(
    tmp_path, engine, upstream, openai_client, store, shared_store
):
    # plain prompts succeed at once; "[[500xN]]" fails N times at the upstream (the engine tries each
    # request 3 times), so those need 1, 2 and 3 retries: many record updates for the refreshes to race.
    failures = {f"ok {i}": 0 for i in range(24)} | {
        f"flaky {i} [[500x{3 * (1 + i % 3)}]]": 3 * (1 + i % 3) for i in range(12)
    }
    prompts = list(failures)
    storage = shared_store(store)
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", prompts), connection=to_engine(engine), storage=storage
    )
    batch.start()
    # A budget, not a duration: the refreshers stop when the retrier is done (seconds on a quiet machine).
    seconds, done = "90", str(tmp_path / "retrier-done")
    outputs = run_all(
        [[RETRIER, batch.id, store, seconds, done]]
        + [[REFRESHER, batch.id, store, seconds, done] for _ in range(3)],
        timeout=180,
    )
    assert outputs[0].split() == ["ok", str(len(prompts))], "the retrier did not finish every request"

    final = Batch.load(batch.id, storage=storage)
    final.wait(poll_interval=0.01)
    received = prompts_received(upstream)
    expected = {prompt: failed + 1 for prompt, failed in failures.items()}  # one success each
    assert {p: received[p] for p in prompts} == expected, "a request was answered more than once"
    remote = engine_jobs(openai_client, batch.id)
    recorded = {job.provider_job_id for job in final.record.jobs}
    assert {job.id for job in remote} == recorded, "a job at the provider is missing from the record"
    assert len({job.key for job in final.record.jobs}) == len(final.record.jobs)
    assert final.record.succeeded == len(prompts)


class RecordWatcher(threading.Thread):
    """Reads the stored record in a loop and notes every step back: a job's provider id forgotten, a job
    gone, a finished job active again, the version going down."""

    def __init__(self, storage, batch_id):
        super().__init__(daemon=True)
        self.storage, self.batch_id = storage, batch_id
        self.steps_back: list[str] = []
        self.stop = threading.Event()

    def run(self):
        ids, finished, version = {}, set(), -1
        while not self.stop.is_set():
            with contextlib.suppress(BatchNotFoundError):  # not saved yet
                record = self.storage.load(self.batch_id)
                jobs = {job.key: job for job in record.jobs}
                now = getattr(record, "version", 0)
                self._check(now < version, f"version {version} -> {now}")
                version = now
                for key, provider_id in ids.items():
                    self._check(key not in jobs, f"job {key} lost")
                    self._check(
                        key in jobs and jobs[key].provider_job_id != provider_id, f"job {key} id lost"
                    )
                for key in finished:
                    self._check(key in jobs and jobs[key].active, f"job {key} active again")
                ids |= {k: j.provider_job_id for k, j in jobs.items() if j.provider_job_id}
                finished |= {k for k, j in jobs.items() if not j.active}
            time.sleep(0.002)

    def _check(self, failed, what):
        if failed:
            self.steps_back.append(what)


@pytest.mark.parametrize("store", sorted(STORES))
def test_refresh_loops_beside_start_and_cancel_never_step_back(
    tmp_path, make_engine, upstream, openai_client, store, shared_store
):
    engine = make_engine(concurrency=1, request_timeout=30)  # no engine retry of a slow answer
    storage = shared_store(store)
    prompts = [f"p{i} [[slow:1.0]]" for i in range(40)]
    connection = to_engine(engine, limits=Limits(max_requests=4))  # 10 jobs: a long start to race
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", prompts), connection=connection, storage=storage
    )
    batch.save()
    watcher = RecordWatcher(STORES[store](), batch.id)
    watcher.start()
    refreshers = [
        subprocess.Popen(
            [sys.executable, "-c", REFRESHER, batch.id, store, "6"], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    time.sleep(1.0)  # the refreshers are polling
    batch.start()
    time.sleep(0.3)
    batch.cancel()
    for proc in refreshers:
        assert proc.communicate(timeout=60)[0] == "ok\n"
    watcher.stop.set()
    watcher.join()
    assert watcher.steps_back == []
    final = Batch.load(batch.id, storage=storage)
    assert final.wait(poll_interval=0.01) == "cancelled"
    assert {job.id for job in engine_jobs(openai_client, batch.id)} == {
        j.provider_job_id for j in final.record.jobs
    }
    received = prompts_received(upstream)
    assert {p: n for p, n in received.items() if n > 1} == {}, "a request was sent twice"
