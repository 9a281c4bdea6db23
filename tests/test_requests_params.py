"""Generation parameters checked for type and range as OpenAI's API checks them, by line and param; the
fast path accepts only what the detailed rules accept."""

from __future__ import annotations

import json

import msgspec
import pytest
from support.data_requests import chat_request, embedding_request, write_lines

from langbatch_core.requests import validate_file
from langbatch_core.requests.fast import chat_decoder, chat_facts

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
}

BAD_PARAMETERS = [
    ("temperature", "hot", 'temperature must be a number between 0 and 2, got "hot".'),
    ("temperature", 2.5, "temperature must be a number between 0 and 2, got 2.5."),
    ("temperature", True, "temperature must be a number between 0 and 2, got true."),
    ("top_p", 1.1, "top_p must be a number between 0 and 1, got 1.1."),
    ("presence_penalty", -3, "presence_penalty must be a number between -2 and 2, got -3."),
    ("frequency_penalty", "0", 'frequency_penalty must be a number between -2 and 2, got "0".'),
    ("max_tokens", 0, "max_tokens must be a whole number at least 1, got 0."),
    ("max_tokens", 1.5, "max_tokens must be a whole number at least 1, got 1.5."),
    ("max_completion_tokens", "100", 'max_completion_tokens must be a whole number at least 1, got "100".'),
    ("max_completion_tokens", 2**63, None),
    ("n", 0, "n must be a whole number from 1 to 128, got 0."),
    ("n", 129, "n must be a whole number from 1 to 128, got 129."),
    ("stop", ["a", "b", "c", "d", "e"], "stop must be a string or a list of up to 4 strings, got a list."),
    ("stop", 5, None),
    ("seed", "42", None),
    ("logprobs", "yes", 'logprobs must be true or false, got "yes".'),
    ("top_logprobs", 21, "top_logprobs must be a whole number from 0 to 20, got 21."),
    ("response_format", {"type": "xml"}, None),
    ("response_format", {"type": "json_schema"}, None),
    ("response_format", {"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}}, None),
    ("response_format", {"type": "json_schema", "json_schema": {"name": "a", "schema": []}}, None),
    ("response_format", {"type": "json_schema", "json_schema": {"name": "a", "strict": "yes"}}, None),
    ("tools", TOOL, None),
    ("tools", [{"type": "function", "function": {"name": "has space"}}], None),
    ("tools", [{"type": "function", "function": {"name": "x" * 65}}], None),
    ("tools", [{"type": "function", "function": {"name": "f", "parameters": "object"}}], None),
    ("tools", [{"type": "retrieval"}], None),
    ("tool_choice", "always", None),
    ("tool_choice", {"type": "function"}, None),
    ("parallel_tool_calls", 1, None),
]


def line_2(tmp_path, **body):
    lines = [chat_request("a", "hi"), chat_request("b", "hi", **body), chat_request("c", "hi")]
    return write_lines(tmp_path / "requests.jsonl", lines)


@pytest.mark.parametrize(("name", "value", "message"), BAD_PARAMETERS, ids=lambda v: str(v)[:20])
def test_a_bad_parameter_is_reported_by_line_and_param(tmp_path, name, value, message):
    body = {name: value}
    if name == "top_logprobs":
        body["logprobs"] = True
    report = validate_file(line_2(tmp_path, **body))
    found = [(i.line, i.code, i.param) for i in report.issues if i.severity == "error"]
    assert [(line, code) for line, code, _ in found] == [(2, "invalid_parameter")]
    assert found[0][2].startswith(f"body.{name}")
    if message is not None:
        assert report.issues[0].message == message


@pytest.mark.parametrize(("name", "value", "message"), BAD_PARAMETERS, ids=lambda v: str(v)[:20])
def test_the_fast_path_never_accepts_a_bad_parameter(name, value, message):
    decode, _ = chat_decoder("/v1/chat/completions")
    raw = json.dumps(chat_request("b", "hi", **{name: value})).encode()
    try:
        facts = chat_facts(decode(raw))
    except (msgspec.DecodeError, msgspec.ValidationError):
        facts = None
    assert facts is None


def test_top_logprobs_needs_logprobs(tmp_path):
    report = validate_file(line_2(tmp_path, top_logprobs=3))
    assert [(i.line, i.param) for i in report.issues] == [(2, "body.logprobs")]


GOOD_PARAMETERS = {
    "temperature": 0,
    "top_p": 0.5,
    "presence_penalty": -2,
    "frequency_penalty": 1.5,
    "max_completion_tokens": 256,
    "n": 2,
    "stop": ["\n\n", "END"],
    "seed": -7,
    "logprobs": True,
    "response_format": SCHEMA,
    "tools": [TOOL, {"type": "function", "function": {"name": "no-params_2", "description": "x"}}],
    "tool_choice": {"type": "function", "function": {"name": "lookup"}},
    "parallel_tool_calls": False,
    "user": "u-1",
    "metadata": {"team": "a"},
}


def test_every_parameter_in_range_is_valid_and_takes_the_fast_path(tmp_path):
    assert validate_file(line_2(tmp_path, **GOOD_PARAMETERS)).ok
    decode, _ = chat_decoder("/v1/chat/completions")
    assert chat_facts(decode(json.dumps(chat_request("b", "hi", **GOOD_PARAMETERS)).encode())) is not None


@pytest.mark.parametrize(
    "extra",
    [
        {"stop": "END", "top_logprobs": 20, "logprobs": True},
        {"response_format": {"type": "json_object"}, "tool_choice": "required", "tools": [TOOL]},
        {"tools": [{"type": "custom", "custom": {"name": "grammar"}}]},
        {"temperature": None, "functions": [{"name": "f"}]},
    ],
)
def test_other_valid_shapes(tmp_path, extra):
    assert validate_file(line_2(tmp_path, **extra)).ok


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"dimensions": 0}, "body.dimensions"),
        ({"dimensions": "256"}, "body.dimensions"),
        ({"encoding_format": "int8"}, "body.encoding_format"),
    ],
)
def test_embedding_parameters(tmp_path, body, param):
    bad = embedding_request("b", "text")
    bad["body"].update(body)
    path = write_lines(tmp_path / "e.jsonl", [embedding_request("a", "text"), bad])
    report = validate_file(path)
    assert [(i.line, i.code, i.param) for i in report.issues] == [(2, "invalid_parameter", param)]
    good = embedding_request("b", "text")
    good["body"].update(dimensions=256, encoding_format="base64")
    assert validate_file(write_lines(tmp_path / "e.jsonl", [good])).ok


@pytest.mark.parametrize(
    ("url", "body", "param"),
    [
        ("/v1/completions", {"prompt": "Say hi", "logprobs": True}, "body.logprobs"),  # 0-5 there
        ("/v1/completions", {"prompt": "Say hi", "n": 0}, "body.n"),
        ("/v1/responses", {"input": "Say hi", "max_output_tokens": -1}, "body.max_output_tokens"),
        ("/v1/responses", {"input": "Say hi", "temperature": 3}, "body.temperature"),
    ],
)
def test_other_endpoints_have_their_own_parameters(tmp_path, url, body, param):
    line = {"custom_id": "a", "method": "POST", "url": url, "body": {"model": "gpt-4o-mini", **body}}
    report = validate_file(write_lines(tmp_path / "r.jsonl", [line]))
    assert [(i.line, i.code, i.param) for i in report.issues] == [(1, "invalid_parameter", param)]
    line["body"].pop(param.split(".")[1])
    assert validate_file(write_lines(tmp_path / "r.jsonl", [line])).ok


def test_the_typed_body_declares_each_bound_with_its_range_and_number_kind():
    """The fast path's field types are written out (a type checker reads them), so each must still be the
    range ``BOUNDS`` gives and a whole number exactly for ``INTEGERS``."""
    from langbatch_core.requests.chat_body import BOUNDS, INTEGERS, ChatBody

    fields = {field.name: field.type for field in msgspec.inspect.type_info(ChatBody).fields}
    declared = [name for name in BOUNDS if name in fields]
    assert len(declared) == 8  # top_logprobs is checked by the detailed rules only
    for name in declared:
        number, none = fields[name].types
        assert isinstance(none, msgspec.inspect.NoneType), name
        kind = msgspec.inspect.IntType if name in INTEGERS else msgspec.inspect.FloatType
        assert isinstance(number, kind), name
        assert (number.ge, number.le) == BOUNDS[name], name
