"""Request files that tried to break validation: JSON only lenient readers take, values nested or sized to
crash a reader, files that are no files, lines that never end. Each is an issue on its line, or a clear
InvalidRequestsError; never a traceback, never "valid" for what the engine then refuses."""

from __future__ import annotations

import json
import os
import threading
import tracemalloc

import pytest
from click.testing import CliRunner
from support.data_requests import chat_request, write_lines
from test_engine import CHAT, chat_line, wait

from langbatch_core.cli import cli
from langbatch_core.errors import InvalidRequestsError
from langbatch_core.requests import read_json, validate_file

GOOD = json.dumps(chat_request("a", "hello"))


def errors(report) -> list[tuple[int | None, str]]:
    return [(issue.line, issue.code) for issue in report.issues if issue.severity == "error"]


def line_with(value: str, where: str = "x") -> str:
    """A chat request line (custom_id "b") whose body carries ``value`` (raw JSON text) at ``where``."""
    body = {
        "x": '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "x": %s}',
        "temperature": '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], '
        '"temperature": %s}',
        "content": '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [{"type": "text", '
        '"text": "hi"}, {"type": "file", "file": {"file_data": %s}}]}]}',
        "tool": '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "tools": '
        '[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "default": %s}}}]}',
    }[where].replace("%s", value)
    return '{"custom_id": "b", "method": "POST", "url": "/v1/chat/completions", "body": ' + body + "}"


NOT_JSON_FOR_PROVIDERS = ["NaN", "Infinity", "-Infinity", "1e999", '"\\ud800"', "1" * 5000, "9" * 400]


@pytest.mark.parametrize("where", ["x", "temperature", "content", "tool"])
@pytest.mark.parametrize("value", NOT_JSON_FOR_PROVIDERS, ids=lambda v: v[:12])
def test_json_the_providers_refuse_is_invalid_json_on_its_line(tmp_path, value, where):
    line = line_with(value, where)
    with pytest.raises(ValueError):  # what the engine and OpenAI read with
        read_json(line)
    report = validate_file(write_lines(tmp_path / "r.jsonl", [GOOD, line, GOOD.replace('"a"', '"c"')]))
    assert errors(report) == [(2, "invalid_json")]


def test_the_invalid_json_message_names_the_culprit(tmp_path):
    report = validate_file(write_lines(tmp_path / "r.jsonl", [GOOD, line_with("NaN")]))
    assert "NaN and Infinity are not JSON" in report.issues[0].message
    report = validate_file(write_lines(tmp_path / "r.jsonl", [GOOD, line_with("1e999")]))
    assert "beyond what JSON readers hold" in report.issues[0].message


@pytest.mark.parametrize("depth", [1100, 100_000])
def test_a_body_nested_too_deeply_is_an_issue_on_its_line(tmp_path, depth):
    line = line_with("[" * depth + "]" * depth)
    report = validate_file(write_lines(tmp_path / "r.jsonl", [GOOD, line, GOOD.replace('"a"', '"c"')]))
    assert errors(report) == [(2, "invalid_json")]
    assert "1,024 levels" in report.issues[0].message


def test_deep_values_a_reader_takes_do_not_crash_the_rules(tmp_path):
    deep = "[" * 1000 + "]" * 1000  # read_json takes 1,024 levels; repr() and json.dumps do not
    lines = [
        GOOD,
        GOOD.replace('"method": "POST"', f'"method": {deep}').replace('"a"', '"b"'),
        line_with(deep, "tool").replace('"custom_id": "b"', '"custom_id": "c"'),
    ]
    report = validate_file(write_lines(tmp_path / "r.jsonl", lines), token_sample=5)
    assert (2, "invalid_method") in errors(report)


def test_a_request_file_the_engine_reads_as_invalid_fails_validation_not_the_run(openai_client):
    """The engine reads lines with read_json too: a NaN is reported as the validator reports it."""
    lines = [chat_line("a", "fine"), line_with("NaN")]
    file = openai_client.files.create(file=("r.jsonl", ("\n".join(lines) + "\n").encode()), purpose="batch")
    created = openai_client.batches.create(input_file_id=file.id, endpoint=CHAT, completion_window="24h")
    batch = wait(openai_client, created.id)
    assert batch.status == "failed"
    assert [(e.line, e.code) for e in batch.errors.data] == [(2, "invalid_json")]


# ---------------------------------------------------------------------------------- not a regular file


def test_a_device_is_refused_by_name():
    with pytest.raises(InvalidRequestsError, match=r"/dev/zero is not a regular file \(it is a character"):
        validate_file("/dev/zero")


def test_a_directory_is_refused_by_name(tmp_path):
    with pytest.raises(InvalidRequestsError, match="not a regular file"):
        validate_file(tmp_path)


@pytest.mark.timeout(10)
def test_a_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "requests.jsonl"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(outcome, fifo), daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():  # unblock the reader before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("validate_file waited on a pipe")
    assert len(outcome) == 1 and isinstance(outcome[0], InvalidRequestsError)
    assert "it is a pipe" in str(outcome[0])


def _capture(outcome: list[BaseException], path) -> None:
    try:
        validate_file(path)
    except BaseException as exc:  # the test inspects it
        outcome.append(exc)


def test_the_cli_says_what_is_wrong_without_a_traceback():
    result = CliRunner().invoke(cli, ["validate", "/dev/zero"])
    assert result.exit_code != 0
    assert "not a regular file" in result.output and "Traceback" not in result.output


# ---------------------------------------------------------------------------------- lines that never end


def test_a_line_over_the_cap_is_an_issue_and_the_rest_is_read(tmp_path):
    big = json.dumps(chat_request("b", "y" * 5000))
    path = write_lines(tmp_path / "r.jsonl", [GOOD, big, GOOD.replace('"a"', '"c"')])
    report = validate_file(path, max_line_bytes=2000)
    assert errors(report) == [(2, "line_too_long")]
    message = report.issues[0].message
    assert message.startswith(f"The line is {len(big) + 1:,} bytes long, more than the 2,000")
    assert report.request_count == 2
    assert validate_file(path, max_line_bytes=len(big)).ok  # the cap itself is allowed


def test_a_file_without_newline_is_read_in_bounded_memory(tmp_path):
    path = tmp_path / "one-line.jsonl"
    with path.open("wb") as handle:
        for _ in range(48):
            handle.write(b"x" * (1 << 16))  # 3 MB, no LF
    tracemalloc.start()
    try:
        report = validate_file(path, max_line_bytes=64 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert errors(report) == [(1, "line_too_long"), (None, "empty_file")]
    assert peak < 1_000_000  # a buffer the size of the cap, not the file


def test_the_default_cap_is_far_above_real_requests(tmp_path):
    from langbatch_core.requests import MAX_LINE_BYTES

    assert MAX_LINE_BYTES >= 20 * 1024 * 1024  # a request may carry a 20 MB image as a data URL
