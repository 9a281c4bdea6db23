"""Finding a line by custom_id, and results put back in request-file order (langbatch_core.results.index)."""

from __future__ import annotations

import json

import pandas as pd

from langbatch_core.results.index import find_line, in_request_order, line_index, read_line


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


def test_results_come_back_in_request_file_order_unknown_ids_last(tmp_path):
    requests = write_lines(tmp_path / "in.jsonl", [{"custom_id": c} for c in ("a", "b", "c")])
    table = pd.DataFrame({"custom_id": ["c", "x", "a", "b"], "status": ["failed", "?", "ok", "ok"]})
    table.attrs["unreadable"] = 2
    ordered = in_request_order(table, line_index(requests))
    assert list(ordered["custom_id"]) == ["a", "b", "c", "x"]
    assert ordered.attrs == {"unreadable": 2}
    in_order = table.iloc[[2, 3, 0]]
    assert in_request_order(in_order, line_index(requests)) is in_order
