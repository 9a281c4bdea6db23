"""The local engine's batch lifecycle, through the official openai client over real HTTP."""

from __future__ import annotations

import json
import time

import openai
import pytest
from support.fixtures import EXAMPLES

CHAT = "/v1/chat/completions"
TERMINAL = {"completed", "failed", "expired", "cancelled"}


def chat_line(custom_id: str, text: str, url: str = CHAT) -> str:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body})


def upload(client: openai.OpenAI, lines: list[str]):
    return client.files.create(file=("requests.jsonl", ("\n".join(lines) + "\n").encode()), purpose="batch")


def run_batch(client: openai.OpenAI, lines: list[str], endpoint: str = CHAT, **kw):
    file = upload(client, lines)
    return client.batches.create(input_file_id=file.id, endpoint=endpoint, completion_window="24h", **kw)


def wait(client: openai.OpenAI, batch_id: str, statuses=TERMINAL, timeout: float = 20.0, seen=None):
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if seen is not None:
            seen.append(batch.status)
        if batch.status in statuses:
            return batch
        assert time.monotonic() < deadline, f"batch still {batch.status} after {timeout} s"
        time.sleep(0.02)


def results(client: openai.OpenAI, file_id: str | None) -> dict[str, dict]:
    if file_id is None:
        return {}
    lines = [json.loads(line) for line in client.files.content(file_id).text.splitlines()]
    return {line["custom_id"]: line for line in lines}


def test_chat_batch_completes_with_answers_counts_usage_and_spec_shapes(openai_client, openai_spec):
    lines = [chat_line(f"req-{i}", f"hello {i}") for i in range(20)]
    file = upload(openai_client, lines)
    openai_spec.check(file, "OpenAIFile")
    created = openai_client.batches.create(
        input_file_id=file.id, endpoint=CHAT, completion_window="24h", metadata={"job": "nightly"}
    )
    assert created.status == "validating" and created.output_file_id is None
    openai_spec.check(created, "Batch")

    batch = wait(openai_client, created.id)
    openai_spec.check(batch, "Batch")
    assert batch.status == "completed"
    assert batch.request_counts.total == 20 and batch.request_counts.completed == 20
    assert batch.request_counts.failed == 0 and batch.error_file_id is None
    assert batch.metadata == {"job": "nightly"} and batch.model == "gpt-4o-mini"
    assert batch.created_at <= batch.in_progress_at <= batch.finalizing_at <= batch.completed_at
    assert batch.expires_at >= batch.created_at + 86400 - 1
    assert batch.usage.input_tokens == 40 and batch.usage.output_tokens == 60  # "echo: hello N" = 3 words
    assert batch.usage.total_tokens == 100

    output = results(openai_client, batch.output_file_id)
    assert set(output) == {f"req-{i}" for i in range(20)}
    for i in range(20):
        line = output[f"req-{i}"]
        openai_spec.check(line, "BatchRequestOutput")
        assert line["error"] is None and line["response"]["status_code"] == 200
        assert line["response"]["body"]["choices"][0]["message"]["content"] == f"echo: hello {i}"
    assert openai_client.files.retrieve(batch.output_file_id).purpose == "batch_output"


def test_official_example_files_run_and_every_line_reaches_the_upstream(openai_client, upstream, openai_spec):
    for example in EXAMPLES.glob("input_chat*.jsonl"):
        openai_spec.check(json.loads(example.read_text().splitlines()[0]), "BatchRequestInput")
    lines = (EXAMPLES / "input_chat.jsonl").read_text().splitlines()
    batch = wait(openai_client, run_batch(openai_client, lines).id)
    assert batch.status == "completed" and batch.request_counts.completed == len(lines)
    assert len(upstream.bodies(CHAT)) == len(lines)
    sent = {json.dumps(b, sort_keys=True) for b in upstream.bodies(CHAT)}
    assert sent == {json.dumps(json.loads(x)["body"], sort_keys=True) for x in lines}  # forwarded as is


def test_embeddings_batch_returns_vectors(openai_client):
    lines = [
        json.dumps({"custom_id": f"e{i}", "method": "POST", "url": "/v1/embeddings",
                    "body": {"model": "text-embedding-3-small", "input": f"text {i}"}})
        for i in range(5)
    ]  # fmt: skip
    batch = wait(openai_client, run_batch(openai_client, lines, "/v1/embeddings").id)
    assert batch.status == "completed" and batch.request_counts.completed == 5
    vectors = results(openai_client, batch.output_file_id)
    assert len(vectors["e3"]["response"]["body"]["data"][0]["embedding"]) == 8


def test_live_progress_is_visible_while_in_progress(make_engine, upstream):
    engine = make_engine(concurrency=2)
    client = openai.OpenAI(base_url=engine.base_url, api_key="k", max_retries=0)
    lines = [chat_line(f"r{i}", f"slow {i} [[slow:0.15]]") for i in range(8)]
    seen: list[str] = []
    created = run_batch(client, lines)
    partial = wait(client, created.id, {"in_progress"}, seen=seen)
    while partial.request_counts.completed == 0:
        partial = client.batches.retrieve(created.id)  # the server answers while requests run
    assert partial.status == "in_progress" and 0 < partial.request_counts.completed < 8
    assert partial.request_counts.total == 8 and partial.usage.input_tokens > 0
    final = wait(client, created.id, seen=seen)
    assert final.status == "completed" and final.request_counts.completed == 8
    order = [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]
    assert order[-1] == "completed" and "in_progress" in order
    assert set(order) <= {"validating", "in_progress", "finalizing", "completed"}
    client.close()


def test_invalid_input_file_fails_with_errors_naming_lines(openai_client, upstream, openai_spec):
    lines = [
        chat_line("a", "fine"),
        "{not json",
        chat_line("a", "duplicate id"),
        chat_line("c", "wrong url", url="/v1/embeddings"),
    ]
    batch = wait(openai_client, run_batch(openai_client, lines).id)
    openai_spec.check(batch, "Batch")
    assert batch.status == "failed" and batch.failed_at is not None and batch.in_progress_at is None
    assert batch.output_file_id is None and batch.error_file_id is None
    by_line = {error.line: error for error in batch.errors.data}
    assert {2, 3, 4} <= set(by_line)
    assert all(error.code and error.message for error in batch.errors.data)
    assert by_line[3].param is not None and "custom_id" in by_line[3].param
    assert upstream.received == []  # nothing of an invalid file is run


def test_batch_where_every_request_failed_is_completed_without_output_file(openai_client, upstream):
    lines = [chat_line(f"bad{i}", f"refused {i} [[400]]") for i in range(3)]
    batch = wait(openai_client, run_batch(openai_client, lines).id)
    assert batch.status == "completed" and batch.output_file_id is None
    assert batch.request_counts.failed == 3 and batch.request_counts.completed == 0
    errors = results(openai_client, batch.error_file_id)
    assert {e["response"]["status_code"] for e in errors.values()} == {400}
    assert len(upstream.received) == 3  # a 400 is final: not retried


def test_mixed_batch_splits_output_and_error_files(openai_client, openai_spec):
    lines = [chat_line("ok", "fine"), chat_line("bad", "no [[400]]")]
    batch = wait(openai_client, run_batch(openai_client, lines).id)
    assert set(results(openai_client, batch.output_file_id)) == {"ok"}
    errors = results(openai_client, batch.error_file_id)
    assert set(errors) == {"bad"}
    openai_spec.check(errors["bad"], "BatchRequestOutput")
    assert errors["bad"]["response"]["body"]["error"]["type"] == "invalid_request_error"


def test_completion_window_expires_batch_keeping_finished_results(make_engine, upstream, openai_spec):
    engine = make_engine(completion_window=0.6, concurrency=1)
    client = openai.OpenAI(base_url=engine.base_url, api_key="k", max_retries=0)
    lines = [chat_line("fast", "quick")] + [chat_line(f"slow{i}", f"s{i} [[slow:0.4]]") for i in range(6)]
    created = run_batch(client, lines)
    assert created.expires_at - created.created_at <= 1
    batch = wait(client, created.id)
    openai_spec.check(batch, "Batch")
    assert batch.status == "expired" and batch.expired_at is not None and batch.completed_at is None
    done = results(client, batch.output_file_id)
    expired = results(client, batch.error_file_id)
    assert "fast" in done and set(done) | set(expired) == {json.loads(x)["custom_id"] for x in lines}
    assert expired and all(
        e["error"]["code"] == "batch_expired" and e["response"] is None for e in expired.values()
    )
    assert batch.request_counts.completed == len(done) and batch.request_counts.failed == len(expired)
    client.close()


def test_cancel_goes_through_cancelling_and_keeps_finished_results(make_engine, upstream, openai_spec):
    engine = make_engine(concurrency=1)
    client = openai.OpenAI(base_url=engine.base_url, api_key="k", max_retries=0)
    lines = [chat_line(f"r{i}", f"s{i} [[slow:0.2]]") for i in range(20)]
    created = run_batch(client, lines)
    running = wait(client, created.id, {"in_progress"})
    while running.request_counts.completed < 1:
        running = client.batches.retrieve(created.id)
    cancelling = client.batches.cancel(created.id)
    openai_spec.check(cancelling, "Batch")
    assert cancelling.status in ("cancelling", "cancelled") and cancelling.cancelling_at is not None
    batch = wait(client, created.id)
    assert batch.status == "cancelled" and batch.cancelled_at >= batch.cancelling_at
    done, rest = results(client, batch.output_file_id), results(client, batch.error_file_id)
    assert len(done) >= 1 and len(done) + len(rest) == 20
    assert all(e["error"]["code"] == "batch_cancelled" for e in rest.values())
    assert len(upstream.received) < 20  # the rest was never sent
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(wait(client, run_batch(client, [chat_line("x", "y")]).id).id)  # completed
    client.close()


def test_enqueued_token_limit_fails_batch(make_engine, upstream):
    engine = make_engine(max_enqueued_tokens=5)
    client = openai.OpenAI(base_url=engine.base_url, api_key="k", max_retries=0)
    lines = [chat_line(f"r{i}", "a long prompt with many words " * 20) for i in range(3)]
    batch = wait(client, run_batch(client, lines).id)
    assert batch.status == "failed" and batch.errors.data[0].code == "token_limit_exceeded"
    assert upstream.received == []
    client.close()
