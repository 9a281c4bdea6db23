"""Validation of request files: every rule, the official examples, unusual-but-valid files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from support.data_requests import chat_request, embedding_request, write_lines
from support.fixtures import EXAMPLES

from langbatch_core import jsonl
from langbatch_core.errors import InvalidRequestsError
from langbatch_core.requests import ENDPOINTS, Issue, Limits, validate_file


def good(index: int = 1, **body) -> dict:
    return chat_request(f"request-{index}", f"Question {index}?", max_tokens=48, **body)


def codes(report) -> list[tuple[int | None, str]]:
    return [(issue.line, issue.code) for issue in report.issues if issue.severity == "error"]


def with_line_2(tmp_path: Path, bad) -> Path:
    """A three-request chat file whose second line is ``bad`` (a dict or a raw string)."""
    return write_lines(tmp_path / "requests.jsonl", [good(1), bad, good(3)])


def mutate(change) -> dict:
    request = copy.deepcopy(good(2))
    change(request)
    return request


@pytest.mark.parametrize("name", ["input_chat.jsonl", "input_chat_spec.jsonl", "input_embeddings.jsonl"])
def test_official_examples_are_valid(name):
    report = validate_file(EXAMPLES / name)
    assert report.ok, report.issues
    assert report.endpoint in ENDPOINTS
    assert report.request_count == len(EXAMPLES.joinpath(name).read_text().splitlines())
    assert report.model and report.models == [report.model]
    assert report.jobs[0].request_count == report.request_count


def test_official_chat_example_figures():
    report = validate_file(EXAMPLES / "input_chat.jsonl")
    assert (report.endpoint, report.model) == ("/v1/chat/completions", "gpt-3.5-turbo-0125")
    assert report.max_output_tokens == 2000  # two requests with max_tokens 1000
    # OpenAI counted 20 and 22 prompt tokens for these two requests
    assert 30 <= report.input_tokens <= 55
    assert report.estimated_cost_usd is not None and report.estimated_cost_usd > 0


BAD_LINES = [
    ("not_object", "[1, 2]", None),
    ("not_object", '"just a string"', None),
    ("invalid_json", '{"custom_id": "request-2", "method": "POST"', None),
    ("missing_custom_id", mutate(lambda r: r.pop("custom_id")), "custom_id"),
    ("empty_custom_id", mutate(lambda r: r.update(custom_id="")), "custom_id"),
    ("invalid_custom_id", mutate(lambda r: r.update(custom_id=2)), "custom_id"),
    ("invalid_method", mutate(lambda r: r.update(method="GET")), "method"),
    ("invalid_method", mutate(lambda r: r.pop("method")), "method"),
    ("missing_url", mutate(lambda r: r.pop("url")), "url"),
    ("unsupported_url", mutate(lambda r: r.update(url="/v1/images/generations")), "url"),
    ("mismatched_url", embedding_request("request-2", "text", model="gpt-4o-mini"), "url"),
    ("invalid_body", mutate(lambda r: r.update(body="hello")), "body"),
    ("invalid_body", mutate(lambda r: r.pop("body")), "body"),
    ("missing_model", mutate(lambda r: r["body"].pop("model")), "body.model"),
    ("missing_model", mutate(lambda r: r["body"].update(model="")), "body.model"),
    ("stream_not_supported", mutate(lambda r: r["body"].update(stream=True)), "body.stream"),
    ("invalid_messages", mutate(lambda r: r["body"].update(messages=[])), "body.messages"),
    ("invalid_messages", mutate(lambda r: r["body"].update(messages="hi")), "body.messages"),
    ("invalid_messages", mutate(lambda r: r["body"].pop("messages")), "body.messages"),
    ("invalid_message", mutate(lambda r: r["body"]["messages"].append("hi")), "body.messages[2]"),
    ("invalid_role", mutate(lambda r: r["body"]["messages"][1].update(role="bot")), "body.messages[1].role"),
    ("invalid_role", mutate(lambda r: r["body"]["messages"][1].pop("role")), "body.messages[1].role"),
    (
        "invalid_content",
        mutate(lambda r: r["body"]["messages"][1].update(content=5)),
        "body.messages[1].content",
    ),
    (
        "invalid_content",
        mutate(lambda r: r["body"]["messages"][1].pop("content")),
        "body.messages[1].content",
    ),
    (
        "invalid_content",
        mutate(lambda r: r["body"]["messages"][1].update(content=[])),
        "body.messages[1].content",
    ),
    (
        "invalid_content",
        mutate(lambda r: r["body"]["messages"][1].update(content=[{"type": "video", "video": {}}])),
        "body.messages[1].content[0].type",
    ),
    (
        "invalid_content",
        mutate(lambda r: r["body"]["messages"][1].update(content=[{"text": "no type"}])),
        "body.messages[1].content[0].type",
    ),
    (
        "invalid_content",
        mutate(lambda r: r["body"]["messages"][1].update(content=[{"type": "text", "text": 3}])),
        "body.messages[1].content[0].text",
    ),
    (
        "invalid_content",  # images only in user messages
        mutate(
            lambda r: r["body"]["messages"][0].update(
                content=[{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
            )
        ),
        "body.messages[0].content[0].type",
    ),
    (
        "invalid_content",  # assistant without content needs tool_calls
        mutate(lambda r: r["body"]["messages"].append({"role": "assistant", "content": None})),
        "body.messages[2].content",
    ),
    (
        "missing_tool_call_id",
        mutate(lambda r: r["body"]["messages"].append({"role": "tool", "content": "42"})),
        "body.messages[2].tool_call_id",
    ),
    ("unknown_field", mutate(lambda r: r.update(model="gpt-4o-mini")), "model"),
]


@pytest.mark.parametrize(
    ("code", "bad", "param"), BAD_LINES, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(BAD_LINES)]
)
def test_each_rule_names_line_code_and_param(tmp_path, code, bad, param):
    report = validate_file(with_line_2(tmp_path, bad))
    assert not report.ok
    found = [issue for issue in report.issues if issue.severity == "error"]
    assert [(issue.line, issue.code) for issue in found] == [(2, code)], found
    assert found[0].param == param
    assert found[0].message  # says what to do
    assert report.request_count == 3


@pytest.mark.parametrize(
    ("code", "body_input"),
    [
        ("invalid_input", ""),
        ("invalid_input", []),
        ("invalid_input", 5),
        ("invalid_input", ["a", 1]),
        ("invalid_input", [""]),
    ],
)
def test_embedding_input_rules(tmp_path, code, body_input):
    lines = [embedding_request("e-1", "fine"), embedding_request("e-2", body_input)]
    report = validate_file(write_lines(tmp_path / "emb.jsonl", lines))
    assert codes(report) == [(2, code)]
    assert report.issues[0].param == "body.input"


def test_embedding_inputs_counted(tmp_path):
    lines = [
        embedding_request("e-1", "one"),
        embedding_request("e-2", ["a", "b", "c"]),
        embedding_request("e-3", [1, 2]),
    ]
    report = validate_file(write_lines(tmp_path / "emb.jsonl", lines))
    assert report.ok and report.embedding_inputs == 5
    assert report.endpoint == "/v1/embeddings"


def test_one_line_can_have_several_problems(tmp_path):
    bad = {
        "method": "GET",
        "url": "/v1/chat/completions",
        "body": {"messages": [{"role": "bot", "content": "x"}]},
    }
    report = validate_file(with_line_2(tmp_path, bad))
    assert sorted(code for line, code in codes(report)) == [
        "invalid_method",
        "invalid_role",
        "missing_custom_id",
        "missing_model",
    ]


def test_duplicate_custom_id_names_both_lines(tmp_path):
    path = write_lines(tmp_path / "r.jsonl", [good(1), good(2), good(1)])
    report = validate_file(path)
    assert codes(report) == [(3, "duplicate_custom_id")]
    assert "lines 1 and 3" in report.issues[0].message


def test_several_models_in_one_file(tmp_path):
    lines = [good(1), good(2), good(3)]
    lines[1]["body"]["model"] = lines[2]["body"]["model"] = "gpt-4o"
    report = validate_file(write_lines(tmp_path / "r.jsonl", lines))
    assert codes(report) == [(2, "multiple_models")]
    assert report.models == ["gpt-4o-mini", "gpt-4o"]
    assert report.estimated_cost_usd is None


def test_explicit_endpoint_mismatch(tmp_path):
    path = write_lines(tmp_path / "r.jsonl", [good(1), good(2)])
    report = validate_file(path, endpoint="/v1/embeddings")
    assert codes(report) == [(1, "mismatched_url"), (2, "mismatched_url")]


def test_unknown_endpoint_argument_is_refused(tmp_path):
    with pytest.raises(InvalidRequestsError, match="not a batch endpoint"):
        validate_file(write_lines(tmp_path / "r.jsonl", [good(1)]), endpoint="/v1/nothing")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidRequestsError, match="Cannot read the request file"):
        validate_file(tmp_path / "nope.jsonl")


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    report = validate_file(path)
    assert codes(report) == [(None, "empty_file")]
    path.write_bytes(b"\n\n  \n")
    assert (None, "empty_file") in codes(validate_file(path))


def test_not_utf8_anywhere_on_the_line(tmp_path):
    raw = json.dumps(good(2)).encode()
    in_prompt = raw.replace(b"Question 2?", b"Question \xff?")
    in_unknown_body_field = raw[:-2] + b', "metadata": "caf\xe9"}}'
    path = tmp_path / "latin1.jsonl"
    first, third = (json.dumps(good(i)).encode() for i in (1, 3))
    path.write_bytes(
        b"\n".join([first, in_prompt, third, in_unknown_body_field.replace(b"request-2", b"r-4")]) + b"\n"
    )
    report = validate_file(path)
    assert codes(report) == [(2, "not_utf8"), (4, "not_utf8")]


def test_bom_crlf_and_blank_lines_are_warnings(tmp_path):
    path = write_lines(tmp_path / "win.jsonl", [good(1), "", good(2), good(3)], newline="\r\n", bom=True)
    report = validate_file(path)
    assert report.ok
    assert report.request_count == 3
    warnings = {(issue.line, issue.code) for issue in report.warnings}
    assert warnings == {(1, "bom"), (1, "crlf"), (2, "blank_line")}
    assert report.warning_count == 3


def test_unusual_but_valid_requests(tmp_path):
    big = "word " * 40_000  # a 200 KB prompt
    multimodal = good(2)
    multimodal["body"]["messages"][1]["content"] = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    ]
    tools = good(3, tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])
    tools["body"]["messages"] += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
    ]
    schema = good(4, response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}})
    unicode = chat_request("request-5", "Grüße, 日本語, emoji 🎉, RTL שלום", max_tokens=48)
    lines = [
        good(1),
        multimodal,
        tools,
        schema,
        unicode,
        chat_request("request-6", big, max_completion_tokens=10),
    ]
    path = tmp_path / "unusual.jsonl"
    path.write_text(
        "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n", encoding="utf-8"
    )
    report = validate_file(path)
    assert report.ok, report.issues
    assert report.request_count == 6
    assert report.input_tokens > 40_000  # the big prompt counts
    assert report.max_output_tokens == 5 * 48 + 10


def test_issue_list_is_capped_but_counts_are_total(tmp_path):
    lines = [mutate(lambda r: r.update(method="GET")) | {"custom_id": f"r-{i}"} for i in range(30)]
    report = validate_file(write_lines(tmp_path / "r.jsonl", lines), max_issues=10)
    assert report.error_count == 30
    assert len(report.issues) == 10
    assert report.issues[0].line == 1


def test_errors_come_before_warnings(tmp_path):
    path = write_lines(tmp_path / "r.jsonl", ["", good(1), mutate(lambda r: r.pop("url"))])
    report = validate_file(path)
    assert [issue.severity for issue in report.issues] == ["error", "warning"]


def test_raise_for_errors_carries_issues_and_report(tmp_path):
    report = validate_file(with_line_2(tmp_path, mutate(lambda r: r["body"].pop("model"))))
    with pytest.raises(InvalidRequestsError) as caught:
        report.raise_for_errors()
    assert "line 2: missing_model" in str(caught.value)
    assert caught.value.report is report
    assert [issue.code for issue in caught.value.issues] == ["missing_model"]
    assert isinstance(caught.value.issues[0], Issue)


def test_valid_report_does_not_raise_and_serialises(tmp_path):
    report = validate_file(write_lines(tmp_path / "r.jsonl", [good(1), good(2)]))
    report.raise_for_errors()
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True and data["request_count"] == 2 and data["jobs"][0]["last_line"] == 2
    assert data["token_method"]


def test_requests_without_a_ceiling_are_counted(tmp_path):
    bare = chat_request("r-2", "no limit")
    report = validate_file(write_lines(tmp_path / "r.jsonl", [good(1), bare]))
    assert report.max_output_tokens == 48
    assert report.requests_without_max_tokens == 1


def test_n_multiplies_the_output_ceiling(tmp_path):
    report = validate_file(write_lines(tmp_path / "r.jsonl", [good(1, n=3)]))
    assert report.max_output_tokens == 3 * 48


@pytest.mark.parametrize(
    ("code", "bad", "param"), BAD_LINES, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(BAD_LINES)]
)
def test_fast_path_never_accepts_a_bad_line(code, bad, param):
    """The typed decoder + chat_facts must refuse every bad line, or validation would miss it."""
    import msgspec

    from langbatch_core.requests.fast import chat_decoder, chat_facts

    decode, decode_lines = chat_decoder("/v1/chat/completions")
    raw = (bad if isinstance(bad, str) else json.dumps(bad)).encode()
    try:
        facts = chat_facts(decode(raw))
    except (msgspec.DecodeError, msgspec.ValidationError):
        facts = None
    assert facts is None
    try:
        results = decode_lines(raw + b"\n" + json.dumps(good(9)).encode())
    except (msgspec.DecodeError, msgspec.ValidationError):
        results = None
    assert results is None or chat_facts(results[0]) is None


def test_a_line_nested_too_deeply_to_parse_is_reported_on_its_line(tmp_path):
    path = tmp_path / "deep.jsonl"
    good = json.dumps(chat_request("a", "hello"))
    path.write_text(good + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    report = validate_file(path)
    assert [(i.line, i.code) for i in report.issues if i.severity == "error"] == [(2, "invalid_json")]


def messy_file(path: Path, count: int = 120) -> Path:
    """Valid requests with problems spread through the file: bad JSON, bad UTF-8, duplicates (near and far),
    a second model, a late unknown key, CRLF lines, blank lines, non-ASCII, a line longer than a block."""
    lines = [
        json.dumps(chat_request(f"r-{i}", f"prompt {i} " + "x" * 150, max_tokens=8)).encode()
        for i in range(count)
    ]
    lines[5] = b"{not json"
    lines[count - 10] = b"{also not json"
    lines[count - 20] = json.dumps(chat_request("r-3", "same id as line 4, far later")).encode()
    lines[count - 19] = json.dumps(chat_request("r-100", "same id as a later line")).encode()
    lines[count - 30] = json.dumps(chat_request("r-x", "other model", model="gpt-4o")).encode()
    late = chat_request("r-late", "late key")
    late["metadata"] = {"a": 1}
    lines[count - 5] = json.dumps(late).encode()
    lines[count - 7] = lines[count - 7].replace(b"prompt", b"\xff\xfeprompt")
    lines[count - 15] = json.dumps(chat_request("r-u", "Привет, 東京 — café"), ensure_ascii=False).encode()
    lines[count - 45] = json.dumps(chat_request("r-long", "y" * 6000)).encode()
    lines[count - 40] += b"\r"
    lines[count - 41] += b"\r"
    lines.insert(count - 50, b"")
    lines.insert(10, b"   ")
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"token_sample": 150}, {"limits": Limits(max_requests=7, max_bytes=9_000)}],
)
def test_the_report_does_not_depend_on_where_blocks_end(tmp_path, monkeypatch, kwargs):
    source = messy_file(tmp_path / "messy.jsonl")
    whole = validate_file(source, **kwargs).to_dict()  # one block
    monkeypatch.setattr(jsonl, "BLOCK_SIZE", 2048)  # dozens, and a line longer than one
    blocks = validate_file(source, **kwargs).to_dict()

    def by_line(report: dict) -> dict:  # issues of one block are listed by kind, then by line
        return {**report, "issues": sorted(report["issues"], key=lambda i: (i["line"] or 0, i["code"]))}

    assert by_line(blocks) == by_line(whole)
    found = {(issue.line, issue.code) for issue in validate_file(source).issues}
    assert {(103, "duplicate_custom_id"), (93, "multiple_models"), (1, "bom"), (6, "invalid_json")} <= found
    assert {"not_utf8", "crlf", "blank_line"} <= {code for _, code in found}


def test_a_tool_repeated_on_every_line_is_checked_on_every_line(tmp_path):
    """The check of a tool's parameters is remembered by their text: a bad one is still found on each line."""
    fine = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    bad_text = '{"type": "object", "default": 1e999}'  # msgspec skips it; the providers refuse it
    bad_tool = '[{"type": "function", "function": {"name": "f", "parameters": ' + bad_text + "}}]"
    bad = json.dumps(good(0)).replace('"max_tokens"', f'"tools": {bad_tool}, "max_tokens"')
    lines = [good(1, tools=fine), bad.replace("request-0", "request-2"), good(3, tools=fine)]
    lines += [bad.replace("request-0", "request-4"), good(5, tools=fine)]
    report = validate_file(write_lines(tmp_path / "requests.jsonl", lines))
    assert [line for line, _ in codes(report)] == [2, 4]
