"""retry() resubmits only what has no success yet — after a partial failure, an expiry, a cancel and a failed
job — and never loses or resubmits a success. What the upstream received proves it."""

from __future__ import annotations

import json
import time

import pytest
from batch_support import chat_line, prompts_received, to_engine, write_chat_file

from langbatch_core import Batch, JobFailedError, OpenAIChatCompletionBatch
from langbatch_core.requests import iter_requests


def job_ids(batch, attempt):
    ids = set()
    for job in batch.record.jobs:
        if job.attempt == attempt:
            ids |= {r["custom_id"] for r in iter_requests(batch.directory / job.input_file)}
    return ids


def test_retry_after_partial_failure_resubmits_only_retryable_failures(tmp_path, engine, upstream):
    prompts = ["ok1", "ok2", "flaky [[500x3]]", "bad [[400]]"]
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", prompts), connection=to_engine(engine)
    )
    batch.start()
    batch.wait(poll_interval=0.05)
    assert (batch.record.succeeded, batch.record.failed) == (2, 2)
    first_calls = prompts_received(upstream)["flaky [[500x3]]"]

    assert batch.retry() == 1  # the 500; the 400 is the request's own fault
    assert job_ids(batch, 2) == {"request-3"}
    batch.wait(poll_interval=0.05)
    received = prompts_received(upstream)
    assert received["ok1"] == received["ok2"] == received["bad [[400]]"] == 1
    assert received["flaky [[500x3]]"] == first_calls + 1
    successful, unsuccessful = batch.get_results()
    assert sorted(r["custom_id"] for r in successful) == ["request-1", "request-2", "request-3"]
    assert [(r["custom_id"], r["status_code"]) for r in unsuccessful] == [("request-4", 400)]

    assert batch.retry() == 0  # nothing left worth retrying, callable again
    assert batch.retry(include_client_errors=True) == 1
    batch.wait(poll_interval=0.05)
    assert prompts_received(upstream)["bad [[400]]"] == 2
    assert len(batch.get_results()[0]) == 3  # no success lost
    assert batch.record.attempts == 3


def test_retry_after_expiry_keeps_finished_results(tmp_path, make_engine, upstream):
    first = make_engine(completion_window=0.5)
    path = write_chat_file(tmp_path / "in.jsonl", ["fast1", "fast2", "slow [[slow:0.9]]"])
    batch = OpenAIChatCompletionBatch(path, connection=to_engine(first))
    batch.start()
    assert batch.wait(poll_interval=0.05) == "expired"
    successful, unsuccessful = batch.get_results()
    assert sorted(r["custom_id"] for r in successful) == ["request-1", "request-2"]
    assert [(r["custom_id"], r["code"]) for r in unsuccessful] == [("request-3", "batch_expired")]
    first.stop()

    second = make_engine()  # same data dir: the engine keeps its jobs; no completion window this time
    again = Batch.load(batch.id, connection=to_engine(second))
    assert again.retry() == 1
    assert job_ids(again, 2) == {"request-3"}
    assert again.wait(poll_interval=0.05) == "completed"
    assert len(again.get_results()[0]) == 3
    received = prompts_received(upstream)
    assert received["fast1"] == received["fast2"] == 1


def test_retry_after_cancel_resubmits_only_unfinished_requests(tmp_path, make_engine, upstream):
    engine = make_engine(concurrency=1)
    prompts = [f"p{i} [[slow:0.15]]" for i in range(12)]
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", prompts), connection=to_engine(engine)
    )
    batch.start()
    while batch.record.succeeded < 1:
        time.sleep(0.02)
        batch.refresh()
    batch.cancel()
    assert batch.wait(poll_interval=0.05) == "cancelled"
    done = {r["custom_id"] for r in batch.get_results()[0]}
    assert 1 <= len(done) < 12

    resubmitted = batch.retry()
    assert job_ids(batch, 2) == {f"request-{i}" for i in range(1, 13)} - done
    assert resubmitted == 12 - len(done)
    assert batch.wait(poll_interval=0.05) == "completed"
    assert len(batch.get_results()[0]) == 12
    received = prompts_received(upstream)
    assert all(received[prompts[int(cid.split("-")[1]) - 1]] == 1 for cid in done)


def test_a_failed_job_loses_its_requests_and_retry_resubmits_them(tmp_path, make_engine, upstream):
    small = make_engine(max_enqueued_tokens=5)
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", ["a", "b"]), connection=to_engine(small)
    )
    batch.start()
    assert batch.wait(poll_interval=0.05) == "failed"
    with pytest.raises(JobFailedError, match="token_limit_exceeded") as caught:
        batch.raise_for_status()
    assert caught.value.errors and caught.value.errors[0]["code"] == "token_limit_exceeded"
    successful, unsuccessful = batch.get_results()
    assert successful == [] and {r["code"] for r in unsuccessful} == {"missing"}
    assert "token_limit_exceeded" in unsuccessful[0]["message"]
    assert upstream.received == []
    small.stop()

    roomy = make_engine()
    again = Batch.load(batch.id, connection=to_engine(roomy))
    assert again.retry() == 2
    assert again.wait(poll_interval=0.05) == "completed"
    assert prompts_received(upstream) == {"a": 1, "b": 1}


def test_a_retry_resubmits_the_original_lines_byte_for_byte(tmp_path, engine, upstream):
    lines = [
        json.dumps(chat_line("request-1", "ok")),
        json.dumps(chat_line("request-2", "Grüße, 東京 [[500x3]]"), ensure_ascii=False, indent=None),
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")  # json.dumps spacing, raw UTF-8
    batch = OpenAIChatCompletionBatch(path, connection=to_engine(engine))
    batch.start()
    batch.wait(poll_interval=0.05)

    assert batch.retry() == 1
    retry_job = next(job for job in batch.record.jobs if job.attempt == 2)
    assert (batch.directory / retry_job.input_file).read_text(encoding="utf-8") == lines[1] + "\n"
