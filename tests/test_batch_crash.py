"""A process killed between the provider's create and the local record: the next call finds the job
instead of creating a duplicate, and every request runs exactly once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from batch_support import prompts_received, to_engine, write_chat_file

from langbatch_core import Batch, BatchStateError
from langbatch_core.batch import lifecycle as batch_module
from langbatch_core.storage import default_storage

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from langbatch_core import Connection, Limits, OpenAIChatCompletionBatch
    from langbatch_core.providers import OpenAIProvider, register_provider

    class CrashAfterCreate(OpenAIProvider):  # the process dies right after the provider's create
        def create(self, *args, **kw):
            super().create(*args, **kw)
            os._exit(75)

    register_provider("compatible", CrashAfterCreate)
    connection = Connection.compatible(sys.argv[2], limits=Limits(max_requests=2))
    batch = OpenAIChatCompletionBatch(sys.argv[1], connection=connection)
    print(batch.id, flush=True)
    batch.start()
    print("not reached", flush=True)
    """
)


def run_until_crash(path, engine):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path), engine.base_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 75, done.stderr
    return done.stdout.split()[0]


def remote_jobs(openai_client, batch_id):
    return [b for b in openai_client.batches.list() if b.metadata.get("langbatch_batch_id") == batch_id]


def test_crash_after_create_is_healed_without_duplicates(tmp_path, engine, openai_client, upstream):
    path = write_chat_file(tmp_path / "in.jsonl", ["a", "b", "c", "d", "e"])
    batch_id = run_until_crash(path, engine)

    record = default_storage().load(batch_id)
    assert [job.status for job in record.jobs] == ["submitting"] * 3  # recorded before the create
    assert len(remote_jobs(openai_client, batch_id)) == 1  # ...which reached the engine

    batch = Batch.load(batch_id, connection=to_engine(engine))
    batch.start()  # finishes the interrupted start: finds job 1, submits jobs 2 and 3
    assert batch.wait(poll_interval=0.05) == "completed"
    remote = remote_jobs(openai_client, batch_id)
    assert len(remote) == 3
    assert {job.provider_job_id for job in batch.record.jobs} == {b.id for b in remote}
    assert prompts_received(upstream) == {p: 1 for p in "abcde"}


def test_refresh_adopts_but_never_submits_and_retry_finishes(
    tmp_path, engine, openai_client, upstream, monkeypatch
):
    batch_id = run_until_crash(write_chat_file(tmp_path / "in.jsonl", ["a", "b", "c", "d", "e"]), engine)
    batch = Batch.load(batch_id, connection=to_engine(engine))
    batch.get_status()  # adopts job 1; jobs 2 and 3 might be another process's start in progress
    assert batch.record.jobs[0].provider_job_id == remote_jobs(openai_client, batch_id)[0].id
    assert [job.status for job in batch.record.jobs[1:]] == ["submitting", "submitting"]
    assert len(remote_jobs(openai_client, batch_id)) == 1

    monkeypatch.setattr(batch_module, "INTERRUPTED_GRACE", 0.0)
    with pytest.raises(BatchStateError, match="interrupted"):
        batch.wait(poll_interval=0.05)  # job 1 ends; only the interrupted ones are left

    assert batch.retry() == 3  # finishing the interrupted submission is the retry
    assert batch.wait(poll_interval=0.05) == "completed"
    assert len(remote_jobs(openai_client, batch_id)) == 3
    assert prompts_received(upstream) == {p: 1 for p in "abcde"}


def test_a_second_process_changes_are_not_overwritten(tmp_path, engine):
    from langbatch_core import OpenAIChatCompletionBatch

    path = write_chat_file(tmp_path / "in.jsonl", ["ok", "bad [[400]]"])
    first = OpenAIChatCompletionBatch(path, connection=to_engine(engine))
    first.start()
    first.wait(poll_interval=0.05)
    second = Batch.load(first.id, connection=to_engine(engine))  # e.g. the dashboard
    assert second.retry(include_client_errors=True) == 1
    second.wait(poll_interval=0.05)
    first.refresh()  # the CLI's older copy: must pick up the retry, not erase it
    assert first.record.attempts == 2
    assert default_storage().load(first.id).attempts == 2
