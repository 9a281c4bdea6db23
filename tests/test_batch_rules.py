"""The I/O-free rules of the lifecycle: the aggregated status, failure shapes, what is worth retrying."""

from __future__ import annotations

import orjson
import pytest
from batch_support import write_chat_file

from langbatch_core import Batch, OpenAIChatCompletionBatch, OpenAIEmbeddingBatch
from langbatch_core.batch.rules import aggregate_status, failure_of, is_retryable
from langbatch_core.storage import JobRecord


def jobs(*statuses):
    return [JobRecord(key=f"a{a}-j{i}", attempt=a, request_count=1, input_file="x", status=s)
            for i, (a, s) in enumerate(statuses)]  # fmt: skip


@pytest.mark.parametrize(
    ("statuses", "all_ok", "expected"),
    [
        ((), False, "not_started"),
        (((1, "submitting"),), False, "validating"),
        (((1, "in_progress"), (1, "in_progress")), False, "in_progress"),
        (((1, "validating"), (1, "finalizing")), False, "in_progress"),
        (((1, "in_progress"), (1, "cancelling")), False, "cancelling"),
        (((1, "completed"), (1, "completed")), True, "completed"),
        (((1, "expired"), (2, "completed")), True, "completed"),
        (((1, "completed"), (2, "expired")), False, "expired"),
        (((1, "completed"), (1, "failed")), False, "failed"),
        (((1, "cancelled"), (1, "failed")), False, "cancelled"),
        (((1, "expired"), (2, "completed")), False, "completed"),
    ],
)
def test_aggregate_status(statuses, all_ok, expected):
    assert aggregate_status(jobs(*statuses), all_succeeded=all_ok) == expected


REJECTED = {
    "response": {"status_code": 400, "body": {"error": {"message": "bad", "type": "invalid_request_error"}}}
}
EXPIRED = {"response": None, "error": {"code": "batch_expired", "message": "too late"}}


def test_failure_of_reads_both_shapes():
    assert failure_of(REJECTED) == {"code": "invalid_request_error", "message": "bad", "status_code": 400}
    assert failure_of(EXPIRED) == {"code": "batch_expired", "message": "too late", "status_code": None}


@pytest.mark.parametrize(
    ("result", "retry"),
    [
        (EXPIRED, True),
        ({"response": None, "error": {"code": "batch_cancelled", "message": ""}}, True),
        ({"response": {"status_code": 429, "body": {}}}, True),
        ({"response": {"status_code": 503, "body": {}}}, True),
        (REJECTED, False),
        ({"response": {"status_code": 200, "body": {}}, "error": None}, False),
    ],
)
def test_is_retryable(result, retry):
    assert is_retryable(result) is retry


def test_client_errors_are_retried_only_on_request():
    assert is_retryable(REJECTED, include_client_errors=True)


def test_from_file_picks_the_kind(tmp_path):
    chat = write_chat_file(tmp_path / "chat.jsonl", ["a"])
    emb = tmp_path / "emb.jsonl"
    line = {"custom_id": "e", "method": "POST", "url": "/v1/embeddings", "body": {"model": "m", "input": "x"}}
    emb.write_bytes(orjson.dumps(line) + b"\n")
    assert type(Batch.from_file(chat)) is OpenAIChatCompletionBatch
    assert type(Batch.from_file(emb)) is OpenAIEmbeddingBatch
    assert Batch.from_file(emb).record.kind == "OpenAIEmbeddingBatch"


def test_a_client_object_is_used_and_only_its_url_recorded(tmp_path, openai_client):
    batch = OpenAIChatCompletionBatch(write_chat_file(tmp_path / "in.jsonl", ["a"]), client=openai_client)
    batch.start()
    assert batch.wait(poll_interval=0.05) == "completed"
    assert batch.record.connection["kind"] == "compatible"
    assert batch.record.connection["base_url"] == str(openai_client.base_url)
    assert batch.record.connection["api_key_env"] is None
    again = OpenAIChatCompletionBatch.load(batch.id, client=openai_client)
    assert again.get_results()[0][0]["content"] == "echo: a"
