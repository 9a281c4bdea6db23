"""Checking chat bodies for the bundled model: what it accepts, refuses, and how it says so."""

from __future__ import annotations

import pytest

from langbatch_core.errors import InvalidRequestsError
from langbatch_core.local.model.chat_request import InvalidBodyError, parse_chat_request


def body(**fields):
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], **fields}


def refusal(request) -> InvalidBodyError:
    with pytest.raises(InvalidBodyError) as caught:
        parse_chat_request(request)
    return caught.value


def test_a_minimal_body_gets_openai_defaults():
    request = parse_chat_request(body())
    assert request.model == "gpt-4o-mini"
    assert request.messages == [{"role": "user", "content": "Hi"}]
    assert (request.n, request.max_tokens, request.temperature, request.top_p) == (1, None, 1.0, 1.0)
    assert request.stop == () and request.seed is None


def test_generation_parameters_are_read():
    request = parse_chat_request(
        body(n=2, max_tokens=30, temperature=0, top_p=0.5, seed=7, stop="\n", frequency_penalty=0.5)
    )
    assert (request.n, request.max_tokens, request.temperature, request.top_p) == (2, 30, 0.0, 0.5)
    assert (request.seed, request.stop, request.frequency_penalty) == (7, ("\n",), 0.5)


def test_max_completion_tokens_wins_over_the_older_max_tokens():
    assert parse_chat_request(body(max_tokens=50, max_completion_tokens=5)).max_tokens == 5


def test_developer_messages_and_text_parts_become_plain_system_and_text():
    request = parse_chat_request(
        body(
            messages=[
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "you"}],
                },
            ]
        )
    )
    assert request.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello you"},
    ]


def test_harmless_parameters_are_accepted_and_ignored():
    request = parse_chat_request(body(user="u1", store=False, metadata={"a": "b"}, stream=False))
    assert request.messages[0]["content"] == "Hi"


@pytest.mark.parametrize(
    ("request_body", "param", "code"),
    [
        ({"messages": [{"role": "user", "content": "Hi"}]}, "model", "missing_required_parameter"),
        ({"model": "m"}, "messages", "missing_required_parameter"),
        (body(messages=[]), "messages", "invalid_type"),
        (body(messages=[{"role": "robot", "content": "x"}]), "messages[0].role", "invalid_value"),
        (body(messages=[{"role": "user", "content": 3}]), "messages[0].content", "invalid_type"),
        (
            body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
            "messages[0].content[0]",
            "invalid_value",
        ),
        (body(temperature=3), "temperature", "invalid_value"),
        (body(temperature="hot"), "temperature", "invalid_type"),
        (body(max_tokens=0), "max_tokens", "invalid_value"),
        (body(max_tokens=True), "max_tokens", "invalid_type"),
        (body(n=100), "n", "invalid_value"),
        (body(stop=["a", "b", "c", "d", "e"]), "stop", "invalid_value"),
        (body(logit_bias={"abc": 1}), "logit_bias.abc", "invalid_value"),
        (body(stream=True), "stream", "unsupported_parameter"),
        (body(logprobs=True), "logprobs", "unsupported_parameter"),
        (body(tools=[{"type": "function", "function": {"name": "f"}}]), "tools", "unsupported_parameter"),
        (body(response_format={"type": "xml"}), "response_format.type", "invalid_value"),
        (body(response_format={"type": "json_object"}), "messages", "invalid_value"),  # no word 'json'
        (
            body(response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": {"not": 1}}}),
            "response_format.json_schema.schema",
            "invalid_value",
        ),
        (body(temprature=0), "temprature", "unknown_parameter"),
    ],
)
def test_bad_bodies_are_refused_naming_the_parameter(request_body, param, code):
    error = refusal(request_body)
    assert (error.param, error.code) == (param, code)
    assert param.split(".")[0].split("[")[0] in str(error)


def test_refusals_belong_to_the_langbatch_error_tree():
    assert isinstance(refusal(["not", "an", "object"]), InvalidRequestsError)
