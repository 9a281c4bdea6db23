"""What the connection's model cannot honour is flagged by line before a start, from the one description
the bundled model's backend refuses with."""

from __future__ import annotations

import pytest
from support.data_requests import chat_request, embedding_request, write_lines
from test_providers_custom import InstantProvider

from langbatch_core import Connection, OpenAIChatCompletionBatch
from langbatch_core.errors import InvalidRequestsError
from langbatch_core.local.model.chat_request import BUNDLED_MODEL, InvalidBodyError, parse_chat_request
from langbatch_core.providers import provider_for, register_provider
from langbatch_core.requests import Capabilities, validate_file

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
IMAGE = [
    {"type": "text", "text": "What is it?"},
    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
]
NOT_FOLLOWABLE = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "strng"}}}

REFUSED = [
    ({"logprobs": True}, "body.logprobs"),
    ({"tools": [TOOL]}, "body.tools"),
    ({"response_format": NOT_FOLLOWABLE}, "body.response_format.json_schema.schema"),
    ({"n": 17}, "body.n"),
    ({"prediction": {"type": "content", "content": "x"}}, "body.prediction"),
]


def with_line_2(tmp_path, body: dict | None = None, content=None):
    request = chat_request("b", "hi", **(body or {}))
    if content is not None:
        request["body"]["messages"][1]["content"] = content
    lines = [chat_request("a", "hi", max_tokens=5), request, chat_request("c", "hi", n=3, temperature=0.5)]
    return write_lines(tmp_path / "requests.jsonl", lines)


@pytest.mark.parametrize(("body", "param"), REFUSED, ids=[param for _, param in REFUSED])
def test_what_the_bundled_model_refuses_is_flagged_by_line(tmp_path, body, param):
    path = with_line_2(tmp_path, body)
    assert validate_file(path).ok  # OpenAI takes it
    report = validate_file(path, capabilities=BUNDLED_MODEL)
    assert [(i.line, i.code, i.param) for i in report.issues] == [(2, "unsupported_parameter", param)]
    with pytest.raises(InvalidBodyError) as refused:  # the very 400 the model's backend answers
        parse_chat_request(chat_request("b", "hi", **body)["body"])
    assert str(refused.value) in report.issues[0].message


def test_an_image_for_the_text_model_is_flagged_on_its_part(tmp_path):
    report = validate_file(with_line_2(tmp_path, content=IMAGE), capabilities=BUNDLED_MODEL)
    assert [(i.line, i.param) for i in report.issues] == [(2, "body.messages[1].content[1]")]
    assert "reads text only" in report.issues[0].message


def test_an_invalid_line_gets_its_own_issue_not_a_second_one(tmp_path):
    report = validate_file(with_line_2(tmp_path, {"temperature": "hot"}), capabilities=BUNDLED_MODEL)
    assert [(i.line, i.code) for i in report.issues] == [(2, "invalid_parameter")]


def test_embedding_dimensions_the_bundled_model_lacks(tmp_path):
    odd = embedding_request("b", "text")
    odd["body"]["dimensions"] = 256
    path = write_lines(tmp_path / "e.jsonl", [embedding_request("a", "text"), odd])
    report = validate_file(path, capabilities=BUNDLED_MODEL)
    assert [(i.line, i.param) for i in report.issues] == [(2, "body.dimensions")]


def test_a_local_connection_without_engine_will_run_the_bundled_model(tmp_path):
    assert provider_for(Connection.local(), data_dir=tmp_path).capabilities is BUNDLED_MODEL
    assert provider_for(Connection.openai()).capabilities is None


def test_an_engine_with_an_upstream_backend_refuses_nothing_more(engine):
    assert provider_for(Connection.local(engine.base_url)).capabilities is None


def test_a_batch_on_the_bundled_model_refuses_what_it_cannot_run_before_recording(tmp_path):
    path = with_line_2(tmp_path, {"logprobs": True})
    with pytest.raises(InvalidRequestsError, match=r"line 2: unsupported_parameter") as caught:
        OpenAIChatCompletionBatch(path, connection=Connection.local())
    assert [(i.line, i.param) for i in caught.value.issues] == [(2, "body.logprobs")]
    assert OpenAIChatCompletionBatch(path, connection=Connection.openai()).record.request_count == 3


class NoSeedProvider(InstantProvider):
    """A provider whose model takes no seed, once ``strict`` is set (a real subclass)."""

    strict = False

    @property
    def capabilities(self):
        return Capabilities("the no-seed model", no_seed) if NoSeedProvider.strict else None


def no_seed(endpoint, body):
    return ("seed", "this model takes no seed: remove it.") if "seed" in body else None


def test_start_checks_the_capabilities_again_before_submitting(tmp_path, monkeypatch):
    register_provider("no-seed", NoSeedProvider)
    path = with_line_2(tmp_path, {"seed": 7})
    batch = OpenAIChatCompletionBatch(path, connection=Connection("no-seed"))
    monkeypatch.setattr(NoSeedProvider, "strict", True)  # the model behind the connection changed
    with pytest.raises(InvalidRequestsError, match="line 2: unsupported_parameter: The no-seed model: this"):
        batch.start()
    assert batch.record.jobs == [] and not any(
        job.metadata.get("langbatch_batch_id") == batch.id for job, _ in InstantProvider.jobs.values()
    )
