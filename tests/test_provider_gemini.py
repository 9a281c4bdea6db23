"""Gemini's Batch Mode through the official ``google-genai`` SDK talking HTTP to a server that follows the
Gemini API's contract (tests/support/gemini_server.py): the whole lifecycle from an OpenAI-format file."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import orjson
import pytest
from click.testing import CliRunner
from support.gemini_server import KEY, GeminiServer

from langbatch_core import (
    AuthenticationError,
    Batch,
    Connection,
    InvalidRequestsError,
    OpenAIChatCompletionBatch,
)
from langbatch_core.cli import cli
from langbatch_core.results import load_results
from langbatch_core.storage import default_storage

CHAT = "/v1/chat/completions"
MODEL = "gemini-2.5-flash"


@pytest.fixture
def gemini(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with GeminiServer() as server:
        yield server


def write_lines(path, bodies):
    lines = [
        {"custom_id": f"r{i}", "method": "POST", "url": CHAT, "body": {"model": MODEL, **body}}
        for i, body in enumerate(bodies, start=1)
    ]
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def chat_file(path, prompts):
    return write_lines(path, [{"messages": [{"role": "user", "content": p}]} for p in prompts])


def on_gemini(path, server):
    return OpenAIChatCompletionBatch(path, connection=Connection.gemini(base_url=server.url))


def test_a_batch_runs_from_start_to_results(tmp_path, gemini):
    batch = on_gemini(
        chat_file(tmp_path / "in.jsonl", ["a", "bad [[400]]", "long [[length]]", "[[safety]]"]), gemini
    )
    batch.start()
    assert batch.wait(poll_interval=0) == "completed"

    [state] = gemini.batches.values()
    assert state["model"] == f"models/{MODEL}"
    assert state["spec"]["displayName"].startswith(
        f"langbatch langbatch_attempt=1 langbatch_batch_id={batch.id}"
    )
    assert (batch.record.succeeded, batch.record.failed, batch.record.not_run) == (3, 1, 0)
    results = {r["custom_id"]: r for r in batch.get_results()[0]}
    assert results["r1"]["content"] == "echo: a" and results["r1"]["finish_reason"] == "stop"
    assert results["r3"]["finish_reason"] == "length"  # MAX_TOKENS
    assert results["r4"]["finish_reason"] == "content_filter"  # SAFETY
    assert results["r1"]["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    [failure] = batch.get_results()[1]
    assert failure["custom_id"] == "r2" and failure["status_code"] == 400
    assert failure["code"] == "invalid_argument" and "invalid argument" in failure["message"]


def test_results_table_has_the_shape_of_an_openai_batch(tmp_path, gemini, engine):
    from batch_support import to_engine

    path = chat_file(tmp_path / "in.jsonl", ["a", "b [[400]]"])
    tables = []
    for batch in (on_gemini(path, gemini), OpenAIChatCompletionBatch(path, connection=to_engine(engine))):
        batch.start()
        batch.wait(poll_interval=0.05)
        tables.append(load_results(batch.get_results_file(), requests=path))
    assert list(tables[0].columns) == list(tables[1].columns)
    assert [list(table["status"]) for table in tables] == [["succeeded", "failed"]] * 2


def test_openai_bodies_are_translated_into_generate_content_requests(tmp_path, gemini):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    tool = {
        "type": "function",
        "function": {"name": "lookup", "description": "Find.", "parameters": {"type": "object"}},
    }
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "Paris"}'}}
    body = {
        "temperature": 0.2, "top_p": 0.9, "max_completion_tokens": 20, "stop": "END", "seed": 3,
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
        "tools": [tool], "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "see"}, image]},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": '{"found": true}'},
            {"role": "user", "content": "and then?"},
        ],
    }  # fmt: skip
    batch = on_gemini(write_lines(tmp_path / "in.jsonl", [body]), gemini)
    batch.start()
    batch.wait(poll_interval=0)

    [line] = gemini.received_requests()
    request = line["request"]
    assert line["key"] == "r1"
    assert request["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in request["contents"]] == ["user", "model", "user"]
    assert request["contents"][0]["parts"] == [
        {"text": "see"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
    ]
    assert request["contents"][1]["parts"] == [{"functionCall": {"name": "lookup", "args": {"q": "Paris"}}}]
    assert request["contents"][2]["parts"] == [
        {"functionResponse": {"name": "lookup", "response": {"found": True}}},
        {"text": "and then?"},
    ]
    assert request["generationConfig"] == {
        "temperature": 0.2, "topP": 0.9, "maxOutputTokens": 20, "seed": 3, "stopSequences": ["END"],
        "responseMimeType": "application/json", "responseJsonSchema": schema,
    }  # fmt: skip
    assert request["tools"] == [
        {
            "functionDeclarations": [
                {"name": "lookup", "description": "Find.", "parametersJsonSchema": {"type": "object"}}
            ]
        }
    ]
    assert request["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}
    }
    [answer] = batch.get_results()[0]
    [tool_call] = answer["choices"][0]["message"]["tool_calls"]
    assert answer["finish_reason"] == "tool_calls" and tool_call["function"]["name"] == "lookup"
    assert orjson.loads(tool_call["function"]["arguments"]) == {"text": "and then?"}


def test_what_gemini_cannot_run_is_refused_by_line_before_the_start(tmp_path, gemini):
    web_image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    path = write_lines(
        tmp_path / "in.jsonl",
        [
            {"messages": [{"role": "user", "content": "fine"}]},
            {"messages": [{"role": "user", "content": [web_image]}]},
            {"logit_bias": {"42": 1}, "messages": [{"role": "user", "content": "x"}]},
        ],
    )
    with pytest.raises(InvalidRequestsError) as caught:
        on_gemini(path, gemini)
    by_line = {issue.line: issue for issue in caught.value.issues}
    assert set(by_line) == {2, 3}
    assert by_line[2].param == "body.messages[0].content[0]" and "base64 data URL" in by_line[2].message
    assert by_line[3].param == "body.logit_bias" and by_line[3].message.startswith("Gemini has no logit_bias")
    assert gemini.files == {}


def test_an_expired_batch_has_no_results_and_retry_sends_everything(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with GeminiServer(per_poll=1, expire_after=2) as gemini:
        batch = on_gemini(chat_file(tmp_path / "in.jsonl", ["a", "b", "c", "d"]), gemini)
        batch.start()
        assert batch.wait(poll_interval=0) == "expired"  # EXPIRED: the documented contract keeps nothing
        assert (batch.record.succeeded, batch.record.not_run) == (0, 4)
        gemini.expire_after = None
        assert batch.retry() == 4
        assert batch.wait(poll_interval=0) == "completed"
        assert len(batch.get_results()[0]) == 4


def test_a_cancel_mid_way_keeps_what_was_answered_and_retry_sends_the_rest(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with GeminiServer(per_poll=1) as gemini:
        batch = on_gemini(chat_file(tmp_path / "in.jsonl", ["a", "b", "c"]), gemini)
        batch.start()
        assert batch.get_status() == "in_progress"  # PENDING -> RUNNING
        batch.get_status()  # one answered
        assert batch.cancel() == "cancelled"
        assert (batch.record.succeeded, batch.record.not_run) == (1, 2)
        assert batch.retry() == 2 and batch.wait(poll_interval=0) == "completed"
        sent = [line["key"] for line in gemini.received_requests()]
        assert sent == ["r1", "r2", "r3", "r2", "r3"]  # the success was not sent again


CRASH = textwrap.dedent(
    """
    import os, sys
    from langbatch_core import Connection, OpenAIChatCompletionBatch
    from langbatch_core.providers import register_provider
    from langbatch_core.providers.gemini import GeminiProvider

    class Crash(GeminiProvider):  # the process dies after Gemini created the batch (or just before)
        def create(self, *args, **kw):
            if sys.argv[3] == "after":
                super().create(*args, **kw)
            os._exit(75)

    register_provider("gemini", Crash)
    batch = OpenAIChatCompletionBatch(sys.argv[1], connection=Connection.gemini(base_url=sys.argv[2]))
    print(batch.id, flush=True)
    batch.start()
    """
)


@pytest.mark.parametrize("when", ["after", "before"])
def test_a_kill_around_the_create_leaves_one_batch(tmp_path, gemini, when):
    path = chat_file(tmp_path / "in.jsonl", ["a", "b"])
    done = subprocess.run(
        [sys.executable, "-c", CRASH, str(path), gemini.url, when], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 75, done.stderr
    batch_id = done.stdout.split()[0]
    assert [job.status for job in default_storage().load(batch_id).jobs] == ["submitting"]
    assert len(gemini.batches) == (1 if when == "after" else 0)

    batch = Batch.load(batch_id, connection=Connection.gemini(base_url=gemini.url))
    batch.start()  # after: finds the batch by its display name; before: creates it from the recorded file
    assert batch.wait(poll_interval=0) == "completed"
    assert len(gemini.batches) == 1 and len(gemini.received_requests()) == 2
    assert len(batch.get_results()[0]) == 2


def test_rate_limits_are_ridden_out(tmp_path, gemini):
    gemini.fail_next("POST", "/v1/models/", 429)
    gemini.fail_next("GET", "/v1/batches/", 429)
    batch = on_gemini(chat_file(tmp_path / "in.jsonl", ["a"]), gemini)
    batch.start()
    assert batch.wait(poll_interval=0) == "completed" and len(gemini.batches) == 1


def test_a_refused_key_says_which_variable_to_check(tmp_path, gemini, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "wrong")
    batch = on_gemini(chat_file(tmp_path / "in.jsonl", ["a"]), gemini)
    with pytest.raises(AuthenticationError, match="GEMINI_API_KEY"):
        batch.start()


def test_the_cli_runs_a_batch_on_gemini(tmp_path, gemini):
    def run(*args):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    path = chat_file(tmp_path / "in.jsonl", ["a", "b [[400]]"])
    created = run("create", path, "--start", "--connection", "gemini", "--base-url", gemini.url)
    assert created.exit_code == 0, created.output
    batch_id = re.search(r"Created batch (lb_[0-9a-f]+)", created.output).group(1)
    waited = run("wait", batch_id, "--poll-interval", "0")
    assert "completed: 1 succeeded, 1 failed, 0 not run, 0 pending of 2" in waited.output


def test_a_batch_is_estimated_at_gemini_s_batch_prices(tmp_path, gemini):
    from langbatch_core.requests.pricing import estimate_cost

    batch = on_gemini(
        write_lines(
            tmp_path / "in.jsonl", [{"max_tokens": 100, "messages": [{"role": "user", "content": "a"}]}]
        ),
        gemini,
    )
    assert batch.record.estimated_cost_usd > 0
    assert estimate_cost("gemini-2.5-flash-001", 1_000_000, 1_000_000) == 1.40


def test_a_lost_answer_to_an_upload_or_a_create_makes_nothing_twice(tmp_path, gemini):
    gemini.lose_next("POST", "/upload/v1/files")
    gemini.lose_next("POST", "/v1/models/")
    batch = on_gemini(chat_file(tmp_path / "in.jsonl", ["a"]), gemini)
    batch.start()  # 502s after the upload session opened and after the create: the batch is found by name
    assert batch.wait(poll_interval=0) == "completed"
    assert len(gemini.batches) == 1
    assert [f["source"] for f in gemini.files.values()].count("UPLOADED") == 1


def test_a_recorded_file_that_names_no_model_is_uploaded_again(tmp_path, gemini):
    path = chat_file(tmp_path / "in.jsonl", ["a"])
    done = subprocess.run(
        [sys.executable, "-c", CRASH, str(path), gemini.url, "before"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    batch_id = done.stdout.split()[0]
    [uploaded] = gemini.files.values()
    uploaded["displayName"] = "renamed by someone"  # the model it recorded is gone

    batch = Batch.load(batch_id, connection=Connection.gemini(base_url=gemini.url))
    batch.start()
    assert batch.wait(poll_interval=0) == "completed"
    assert batch.record.jobs[0].input_file_id != uploaded["name"] and len(gemini.batches) == 1
