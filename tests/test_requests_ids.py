"""The custom_ids of a request file read without a dict per line (``request_ids``, what retry() reads), and
a subset of its lines written byte for byte (``write_subset``, a retry's request file)."""

from __future__ import annotations

import json

import pytest
from support.data_requests import chat_request

from langbatch_core.errors import InvalidRequestsError
from langbatch_core.requests import request_ids, write_subset


def test_ids_come_in_file_order_past_a_bom_crlf_and_blank_lines(tmp_path):
    lines = [json.dumps(chat_request(f"r-{i}", "x" * (10 if i % 2 else 3000))) for i in range(1, 6)]
    path = tmp_path / "requests.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join([lines[0], "", *lines[1:]]).encode())
    assert request_ids(path) == ["r-1", "r-2", "r-3", "r-4", "r-5"]


def test_a_line_without_a_custom_id_is_named(tmp_path):
    lines = [json.dumps(chat_request("a", "hi")), json.dumps({"method": "POST", "body": {}})]
    path = tmp_path / "requests.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidRequestsError, match="line 2: no string custom_id") as raised:
        request_ids(path)
    assert raised.value.issues[0].line == 2


def test_a_subset_keeps_the_lines_as_written_in_their_order(tmp_path):
    lines = [json.dumps(chat_request(f"r-{i}", f"Grüße {i}"), ensure_ascii=False) for i in range(1, 6)]
    source = tmp_path / "requests.jsonl"
    source.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    target = write_subset(source, tmp_path / "jobs" / "retry-2.jsonl", {"r-4", "r-2"})
    assert target.read_text(encoding="utf-8") == f"{lines[1]}\n{lines[3]}\n"
