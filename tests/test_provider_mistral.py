"""Mistral's batch jobs through the official ``mistralai`` SDK talking HTTP to a server that follows Mistral's
contract (tests/support/mistral_server.py): the whole lifecycle from an OpenAI-format request file."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import orjson
import pytest
from support.mistral_server import KEY, MistralServer

from langbatch_core import (
    Batch,
    Connection,
    InvalidRequestsError,
    MissingAPIKeyError,
    OpenAIChatCompletionBatch,
    ProviderError,
)
from langbatch_core.results import load_results
from langbatch_core.storage import default_storage

CHAT = "/v1/chat/completions"


@pytest.fixture
def mistral(monkeypatch):
    monkeypatch.setenv("MISTRAL_API_KEY", KEY)
    with MistralServer() as server:
        yield server


def chat_file(path, prompts, model="mistral-small-latest", **extra):
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": CHAT,
            "body": {"model": model, "messages": [{"role": "user", "content": p}], **extra},
        }
        for i, p in enumerate(prompts, start=1)
    ]
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def prompts_answered(server):
    """How many times each prompt was sent to Mistral, over all jobs."""
    counts: dict[str, int] = {}
    for body in server.received_bodies():
        text = body["messages"][-1]["content"]
        counts[text] = counts.get(text, 0) + 1
    return counts


def test_a_batch_runs_from_start_to_results(tmp_path, mistral):
    path = chat_file(tmp_path / "in.jsonl", ["a", "b", "bad [[400]]", "long [[length]]"])
    batch = OpenAIChatCompletionBatch(path, connection=Connection.mistral(base_url=mistral.url))
    batch.start()
    assert batch.get_status() == "in_progress"  # QUEUED -> RUNNING at the first read
    assert batch.wait(poll_interval=0) == "completed"

    [job] = mistral.jobs.values()
    assert job["spec"]["model"] == "mistral-small-latest" and job["spec"]["timeout_hours"] == 24
    assert job["spec"]["metadata"]["langbatch_batch_id"] == batch.id
    assert batch.progress() | {"batch_id": None} == {
        "batch_id": None, "status": "completed", "total": 4, "succeeded": 3, "failed": 1,
        "pending": 0, "not_run": 0, "jobs": 1, "attempts": 1,
    }  # fmt: skip
    results = {r["custom_id"]: r for r in batch.get_results()[0]}
    assert results["r1"]["content"] == "echo: a" and results["r1"]["finish_reason"] == "stop"
    assert results["r4"]["finish_reason"] == "length"  # Mistral's model_length
    assert results["r1"]["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    [failure] = batch.get_results()[1]
    assert failure["custom_id"] == "r3" and "Invalid model" in str(failure)


def test_results_table_has_the_shape_of_an_openai_batch(tmp_path, mistral, engine):
    from batch_support import to_engine

    path = chat_file(tmp_path / "in.jsonl", ["a", "b [[400]]"], model="gpt-4o-mini")
    on_mistral = OpenAIChatCompletionBatch(path, connection=Connection.mistral(base_url=mistral.url))
    on_engine = OpenAIChatCompletionBatch(path, connection=to_engine(engine))
    for batch in (on_mistral, on_engine):
        batch.start()
        batch.wait(poll_interval=0.05)
    mistral_table = load_results(on_mistral.get_results_file(), requests=path)
    engine_table = load_results(on_engine.get_results_file(), requests=path)
    assert list(mistral_table.columns) == list(engine_table.columns)
    assert list(mistral_table["status"]) == ["succeeded", "failed"]


def test_openai_bodies_are_translated_into_mistral_ones(tmp_path, mistral):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    schema = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    body = {
        "model": "pixtral-12b", "seed": 7, "max_completion_tokens": 20, "user": "someone", "stop": ["\n"],
        "response_format": schema, "tools": [tool], "temperature": 0.2, "top_p": 0.9,
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "see"}, image]},
        ],
    }  # fmt: skip
    line = {"custom_id": "x", "method": "POST", "url": CHAT, "body": body}
    path = tmp_path / "in.jsonl"
    path.write_bytes(orjson.dumps(line) + b"\n")
    batch = OpenAIChatCompletionBatch(path, connection=Connection.mistral(base_url=mistral.url))
    batch.start()
    batch.wait(poll_interval=0)

    [sent] = mistral.received_bodies()
    assert sent["random_seed"] == 7 and "seed" not in sent and "user" not in sent
    assert sent["max_tokens"] == 20 and "max_completion_tokens" not in sent
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["messages"][1]["content"][1] == image
    assert sent["response_format"] == schema and sent["tools"] == [tool] and sent["stop"] == ["\n"]
    [answer] = batch.get_results()[0]
    [call] = answer["choices"][0]["message"]["tool_calls"]
    assert answer["finish_reason"] == "tool_calls"
    assert orjson.loads(call["function"]["arguments"]) == {"text": "see"}  # a JSON string, as OpenAI's


def test_what_mistral_cannot_run_is_refused_by_line_before_the_start(tmp_path, mistral):
    path = tmp_path / "in.jsonl"
    small, large = "mistral-small-latest", "mistral-large-latest"
    bodies = [{"model": small}, {"model": small, "logprobs": True}, {"model": large}]
    lines = [
        {"custom_id": str(i), "method": "POST", "url": CHAT,
         "body": {**body, "messages": [{"role": "user", "content": "x"}]}}
        for i, body in enumerate(bodies)
    ]  # fmt: skip
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    with pytest.raises(InvalidRequestsError) as caught:
        OpenAIChatCompletionBatch(path, connection=Connection.mistral(base_url=mistral.url))
    by_line = {issue.line: issue for issue in caught.value.issues}
    assert by_line[2].param == "body.logprobs"
    assert (
        by_line[2].message
        == "Mistral's chat API returns no log probabilities: remove logprobs from this request."
    )
    assert by_line[3].code == "multiple_models"  # one model a job, as for OpenAI
    assert mistral.jobs == {}


def test_an_expired_job_keeps_its_answers_and_retry_sends_only_the_rest(tmp_path, monkeypatch):
    monkeypatch.setenv("MISTRAL_API_KEY", KEY)
    with MistralServer(per_poll=1, timeout_after=2) as mistral:
        path = chat_file(tmp_path / "in.jsonl", ["a", "b", "c", "d"])
        batch = OpenAIChatCompletionBatch(path, connection=Connection.mistral(base_url=mistral.url))
        batch.start()
        assert batch.wait(poll_interval=0) == "expired"  # TIMEOUT_EXCEEDED after 2 answers
        assert (batch.record.succeeded, batch.record.not_run) == (2, 2)
        mistral.timeout_after = None
        assert batch.retry() == 2
        assert batch.wait(poll_interval=0) == "completed"
        assert prompts_answered(mistral) == {"a": 1, "b": 1, "c": 2, "d": 2}  # sent; answered once each
        assert len(batch.get_results()[0]) == 4
        answered = [line for job in mistral.jobs.values() for line in job["done"]]
        assert sorted(line["custom_id"] for line in answered) == ["r1", "r2", "r3", "r4"]


def test_a_cancel_mid_way_keeps_what_was_answered(tmp_path, monkeypatch):
    monkeypatch.setenv("MISTRAL_API_KEY", KEY)
    with MistralServer(per_poll=1) as mistral:
        path = chat_file(tmp_path / "in.jsonl", ["a", "b", "c"])
        batch = OpenAIChatCompletionBatch(path, connection=Connection.mistral(base_url=mistral.url))
        batch.start()
        batch.get_status()  # RUNNING
        batch.get_status()  # one answered
        assert batch.cancel() == "cancelled"  # CANCELLATION_REQUESTED, then CANCELLED at the next read
        assert (batch.record.succeeded, batch.record.not_run) == (1, 2)
        assert batch.retry() == 2 and batch.wait(poll_interval=0) == "completed"


CRASH = textwrap.dedent(
    """
    import os, sys
    from langbatch_core import Connection, OpenAIChatCompletionBatch
    from langbatch_core.providers import register_provider
    from langbatch_core.providers.mistral import MistralProvider

    class Crash(MistralProvider):  # the process dies right after Mistral created the job (or just before)
        def create(self, *args, **kw):
            if sys.argv[3] == "after":
                super().create(*args, **kw)
            os._exit(75)

    register_provider("mistral", Crash)
    batch = OpenAIChatCompletionBatch(sys.argv[1], connection=Connection.mistral(base_url=sys.argv[2]))
    print(batch.id, flush=True)
    batch.start()
    """
)


@pytest.mark.parametrize("when", ["after", "before"])
def test_a_kill_around_the_create_leaves_one_job(tmp_path, mistral, when):
    path = chat_file(tmp_path / "in.jsonl", ["a", "b"])
    done = subprocess.run(
        [sys.executable, "-c", CRASH, str(path), mistral.url, when],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 75, done.stderr
    batch_id = done.stdout.split()[0]
    assert [job.status for job in default_storage().load(batch_id).jobs] == ["submitting"]
    assert len(mistral.jobs) == (1 if when == "after" else 0)

    batch = Batch.load(batch_id, connection=Connection.mistral(base_url=mistral.url))
    batch.start()  # after: finds the job by its metadata; before: creates it from the recorded file
    assert batch.wait(poll_interval=0) == "completed"
    assert len(mistral.jobs) == 1 and len(batch.get_results()[0]) == 2
    assert batch.record.jobs[0].provider_job_id == next(iter(mistral.jobs))
    assert len(mistral.received_bodies()) == 2  # uploaded once


def test_rate_limits_are_ridden_out(tmp_path, mistral):
    mistral.fail_next("POST", "/v1/batch/jobs", 429)
    mistral.fail_next("GET", "/v1/batch/jobs/", 429)
    path = chat_file(tmp_path / "in.jsonl", ["a"])
    batch = OpenAIChatCompletionBatch(path, connection=Connection.mistral(base_url=mistral.url))
    batch.start()
    assert batch.wait(poll_interval=0) == "completed"
    assert len(mistral.jobs) == 1


def test_a_refused_key_and_a_missing_key_say_what_to_do(tmp_path, mistral, monkeypatch):
    path = chat_file(tmp_path / "in.jsonl", ["a"])
    monkeypatch.setenv("MISTRAL_API_KEY", "wrong")
    batch = OpenAIChatCompletionBatch(path, connection=Connection.mistral(base_url=mistral.url))
    with pytest.raises(ProviderError, match="MISTRAL_API_KEY"):
        batch.start()
    monkeypatch.delenv("MISTRAL_API_KEY")
    with pytest.raises(MissingAPIKeyError, match="MISTRAL_API_KEY"):
        OpenAIChatCompletionBatch(path, connection=Connection.mistral(base_url=mistral.url)).start()


def test_the_cli_runs_a_batch_on_mistral(tmp_path, mistral):
    import re

    from click.testing import CliRunner

    from langbatch_core.cli import cli

    def run(*args):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    path = chat_file(tmp_path / "in.jsonl", ["a", "b [[400]]"])
    created = run("create", path, "--start", "--connection", "mistral", "--base-url", mistral.url)
    assert created.exit_code == 0, created.output
    batch_id = re.search(r"Created batch (lb_[0-9a-f]+)", created.output).group(1)
    waited = run("wait", batch_id, "--poll-interval", "0")
    assert "completed: 1 succeeded, 1 failed, 0 not run, 0 pending of 2" in waited.output
    assert len(mistral.jobs) == 1 and "errors: 1500 1" in run("status", batch_id).output


def test_a_batch_is_estimated_at_mistral_s_batch_prices(tmp_path, mistral):
    from langbatch_core.requests.pricing import estimate_cost

    path = chat_file(tmp_path / "in.jsonl", ["a"], max_tokens=100)
    batch = OpenAIChatCompletionBatch(path, connection=Connection.mistral(base_url=mistral.url))
    assert batch.record.estimated_cost_usd > 0
    assert estimate_cost("mistral-small-latest", 1_000_000, 1_000_000) == 0.20


def test_a_lost_answer_to_an_upload_or_a_create_makes_nothing_twice(tmp_path, mistral):
    mistral.lose_next("POST", "/v1/files")
    mistral.lose_next("POST", "/v1/batch/jobs")
    batch = OpenAIChatCompletionBatch(
        chat_file(tmp_path / "in.jsonl", ["a"]), connection=Connection.mistral(base_url=mistral.url)
    )
    batch.start()  # each 502 came after the work was done: found by name and by metadata, not redone
    assert batch.wait(poll_interval=0) == "completed"
    assert len(mistral.jobs) == 1
    assert [f["sample_type"] for f in mistral.files.values()].count("batch_request") == 1


def test_a_base_url_without_the_batch_api_says_what_the_root_looks_like(tmp_path, mistral):
    from langbatch_core import ConfigurationError

    path = chat_file(tmp_path / "in.jsonl", ["a"])
    batch = OpenAIChatCompletionBatch(
        path, connection=Connection.mistral(base_url=f"{mistral.url}/elsewhere")
    )
    with pytest.raises(ConfigurationError, match=r"no batch API there .*like https://api\.mistral\.ai"):
        batch.start()
