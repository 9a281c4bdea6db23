"""validate_file in two processes gives the very report of a serial pass (issues, order, lines, plan)."""

from __future__ import annotations

import json
import threading

import pytest
from support.data_requests import chat_request, write_chat_file

from langbatch_core import _request_parallel, _request_reader
from langbatch_core.requests import Limits, validate_file


@pytest.fixture
def forks(monkeypatch):
    """Small blocks, no size threshold; yields the list of child starts (one per parallel pass)."""
    monkeypatch.setattr(_request_reader, "BLOCK_SIZE", 2048)
    monkeypatch.setattr(_request_parallel, "PARALLEL_MIN_BYTES", 0)
    # Threads other tests left running (a session-wide test server) do not count; threads started by the
    # test itself still do, so a threaded process still takes the serial path.
    baseline = threading.active_count()
    monkeypatch.setattr(threading, "active_count", lambda real=threading.active_count: real() - baseline + 1)
    started = []
    start = _request_parallel._start_child

    def counted(*args):
        started.append(args[2])  # the offset of the child's half
        return start(*args)

    monkeypatch.setattr(_request_parallel, "_start_child", counted)
    return started


def serial(monkeypatch, *args, **kwargs):
    monkeypatch.setattr(_request_parallel, "PARALLEL_MIN_BYTES", 1 << 60)
    report = validate_file(*args, **kwargs)
    monkeypatch.setattr(_request_parallel, "PARALLEL_MIN_BYTES", 0)
    return report


def messy_file(path, count=120):
    """Valid requests with problems spread over both halves: bad JSON, bad UTF-8, duplicates (within and
    across the halves), a second model, a late unknown key, CRLF lines, blank lines, non-ASCII text."""
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
    lines[count - 40] += b"\r"
    lines[count - 41] += b"\r"
    lines.insert(count - 50, b"")
    lines.insert(10, b"   ")
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_messy_file_same_report_as_serial(tmp_path, monkeypatch, forks):
    source = messy_file(tmp_path / "messy.jsonl")
    expected = serial(monkeypatch, source)
    report = validate_file(source)
    assert forks, "the parallel path did not run"
    assert report.to_dict() == expected.to_dict()
    codes = [(issue.line, issue.code) for issue in report.issues]
    assert (103, "duplicate_custom_id") in codes and (93, "multiple_models") in codes
    assert any(code == "not_utf8" for _, code in codes) and any(code == "crlf" for _, code in codes)
    assert forks[0] > source.stat().st_size * 0.3  # the child had a real share


def test_capped_issue_list_is_the_serial_one(tmp_path, monkeypatch, forks):
    source = messy_file(tmp_path / "messy.jsonl")
    for cap in (1, 3, 5):
        expected = serial(monkeypatch, source, max_issues=cap)
        assert validate_file(source, max_issues=cap).to_dict() == expected.to_dict()
        assert expected.error_count > cap
    assert forks


def test_job_plan_and_token_sample_across_the_halves(tmp_path, monkeypatch, forks):
    source = write_chat_file(tmp_path / "big.jsonl", 200, prompt_chars=300)
    limits = Limits(max_requests=7, max_bytes=9_000)  # blocks that do not fit: planned line by line
    for kwargs in ({"limits": limits}, {"token_sample": 150}, {"limits": Limits(max_enqueued_tokens=5_000)}):
        expected = serial(monkeypatch, source, **kwargs)
        report = validate_file(source, **kwargs)
        assert report.to_dict() == expected.to_dict(), kwargs
    assert len(expected.jobs) > 5
    assert len(forks) == 3


def test_bom_and_unknown_endpoint_until_late(tmp_path, monkeypatch, forks):
    good = [json.dumps(chat_request(f"r-{i}", "hello " * 40)) for i in range(80)]
    source = tmp_path / "bom.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + "\n".join(["{broken", *good]).encode() + b"\n")
    assert validate_file(source).to_dict() == serial(monkeypatch, source).to_dict()
    assert forks


def test_a_failed_child_falls_back_to_a_serial_second_half(tmp_path, monkeypatch, forks):
    source = messy_file(tmp_path / "messy.jsonl")
    expected = serial(monkeypatch, source)

    def broken(*args):
        raise RuntimeError("the child fails")

    monkeypatch.setattr(_request_parallel, "_second_half", broken)
    assert validate_file(source).to_dict() == expected.to_dict()
    assert forks


def test_threaded_process_does_not_fork(tmp_path, monkeypatch, forks):
    source = messy_file(tmp_path / "messy.jsonl")
    expected = serial(monkeypatch, source)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        report = validate_file(source)
    finally:
        stop.set()
        other.join()
    assert not forks
    assert report.to_dict() == expected.to_dict()


def test_cut_follows_a_line_longer_than_a_block(tmp_path, monkeypatch, forks):
    lines = [chat_request(f"r-{i}", "y" * (6000 if i == 3 else 200)) for i in range(40)]
    source = tmp_path / "long.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    expected = serial(monkeypatch, source)
    assert validate_file(source).to_dict() == expected.to_dict()
    assert expected.ok and expected.request_count == 40
    assert forks


def test_no_fork_possible_means_a_serial_pass(tmp_path, monkeypatch, forks):
    source = messy_file(tmp_path / "messy.jsonl")
    expected = serial(monkeypatch, source)

    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(_request_parallel.os, "fork", no_fork)
    assert validate_file(source).to_dict() == expected.to_dict()
    assert forks
