"""A third-party provider goes through the same door as the built-in one; kind "local" finds the engine."""

from __future__ import annotations

import itertools
import os
import signal
from typing import ClassVar

import orjson
from batch_support import prompts_received, write_chat_file

from langbatch_core import Connection, OpenAIChatCompletionBatch
from langbatch_core.providers import Job, Provider, register_provider
from langbatch_core.requests import iter_requests


class InstantProvider(Provider):
    """Answers every request at once with its custom_id reversed (a real subclass, no network)."""

    jobs: ClassVar[dict[str, tuple[Job, bytes]]] = {}
    ids = itertools.count(1)

    def submit(self, input_path, endpoint, metadata):
        lines = [
            {"id": "r", "custom_id": r["custom_id"], "error": None,
             "response": {"status_code": 200, "request_id": "q", "body": {"model": "m", "choices": [
                 {"index": 0, "message": {"role": "assistant", "content": r["custom_id"][::-1]},
                  "finish_reason": "stop"}], "usage": {"total_tokens": 1}}}}
            for r in iter_requests(input_path)
        ]  # fmt: skip
        job = Job(
            id=f"instant_{next(self.ids)}", status="completed", metadata=dict(metadata), output_file_id="o"
        )
        job.request_counts = {"total": len(lines), "completed": len(lines), "failed": 0}
        self.jobs[job.id] = (job, b"".join(orjson.dumps(line) + b"\n" for line in lines))
        return job

    def poll(self, job_id):
        return self.jobs[job_id][0]

    def cancel(self, job_id):
        return self.poll(job_id)

    def download(self, job, out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "output.jsonl").write_bytes(self.jobs[job.id][1])
        return out_dir / "output.jsonl", None

    def find(self, metadata, created_after=None):
        return [job for job, _ in self.jobs.values() if metadata.items() <= job.metadata.items()]


def test_a_registered_provider_runs_a_batch(tmp_path):
    register_provider("instant", InstantProvider)
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", ["a", "b"]), connection=Connection("instant")
    )
    batch.start()
    assert batch.wait(poll_interval=0) == "completed"
    assert sorted(r["content"] for r in batch.get_results()[0]) == ["1-tseuqer", "2-tseuqer"]
    assert OpenAIChatCompletionBatch.load(batch.id).connection.kind == "instant"


def test_local_connection_resolves_to_the_engine_of_the_data_dir(tmp_path, upstream):
    from langbatch_core.config import data_dir
    from langbatch_core.local import ensure_local_engine
    from langbatch_core.local.engine import running_engine

    url = ensure_local_engine(
        data_dir(), backend=f"upstream:{upstream.base_url}"
    )  # as `langbatch serve` would
    try:
        batch = OpenAIChatCompletionBatch(
            write_chat_file(tmp_path / "in.jsonl", ["hi"]), connection=Connection.local()
        )
        batch.start()
        assert batch.wait(poll_interval=0.1) == "completed"
        assert batch.record.connection["base_url"] is None  # resolved at run time, not stored
        assert batch.get_results()[0][0]["content"] == "echo: hi"
        assert prompts_received(upstream) == {"hi": 1}
        assert url.startswith("http://127.0.0.1:")
    finally:
        info = running_engine(data_dir())
        if info:
            os.kill(info["pid"], signal.SIGTERM)
