"""Anthropic's Message Batches through the official ``anthropic`` SDK over real HTTP to a server following
its documented contract (tests/support/anthropic_server.py): translation, validation by line, the lifecycle,
retry keeping successes, cancel, expiry, rate limits and a kill between create and record."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.anthropic_server import AnthropicServer

from langbatch_core import (
    AnthropicChatCompletionBatch,
    Batch,
    Connection,
    InvalidRequestsError,
    OpenAIChatCompletionBatch,
    ProviderError,
    load_results,
    validate_file,
)
from langbatch_core.providers import provider_for
from langbatch_core.providers.claude_requests import DEFAULT_MAX_TOKENS, to_claude
from langbatch_core.storage import default_storage

MODEL = "claude-haiku-4-5"
PNG = "data:image/png;base64,iVBORw0KGgo="


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("LANGBATCH_PROVIDER_RETRY_SECONDS", "20")
    with AnthropicServer() as running:
        yield running


def line(custom_id: str, prompt: str, **body) -> dict:
    messages = [{"role": "user", "content": prompt}]
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": MODEL, "messages": messages, **body},
    }


def write(path, lines) -> str:
    path.write_text("".join(json.dumps(item) + "\n" for item in lines))
    return str(path)


def connection(server, **kw) -> Connection:
    return Connection.anthropic(base_url=server.base_url, **kw)


def ids_sent(server, index: int = -1) -> list[str]:
    return sorted(r["custom_id"] for r in server.created[index]["requests"])


# ---------------------------------------------------------------------------------------------- requests


def test_a_chat_body_becomes_a_claude_request_field_by_field():
    body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "What is here?"},
                {"type": "image_url", "image_url": {"url": PNG}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": '{"q": 1}'}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            {"role": "user", "content": "So?"},
        ],
        "tools": [{"type": "function", "function": {
            "name": "look", "description": "Look up", "parameters": {"type": "object"},
        }}],
        "tool_choice": {"type": "function", "function": {"name": "look"}},
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}},
        },
        "temperature": 0.5, "top_p": 0.9, "max_completion_tokens": 50, "stop": "END", "user": "u1", "n": 1,
    }  # fmt: skip
    params = to_claude(body)
    assert params["system"] == "Be brief.\n\nAnswer in French."
    assert [m["role"] for m in params["messages"]] == ["user", "assistant", "user"]
    image, url = params["messages"][0]["content"][1:]
    assert image["source"] == {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    assert url["source"] == {"type": "url", "url": "https://example.com/cat.jpg"}
    assert params["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "look", "input": {"q": 1}}
    ]
    result, follow_up = params["messages"][2]["content"]  # the tool result and the next user turn, one turn
    assert result == {"type": "tool_result", "tool_use_id": "call_1", "content": "a cat"}
    assert follow_up == {"type": "text", "text": "So?"}
    assert params["tools"] == [{"name": "look", "input_schema": {"type": "object"}, "description": "Look up"}]
    assert params["tool_choice"] == {"type": "tool", "name": "look", "disable_parallel_tool_use": True}
    assert params["output_config"] == {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    assert (params["temperature"], params["top_p"], params["max_tokens"]) == (0.5, 0.9, 50)
    assert params["stop_sequences"] == ["END"] and params["metadata"] == {"user_id": "u1"}
    assert to_claude(line("a", "hi")["body"])["max_tokens"] == DEFAULT_MAX_TOKENS


def test_what_claude_cannot_express_is_refused_by_line_naming_the_rule(tmp_path):
    path = write(
        tmp_path / "in.jsonl",
        [
            line("fine", "hi"),
            line("has space", "hi"),
            line("two", "hi", n=2),
            line("probs", "hi", logprobs=True),
            line("hot", "hi", temperature=1.5),
            line("json", "hi", response_format={"type": "json_object"}),
            line("x" * 65, "hi"),
        ],
    )
    capabilities = provider_for(Connection.anthropic()).capabilities
    report = validate_file(path, capabilities=capabilities)
    found = {(issue.line, issue.code, issue.param) for issue in report.issues}
    assert found == {
        (2, "unsupported_custom_id", "custom_id"),
        (3, "unsupported_parameter", "body.n"),
        (4, "unsupported_parameter", "body.logprobs"),
        (5, "unsupported_parameter", "body.temperature"),
        (6, "unsupported_parameter", "body.response_format"),
        (7, "unsupported_custom_id", "custom_id"),
    }
    messages = " ".join(issue.message for issue in report.issues)
    assert "^[a-zA-Z0-9_-]{1,64}$" in messages and "n must be 1" in messages


def test_the_split_plan_follows_anthropic_s_limits():
    limits = provider_for(Connection.anthropic()).limits
    assert limits.max_requests == 100_000 and limits.max_bytes <= 256 * 1000 * 1000


# ---------------------------------------------------------------------------------------------- lifecycle


def test_lifecycle_start_wait_results_and_retry_keeps_successes(tmp_path, server):
    path = write(
        tmp_path / "in.jsonl", [line("a", "one"), line("b", "two [[overloaded]]"), line("c", "three")]
    )
    batch = AnthropicChatCompletionBatch(path, connection=connection(server))
    batch.start()
    assert batch.get_status() in ("in_progress", "completed")
    assert batch.wait(poll_interval=0.05) == "completed"
    ok, failed = batch.get_results()
    assert sorted(r["custom_id"] for r in ok) == ["a", "c"]
    assert [r["content"] for r in sorted(ok, key=lambda r: r["custom_id"])] == ["echo: one", "echo: three"]
    assert [(f["custom_id"], f["code"], f["status_code"]) for f in failed] == [("b", "overloaded_error", 529)]
    assert server.created[0]["requests"][0]["params"]["max_tokens"] == DEFAULT_MAX_TOKENS

    batch.retry()  # an overloaded answer is worth retrying; the successes are not sent again
    assert ids_sent(server) == ["b"]
    batch.wait(poll_interval=0.05)
    assert sorted(r["custom_id"] for r in batch.get_results()[0]) == ["a", "c"]
    assert len(server.created) == 2


def test_the_results_table_has_openai_s_shape_and_keeps_the_native_line(tmp_path, server, engine):
    lines = [line("a", "one"), line("b", "[[error]] two")]
    path = write(tmp_path / "in.jsonl", lines)
    batch = OpenAIChatCompletionBatch(path, connection=connection(server))
    batch.start()
    batch.wait(poll_interval=0.05)
    table = load_results(batch.get_results_file(), requests=path)
    local = OpenAIChatCompletionBatch(
        write(tmp_path / "local.jsonl", lines), connection=Connection.local(engine.base_url)
    )
    local.start()
    local.wait(poll_interval=0.05)
    assert list(table.columns) == list(load_results(local.get_results_file(), requests=path).columns)
    rows = table.set_index("custom_id")
    assert rows.loc["a", "status"] == "succeeded" and rows.loc["a", "finish_reason"] == "stop"
    assert rows.loc["a", "prompt_tokens"] > 0 and rows.loc["a", "model"] == MODEL
    assert rows.loc["b", "status"] == "failed" and rows.loc["b", "error_code"] == "invalid_request_error"
    first = json.loads(batch.get_results_file().read_text().splitlines()[0])
    assert first["native"]["result"]["type"] in (
        "succeeded",
        "errored",
    )  # what Anthropic sent, for the detail


def test_cancel_mid_way_keeps_what_finished_and_marks_the_rest_not_run(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    with AnthropicServer(processing_seconds=0.0, cancel_seconds=1.0) as server:  # "fast" is done at once
        path = write(tmp_path / "in.jsonl", [line("fast", "one"), line("slow", "[[slow]] two")])
        batch = AnthropicChatCompletionBatch(path, connection=connection(server))
        batch.start()
        batch.cancel()
        job_id = batch.record.jobs[0].provider_job_id
        assert provider_for(connection(server)).poll(job_id).status == "cancelling"  # Anthropic's canceling
        assert batch.wait(poll_interval=0.05) == "cancelled"
        outcomes = load_results(batch.get_results_file()).set_index("custom_id")["status"].to_dict()
        assert outcomes == {"fast": "succeeded", "slow": "cancelled"}
        assert (batch.record.succeeded, batch.record.not_run) == (1, 1)


def test_an_expired_batch_keeps_its_partial_results(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    with AnthropicServer(processing_seconds=0.05, expire_seconds=0.6) as server:
        path = write(tmp_path / "in.jsonl", [line("done", "one"), line("late", "[[slow]] two")])
        batch = AnthropicChatCompletionBatch(path, connection=connection(server))
        batch.start()
        assert batch.wait(poll_interval=0.05) == "expired"
        outcomes = load_results(batch.get_results_file()).set_index("custom_id")["status"].to_dict()
        assert outcomes == {"done": "succeeded", "late": "expired"}
        batch.retry()
        assert ids_sent(server) == ["late"]


def test_rate_limits_are_ridden_out_honouring_retry_after(tmp_path, server):
    server.inject(429, times=2, retry_after=0.05)
    batch = AnthropicChatCompletionBatch(
        write(tmp_path / "in.jsonl", [line("a", "one")]), connection=connection(server)
    )
    batch.start()
    assert server.calls.count("POST /v1/messages/batches") == 3 and len(server.created) == 1
    assert batch.wait(poll_interval=0.05) == "completed"


def test_a_missing_key_names_the_variable_before_anything_is_recorded(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    batch = AnthropicChatCompletionBatch(write(tmp_path / "in.jsonl", [line("a", "one")]))
    with pytest.raises(Exception, match="ANTHROPIC_API_KEY"):
        batch.start()
    assert batch.record.jobs == []


# ---------------------------------------------------------------------------------------------- crashes

CRASH = textwrap.dedent(
    """
    import os, sys
    from langbatch_core import AnthropicChatCompletionBatch, Connection
    from langbatch_core.providers import register_provider
    from langbatch_core.providers.anthropic import AnthropicProvider
    from langbatch_core.providers.submissions import SubmissionLedger

    class CrashAfterCreate(AnthropicProvider):  # dies once the create answered, before the batch's record
        def submit(self, *args, **kw):
            super().submit(*args, **kw)
            os._exit(75)

    class CrashBeforeTheId(AnthropicProvider):  # dies before even the ledger learns the new batch's id
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            self.ledger.adopt = lambda *a: os._exit(75)

    register_provider("anthropic", CrashAfterCreate if sys.argv[3] == "after" else CrashBeforeTheId)
    batch = AnthropicChatCompletionBatch(sys.argv[1], connection=Connection.anthropic(base_url=sys.argv[2]))
    print(batch.id, flush=True)
    batch.start()
    """
)


@pytest.mark.parametrize("when", ["after", "before_the_id"])
def test_a_kill_between_create_and_record_never_creates_the_batch_twice(tmp_path, server, when):
    path = write(tmp_path / "in.jsonl", [line("a", "one"), line("b", "two")])
    done = subprocess.run(
        [sys.executable, "-c", CRASH, path, server.base_url, when], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 75, done.stderr
    batch_id = done.stdout.split()[0]
    assert [job.status for job in default_storage().load(batch_id).jobs] == ["submitting"]
    assert len(server.created) == 1

    batch = Batch.load(batch_id)
    batch.start()  # finds the message batch the crashed process created
    assert len(server.created) == 1
    assert batch.wait(poll_interval=0.05) == "completed"
    assert sorted(r["custom_id"] for r in batch.get_results()[0]) == ["a", "b"]


def test_an_unrecorded_submission_matching_two_batches_is_refused_not_guessed(tmp_path, server):
    path = write(tmp_path / "in.jsonl", [line("a", "one")])
    done = subprocess.run(
        [sys.executable, "-c", CRASH, path, server.base_url, "before_the_id"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 75, done.stderr
    other = provider_for(connection(server))  # someone else's one-request batch, created in the same window
    other.submit(tmp_path / "in.jsonl", "/v1/chat/completions", {})
    batch = Batch.load(done.stdout.split()[0])
    with pytest.raises(ProviderError, match="2 message batches match"):
        batch.start()
    assert len(server.created) == 2  # nothing created a third time


# ---------------------------------------------------------------------------------------------- doors


def test_the_cli_runs_a_file_on_the_anthropic_connection(tmp_path, server):
    from click.testing import CliRunner

    from langbatch_core.cli import cli

    path = write(tmp_path / "in.jsonl", [line("a", "one"), line("bad id", "two")])
    runner = CliRunner()
    refused = runner.invoke(cli, ["validate", path, "--connection", "anthropic"])
    assert refused.exit_code == 1 and "unsupported_custom_id" in refused.output
    path = write(tmp_path / "in.jsonl", [line("a", "one")])
    args = ["create", path, "--connection", "anthropic", "--base-url", server.base_url, "--start"]
    created = runner.invoke(cli, args, catch_exceptions=False)
    assert created.exit_code == 0, created.output
    batch_id = default_storage().list()[0].id
    waited = runner.invoke(cli, ["wait", batch_id], catch_exceptions=False)
    assert waited.exit_code == 0, waited.output
    shown = runner.invoke(cli, ["results", batch_id, "--show"], catch_exceptions=False)
    assert "echo: one" in shown.output


def test_a_refused_create_leaves_nothing_to_match_later(tmp_path, server):
    path = write(tmp_path / "in.jsonl", [line("a", "one")])
    batch = AnthropicChatCompletionBatch(path, connection=connection(server))
    server.inject(400)
    with pytest.raises(ProviderError, match="answered 400"):
        batch.start()
    someone_else = provider_for(connection(server)).submit(Path(path), "/v1/chat/completions", {})
    batch.start()  # creates its own: the refused create is not matched to someone else's batch
    assert len(server.created) == 2
    assert batch.record.jobs[0].provider_job_id != someone_else.id


def test_a_file_not_validated_for_anthropic_is_refused_naming_the_request(tmp_path, server):
    path = write(tmp_path / "in.jsonl", [line("a", "one"), line("b", "two", seed=7)])
    with pytest.raises(InvalidRequestsError, match=r"request 'b', body.seed: .*no seed"):
        provider_for(connection(server)).submit(Path(path), "/v1/chat/completions", {})
    assert server.created == []


def test_provider_aliases_do_not_change_what_a_loaded_chat_batch_is(tmp_path, server):
    batch = OpenAIChatCompletionBatch(
        write(tmp_path / "in.jsonl", [line("a", "one")]), connection=connection(server)
    )
    batch.save()
    assert AnthropicChatCompletionBatch.default_model == MODEL
    assert type(Batch.load(batch.id)) is OpenAIChatCompletionBatch


def test_claude_batch_prices_give_an_estimate(tmp_path):
    report = validate_file(write(tmp_path / "in.jsonl", [line("a", "one", max_tokens=1000)]))
    assert report.estimated_cost_usd == pytest.approx(report.input_tokens * 0.5e-6 + 1000 * 2.5e-6, abs=1e-6)
