"""Finding a line by custom_id (langbatch_core.results.index), and results in request-file order (the order
load_results reads from the request file in the same pass: no second pass to index it)."""

from __future__ import annotations

import json

from support.data_results import never_run, rejected, success

from langbatch_core.results import load_results
from langbatch_core.results.index import find_line, line_index, read_line


def write_lines(path, lines):
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return path


def test_line_index_finds_each_custom_id(tmp_path):
    lines = [{"id": "x", "custom_id": f"id-{i}", "text": "é" * i} for i in range(5)]
    lines.append({"body": {"custom_id": "nested"}, "custom_id": "outer"})
    path = write_lines(tmp_path / "r.jsonl", lines)
    index = line_index(path)
    assert read_line(path, index["id-3"])["text"] == "ééé"
    assert set(index) == {f"id-{i}" for i in range(5)} | {"outer"}


def test_find_line_answers_none_for_an_unknown_id_or_a_file_changed_since(tmp_path):
    path = write_lines(tmp_path / "r.jsonl", [{"custom_id": "a"}, {"custom_id": "b"}])
    index = line_index(path)
    assert find_line(path, "b", index) == {"custom_id": "b"}
    assert find_line(path, "zzz", index) is None
    write_lines(path, [{"custom_id": "b"}, {"custom_id": "a"}])  # rewritten: the offsets are stale
    assert find_line(path, "b", index) is None


def test_results_come_back_in_request_file_order_missing_in_place_unknown_ids_last(tmp_path):
    requests = write_lines(tmp_path / "in.jsonl", [request(c) for c in ("a", "b", "c", "d", "e")])
    # a result file lists failures last; "x" is not a request, "b" and "d" have no result
    results = write_lines(tmp_path / "out.jsonl", [success("e"), success("a"), rejected("c"), success("x")])
    table = load_results(results, requests=requests, order="requests")
    assert list(table["custom_id"]) == ["a", "b", "c", "d", "e", "x"]
    assert list(table["status"]) == ["succeeded", "missing", "failed", "missing", "succeeded", "succeeded"]
    assert list(table["prompt"].fillna("")) == ["say a", "say b", "say c", "say d", "say e", ""]
    assert table.attrs["unknown_custom_ids"] == ["x"]
    by_file = load_results(results, requests=requests)  # the default: result-file order, missing rows last
    assert list(by_file["custom_id"]) == ["e", "a", "c", "x", "b", "d"]


def test_results_already_in_request_order_keep_it(tmp_path):
    requests = write_lines(tmp_path / "in.jsonl", [request(c) for c in ("a", "b", "c")])
    results = write_lines(tmp_path / "out.jsonl", [success("a"), never_run("b"), success("c")])
    table = load_results(results, requests=requests, order="requests")
    assert list(table["custom_id"]) == ["a", "b", "c"] and list(table["line"]) == [1, 2, 3]


def request(custom_id: str) -> dict:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"say {custom_id}"}]}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
