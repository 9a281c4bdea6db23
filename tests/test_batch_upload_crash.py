"""A start stopped between uploading a job's file and creating the job (a crash, a provider error) leaves
no file behind at the provider: the uploaded file's id is recorded first and reused by the next start."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from batch_support import prompts_received, to_engine, write_chat_file
from support.fault_proxy import FaultProxy

from langbatch_core import Batch, Connection, OpenAIChatCompletionBatch, ProviderError
from langbatch_core.storage import default_storage

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from langbatch_core import Connection, OpenAIChatCompletionBatch
    from langbatch_core.providers import OpenAIProvider, register_provider

    class CrashBeforeCreate(OpenAIProvider):  # the process dies after the upload, before the create
        def create(self, *args, **kw):
            os._exit(75)

    register_provider("compatible", CrashBeforeCreate)
    batch = OpenAIChatCompletionBatch(sys.argv[1], connection=Connection.compatible(sys.argv[2]))
    print(batch.id, flush=True)
    batch.start()
    """
)


def batch_input_files(openai_client):
    return list(openai_client.files.list(purpose="batch"))


def test_a_crash_between_upload_and_create_leaves_one_file(tmp_path, engine, openai_client, upstream):
    path = write_chat_file(tmp_path / "in.jsonl", ["a", "b"])
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path), engine.base_url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 75, done.stderr
    batch_id = done.stdout.split()[0]
    [job] = default_storage().load(batch_id).jobs
    assert job.status == "submitting" and job.input_file_id  # recorded before the create
    assert [f.id for f in batch_input_files(openai_client)] == [job.input_file_id]

    batch = Batch.load(batch_id, connection=to_engine(engine))
    batch.start()  # creates the job from the recorded file instead of uploading it again
    assert batch.wait(poll_interval=0.05) == "completed"
    assert [f.id for f in batch_input_files(openai_client)] == [job.input_file_id]
    assert prompts_received(upstream) == {"a": 1, "b": 1}


def test_a_create_refused_after_the_upload_reuses_the_file_on_the_next_start(
    tmp_path, engine, openai_client, monkeypatch
):
    monkeypatch.setenv("LANGBATCH_PROVIDER_RETRY_SECONDS", "0")  # give up at the first refusal
    with FaultProxy(engine.base_url) as proxy:
        for _ in range(3):  # more than the SDK's own retries, were they on
            proxy.script("POST", "/v1/batches", "503")
        connection = Connection.compatible(proxy.base_url)
        batch = OpenAIChatCompletionBatch(
            write_chat_file(tmp_path / "in.jsonl", ["x"]), connection=connection
        )
        with pytest.raises(ProviderError, match="503"):
            batch.start()
        assert len(batch_input_files(openai_client)) == 1
        proxy.reset()
        Batch.load(batch.id, connection=connection).start()
    assert len(batch_input_files(openai_client)) == 1


def test_a_recorded_file_the_provider_lost_is_uploaded_again(tmp_path, engine, openai_client):
    path = write_chat_file(tmp_path / "in.jsonl", ["gone"])
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path), engine.base_url], capture_output=True, text=True, timeout=60
    )
    batch_id = done.stdout.split()[0]
    openai_client.files.delete(default_storage().load(batch_id).jobs[0].input_file_id)  # e.g. expired

    batch = Batch.load(batch_id, connection=to_engine(engine))
    batch.start()
    assert batch.wait(poll_interval=0.05) == "completed"
    assert [f.id for f in batch_input_files(openai_client)] == [batch.record.jobs[0].input_file_id]
