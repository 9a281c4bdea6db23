"""The local engine's building blocks: on-disk state, input parsing, backend specs."""

from __future__ import annotations

import json
import os
import time
import tracemalloc

import pytest
from test_engine import chat_line

from langbatch_core.errors import ConfigurationError
from langbatch_core.local.backends import (
    BackendResponse,
    UpstreamBackend,
    make_backend,
    parse_upstream_answer,
)
from langbatch_core.local.batches import BatchManager, BatchRun, result_line
from langbatch_core.local.state import EngineState, ProgressLog, write_atomic
from langbatch_core.local.validation import validate_input


def test_progress_log_survives_reopening_and_ignores_a_torn_last_line(tmp_path):
    state = EngineState(tmp_path / "engine")
    log = ProgressLog(state.progress_path("batch_x"))
    log.append(0, False, {"custom_id": "a", "response": None})
    log.append(5, True, {"custom_id": "b", "response": {"status_code": 200}})
    log.close()
    with state.progress_path("batch_x").open("ab") as handle:
        handle.write(b'7\t1\t{"custom_id": "c", "resp')  # a write cut short by a power loss
    assert [(i, r["custom_id"]) for i, r in state.read_progress("batch_x")] == [(0, "a"), (5, "b")]
    assert [(i, ok) for i, ok, _ in state.read_progress_raw("batch_x")] == [(0, False), (5, True)]
    assert list(state.read_progress("batch_unknown")) == []
    state.close()


def test_objects_persist_and_page_newest_first_with_cursor(tmp_path):
    state = EngineState(tmp_path / "engine")
    for i in range(5):
        state.put({"id": f"b{i}", "n": i}, "batch")
    state.put({"id": "b1", "n": 100}, "batch")  # an update keeps its place
    state.close()
    state = EngineState(tmp_path / "engine")
    page, more = state.page("batch", limit=2)
    assert [b["id"] for b in page] == ["b4", "b3"] and more
    page, more = state.page("batch", after="b3", limit=10)
    assert [b["id"] for b in page] == ["b2", "b1", "b0"] and not more
    assert page[1]["n"] == 100
    assert [b["id"] for b in state.page("batch", after="b1", order="asc")[0]] == ["b2", "b3", "b4"]
    assert state.page("batch", after="nope") is None
    state.close()


def test_write_atomic_replaces_whole_files_and_leaves_no_temp(tmp_path):
    target = tmp_path / "f.json"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two" and [p.name for p in tmp_path.iterdir()] == ["f.json"]


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def request(custom_id, text, url="/v1/chat/completions"):
    body = {"model": "m", "messages": [{"role": "user", "content": text}]}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body})


def test_parsed_requests_read_bodies_from_the_file_by_offset(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", [request("a", "first"), "", request("b", "sécond ✓")])
    errors, parsed, tokens = validate_input(path, "/v1/chat/completions")
    assert errors == [] and len(parsed) == 2 and parsed.custom_ids == ["a", "b"] and tokens > 0
    assert parsed.body(1)["messages"][0]["content"] == "sécond ✓"
    assert parsed.body(0)["messages"][0]["content"] == "first" and parsed.model == "m"
    parsed.close()


def test_invalid_input_lists_errors_with_lines(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", [request("a", "x"), "[1, 2]", request("a", "dup")])
    errors, parsed, _ = validate_input(path, "/v1/chat/completions")
    assert parsed is None
    assert {e["line"] for e in errors} >= {2, 3}
    assert all(set(e) == {"code", "message", "param", "line"} for e in errors)
    empty = write_lines(tmp_path / "empty.jsonl", [])
    errors, _, _ = validate_input(empty, "/v1/chat/completions")
    assert errors and errors[0]["line"] is None


def test_make_backend_specs_and_errors():
    assert isinstance(make_backend("upstream:http://127.0.0.1:1/v1"), UpstreamBackend)
    backend = make_backend("https://example.invalid/v1/")
    assert backend.url_for("/v1/embeddings") == "https://example.invalid/v1/embeddings"
    assert make_backend(backend) is backend
    with pytest.raises(ConfigurationError, match="Unknown local engine backend"):
        make_backend("ollama")


def test_upstream_answers_are_parsed_with_retry_after():
    answer = parse_upstream_answer(429, b'{"error": {"message": "slow down"}}', {"retry-after": "2"})
    assert answer.status_code == 429 and answer.retry_after == 2.0
    garbage = parse_upstream_answer(200, b"<html>", {})
    assert garbage.status_code == 502 and not garbage.ok
    assert parse_upstream_answer(200, b"[1]", {"retry-after": "Wed, 21 Oct 2015"}).retry_after is None


def test_results_are_copied_to_the_output_files_without_holding_them_in_memory(tmp_path):
    state = EngineState(tmp_path)
    lines = [chat_line(f"r{i}", "x") for i in range(60)]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    _, requests, _ = validate_input(tmp_path / "in.jsonl", "/v1/chat/completions")
    run = BatchRun(BatchManager(state, executor=None), {"id": "batch_m", "input_file_id": "file-in"})
    run.requests = requests
    log = ProgressLog(state.progress_path("batch_m"))
    big = {"object": "chat.completion", "padding": "p" * 500_000}  # 60 results of 0.5 MB: 30 MB in all
    for index in range(0, 60, 2):  # every other one finished: output, error and unrun lines all written
        answer = BackendResponse(200 if index % 4 == 0 else 500, big)
        log.append(index, index % 4 == 0, result_line(f"r{index}", answer))
    log.close()
    tracemalloc.start()
    output_id, error_id, counts = run._write_results("expired")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert counts == {"total": 60, "completed": 15, "failed": 45}
    assert peak < 5_000_000  # a few lines at a time, not the 30 MB of results
    output = state.file_path(output_id).read_bytes().splitlines()
    errors = state.file_path(error_id).read_bytes().splitlines()
    assert [json.loads(line)["custom_id"] for line in output] == [f"r{i}" for i in range(0, 60, 4)]
    assert len(errors) == 45 and json.loads(errors[-1])["error"]["code"] == "batch_expired"
    assert all(len(line) > 500_000 for line in output)
    requests.close()
    state.close()


def test_temp_files_a_killed_engine_left_are_removed_at_the_next_start(tmp_path):
    EngineState(tmp_path).close()
    stale, fresh = tmp_path / "files" / ".upload-dead.tmp", tmp_path / "files" / ".new-busy.tmp"
    for path in (stale, fresh):
        path.write_bytes(b"half")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    EngineState(tmp_path).close()
    assert not stale.exists() and fresh.exists()  # a fresh one may be another engine's write in progress


def test_a_cancel_arriving_while_an_expired_batch_writes_its_results_leaves_it_expiring(tmp_path):
    state = EngineState(tmp_path)
    manager = BatchManager(state, executor=None)
    batch = {"id": "batch_e", "input_file_id": "file-in", "status": "in_progress", "cancelling_at": None}
    run = BatchRun(manager, batch)
    run.finishing = True  # _finish("expired") is writing the files; it sets status "expired" next
    manager.runs[batch["id"]] = run
    answer = manager.cancel(batch)
    assert answer["status"] == "in_progress" and answer["cancelling_at"] is None
    assert not run.cancel_requested.is_set()
    state.close()
