"""Reading, classifying and flattening result files."""

from __future__ import annotations

import base64
import json

import pandas as pd
import pytest
from support.data_requests import chat_request, embedding_request, write_lines
from support.data_results import (
    embedding_result,
    never_run,
    rejected,
    success,
    write_jsonl,
    write_results_file,
)
from support.fixtures import EXAMPLES

from langbatch_core.errors import ResultsError
from langbatch_core.results import classify, iter_results, load_results, read_result_line

COLUMNS = [
    "custom_id",
    "status",
    "status_code",
    "error_code",
    "error_message",
    "model",
    "finish_reason",
    "answer",
    "refusal",
    "tool_calls",
    "embedding_dim",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "line",
]


def test_classify_every_outcome():
    assert classify(success("a")) == "succeeded"
    assert classify(rejected("a", 400)) == "failed"
    assert classify(rejected("a", 500)) == "failed"
    assert classify(never_run("a", "batch_expired")) == "expired"
    assert classify(never_run("a", "batch_cancelled")) == "cancelled"
    assert classify(never_run("a", "server_error")) == "failed"
    assert classify({"custom_id": "a", "response": None, "error": None}) == "failed"


def test_official_success_examples():
    table = load_results(EXAMPLES / "output_success.jsonl")
    assert list(table.columns) == COLUMNS
    assert list(table["custom_id"]) == ["request-2", "request-1"]  # file order, any order is fine
    first = table.iloc[1]
    assert first["status"] == "succeeded" and first["status_code"] == 200
    assert first["answer"] == "Hello! How can I assist you today?"
    assert (first["prompt_tokens"], first["completion_tokens"], first["total_tokens"]) == (20, 9, 29)
    assert first["finish_reason"] == "stop" and first["model"] == "gpt-3.5-turbo-0125"
    assert list(table["line"]) == [1, 2]


def test_official_error_examples():
    table = load_results(EXAMPLES / "output_errors.jsonl")
    assert list(table["status"]) == ["failed", "expired", "expired"]
    rejected_row = table.iloc[0]
    assert rejected_row["status_code"] == 400
    assert rejected_row["error_message"] == "Unrecognized request argument supplied: max_tokenz"
    assert rejected_row["error_code"] == "invalid_request_error"  # code is null: the type stands in
    assert table.iloc[1]["error_code"] == "batch_expired"
    assert "completion window" in table.iloc[1]["error_message"]


def test_official_embedding_and_spec_examples():
    embeddings = load_results(EXAMPLES / "output_success_embeddings.jsonl")
    assert embeddings.iloc[0]["embedding_dim"] == 3 and embeddings.iloc[0]["prompt_tokens"] == 8
    spec = load_results(EXAMPLES / "output_success_spec.jsonl")
    assert spec.iloc[0]["answer"] == "2 + 2 equals 4."


def test_official_files_with_requests_account_for_every_request():
    paths = [EXAMPLES / "output_success.jsonl", EXAMPLES / "output_errors.jsonl"]
    table = load_results(paths, requests=EXAMPLES / "input_chat.jsonl")
    assert list(table["custom_id"]) == ["request-2", "request-1", "request-4", "request-3", "request-7"]
    assert list(table["prompt"][:2]) == ["Hello world!", "Hello world!"]
    assert table["prompt"][2:].isna().all()
    assert table.attrs["unknown_count"] == 3  # request-3, -4, -7 are not in input_chat.jsonl
    assert table.attrs["unknown_custom_ids"] == ["request-4", "request-3", "request-7"]


def test_mixed_file_every_line_accounted(tmp_path):
    path = write_results_file(tmp_path / "out.jsonl", 600, answer_chars=50)
    table = load_results(path)
    assert len(table) == 600
    counts = table["status"].value_counts().to_dict()
    # every 199th cancelled, every 97th expired, every 50th rejected (see mixed_result)
    assert counts == {"succeeded": 579, "failed": 12, "expired": 6, "cancelled": 3}
    assert sorted(table["line"]) == list(range(1, 601))


def test_missing_rows_and_prompts_from_requests(tmp_path):
    requests = write_lines(
        tmp_path / "requests.jsonl",
        [chat_request("a", "first?"), chat_request("b", "second?"), chat_request("c", "third?")],
    )
    results = write_jsonl(tmp_path / "out.jsonl", [success("c", "three"), rejected("a")])
    table = load_results(results, requests=requests)
    # result-file order, then the requests without result in request order
    assert list(table["custom_id"]) == ["c", "a", "b"]
    assert list(table["status"]) == ["succeeded", "failed", "missing"]
    assert list(table["prompt"]) == ["third?", "first?", "second?"]
    assert table["line"].isna().tolist() == [False, False, True]
    assert table.attrs["unknown_count"] == 0


def test_results_without_any_file_are_all_missing(tmp_path):
    requests = write_lines(tmp_path / "requests.jsonl", [chat_request("a", "x"), chat_request("b", "y")])
    table = load_results([], requests=requests)
    assert list(table["status"]) == ["missing", "missing"]
    assert list(table.columns[:3]) == ["custom_id", "prompt", "status"]


def test_prompt_is_the_last_user_message_or_the_input(tmp_path):
    multi = chat_request("a", "first question")
    multi["body"]["messages"] += [
        {"role": "assistant", "content": "answer"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "follow-up"},
                {"type": "image_url", "image_url": {"url": "x"}},
            ],
        },
    ]
    requests = write_lines(tmp_path / "r.jsonl", [multi, embedding_request("e", ["one", "two"])])
    table = load_results(write_jsonl(tmp_path / "o.jsonl", []), requests=requests)
    assert list(table["prompt"]) == ["follow-up", "one\ntwo"]


def test_unknown_custom_ids_are_kept_and_named(tmp_path):
    requests = write_lines(tmp_path / "r.jsonl", [chat_request("a", "x")])
    results = write_jsonl(tmp_path / "o.jsonl", [success("a"), success("zzz")])
    table = load_results(results, requests=requests)
    assert list(table["custom_id"]) == ["a", "zzz"]
    assert table.attrs["unknown_custom_ids"] == ["zzz"]


def test_garbled_lines_are_named_not_dropped_silently(tmp_path):
    results = write_jsonl(tmp_path / "o.jsonl", [success("a"), "{not json", "[1, 2]", success("b")])
    table = load_results(results)
    assert list(table["custom_id"]) == ["a", "b"]
    assert table.attrs["garbled_count"] == 2
    assert table.attrs["garbled_lines"] == [(str(results), 2), (str(results), 3)]


def test_iter_results_yields_good_lines_then_names_garbled_ones(tmp_path):
    results = write_jsonl(tmp_path / "o.jsonl", [success("a"), "garbage", success("b"), "", "7"])
    seen = []
    with pytest.raises(ResultsError, match=r"lines 2, 5"):
        for line, result in iter_results(results):
            seen.append((line, result["custom_id"]))
    assert seen == [(1, "a"), (3, "b")]


def test_missing_result_file_is_a_results_error(tmp_path):
    with pytest.raises(ResultsError, match="Cannot read the result file"):
        load_results(tmp_path / "nope.jsonl")


def test_fields_that_first_appear_late_are_kept(tmp_path):
    lines = [success(f"r-{i}", f"answer {i}") for i in range(25_000)]
    calls = [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    lines.append(
        success(
            "late",
            None,
            refusal="I can't help with that.",
            tool_calls=calls,
            finish_reason="tool_calls",
            usage={
                "prompt_tokens": 10,
                "completion_tokens": 2,
                "total_tokens": 12,
                "prompt_tokens_details": {"cached_tokens": 7},
                "completion_tokens_details": {"reasoning_tokens": 64},
            },
        )
    )
    lines.append(embedding_result("late-embedding", dim=12))
    lines.append(never_run("late-expired"))
    table = load_results(write_jsonl(tmp_path / "o.jsonl", lines)).set_index("custom_id")
    late = table.loc["late"]
    assert late["refusal"] == "I can't help with that."
    assert json.loads(late["tool_calls"]) == calls
    assert (late["cached_tokens"], late["reasoning_tokens"], late["finish_reason"]) == (7, 64, "tool_calls")
    assert table.loc["late-embedding", "embedding_dim"] == 12
    assert table.loc["late-expired", "error_code"] == "batch_expired"
    assert table["cached_tokens"].notna().sum() == 1


def test_unusual_result_shapes(tmp_path):
    parts = success("parts", None)
    parts["response"]["body"]["choices"][0]["message"]["content"] = [{"type": "text", "text": "in parts"}]
    text_error = rejected("plain-error")
    text_error["response"]["body"] = "Bad gateway"
    base64_embedding = embedding_result("b64")
    base64_embedding["response"]["body"]["data"][0]["embedding"] = base64.b64encode(bytes(16)).decode()
    responses_api = {
        "custom_id": "resp",
        "response": {
            "status_code": 200,
            "body": {
                "model": "gpt-4o-mini",
                "status": "completed",
                "output": [
                    {"type": "message", "content": [{"type": "output_text", "text": "via responses"}]}
                ],
                "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8},
            },
        },
        "error": None,
    }
    completions = success("legacy", None)
    completions["response"]["body"]["choices"] = [
        {"index": 0, "text": "completed text", "finish_reason": "length"}
    ]
    rows = [parts, text_error, base64_embedding, responses_api, completions]
    table = load_results(write_jsonl(tmp_path / "o.jsonl", rows)).set_index("custom_id")
    assert table.loc["parts", "answer"] == "in parts"
    assert table.loc["plain-error", "status"] == "failed" and table.loc["plain-error", "status_code"] == 400
    assert table.loc["b64", "embedding_dim"] == 4
    assert table.loc["resp", "answer"] == "via responses"
    assert (table.loc["resp", "prompt_tokens"], table.loc["resp", "completion_tokens"]) == (5, 3)
    assert table.loc["legacy", "answer"] == "completed text"
    assert table.loc["legacy", "finish_reason"] == "length"


def test_filtering_and_sorting_work_on_the_table(tmp_path):
    table = load_results(write_results_file(tmp_path / "o.jsonl", 300, answer_chars=40))
    failed = table[table["status"] != "succeeded"]
    assert len(failed) and failed["error_code"].notna().all()
    ordered = table.sort_values("completion_tokens", ascending=False)
    assert ordered["completion_tokens"].iloc[0] == table["completion_tokens"].max()
    assert (
        table["answer"].str.contains("That is all", na=False).sum() == (table["status"] == "succeeded").sum()
    )


def test_read_result_line_gives_the_full_json(tmp_path):
    results = write_jsonl(tmp_path / "o.jsonl", [success("a"), success("b", "bee")])
    table = load_results(results)
    row = table[table["custom_id"] == "b"].iloc[0]
    assert read_result_line(results, int(row["line"]))["custom_id"] == "b"
    with pytest.raises(ResultsError):
        read_result_line(results, 9)


def test_line_numbers_survive_blank_lines_bom_crlf_and_small_blocks(tmp_path, monkeypatch):
    from langbatch_core.results import lines as module

    monkeypatch.setattr(module, "BLOCK_SIZE", 700)  # several blocks, and lines longer than one block
    lines = [json.dumps(success(f"r-{i}", "x" * (50 if i % 3 else 2000))) for i in range(1, 9)]
    text = "\r\n".join([lines[0], "", *lines[1:4], "   ", *lines[4:]])  # no LF after the last line
    path = tmp_path / "o.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    table = load_results(path)
    assert list(table["custom_id"]) == [f"r-{i}" for i in range(1, 9)]
    assert list(table["line"]) == [1, 3, 4, 5, 7, 8, 9, 10]
    assert table["answer"].str.len().tolist() == [50 if i % 3 else 2000 for i in range(1, 9)]
    assert read_result_line(path, 7)["custom_id"] == "r-5"


def messy_results(path, count=80):
    """Results with garbled and blank lines, fields that first appear late (refusal, tool calls), unicode
    answers, a repeated custom_id (a later failure after a success), and a result for an unknown id."""
    items = [success(f"r-{i}", f"answer {i} — “quoted” 東京 " + "x" * 200) for i in range(count)]
    items[3] = "{garbled"
    items[count - 6] = "not json at all"
    items[count - 4] = success("r-late", None, refusal="I can't help with that.")
    items[count - 3] = success("r-tool", None, tool_calls=[{"id": "c1", "type": "function"}])
    items[count - 2] = never_run("r-5")  # r-5 succeeded earlier: the success stays
    items[count - 1] = success("r-unknown", "no request has this id")
    items.insert(count // 3, "")
    return write_jsonl(path, items)


def test_a_messy_file_in_small_blocks_is_the_table_of_one_block(tmp_path, monkeypatch):
    from langbatch_core.results import lines as module

    source = messy_results(tmp_path / "results.jsonl")
    requests = [chat_request(f"r-{i}", f"question {i}") for i in range(90)]
    requests.append(chat_request("r-7", "a second request with id r-7: its prompt wins"))
    request_file = write_jsonl(tmp_path / "requests.jsonl", requests)
    whole = load_results(source, requests=request_file)
    monkeypatch.setattr(module, "BLOCK_SIZE", 4096)
    table = load_results(source, requests=request_file)
    pd.testing.assert_frame_equal(table, whole)
    assert table.attrs == whole.attrs
    assert table.attrs["garbled_count"] == 2
    assert [line for _, line in table.attrs["garbled_lines"]] == [4, 76]
    assert table.attrs["unknown_custom_ids"] == ["r-late", "r-tool", "r-unknown"]
    by_id = table.set_index("custom_id")
    assert by_id.loc["r-late", "refusal"] == "I can't help with that."
    assert by_id.loc["r-5", "status"] == "succeeded"
    assert by_id.loc["r-7", "prompt"] == "a second request with id r-7: its prompt wins"
    assert (table.status == "missing").sum() == 16  # of r-0 … r-89: r-3, r-74 (garbled), r-76 … r-89
    assert table.line.iloc[: (table.status != "missing").sum()].is_monotonic_increasing


def test_a_result_line_too_long_to_hold_is_a_results_error(tmp_path, monkeypatch):
    from langbatch_core import jsonl

    monkeypatch.setattr(jsonl, "MAX_LINE_BYTES", 1024)
    path = write_jsonl(tmp_path / "results.jsonl", [success("a", "short"), success("b", "x" * 5000)])
    with pytest.raises(ResultsError, match="line 2 is longer than 1,024 bytes"):
        list(iter_results(path))
