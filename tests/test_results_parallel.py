"""load_results reading one big file in two processes gives the very table of a serial read."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
from support.data_requests import chat_request
from support.data_results import never_run, success, write_jsonl

from langbatch_core import results
from langbatch_core.results import load_results


@pytest.fixture
def forks(monkeypatch):
    """No size threshold; yields the list of forked calls (one per parallel read)."""
    monkeypatch.setattr(results, "PARALLEL_MIN_BYTES", 0)
    # Threads other tests left running (a session-wide test server) do not count; threads started by the
    # test itself still do, so a threaded process still takes the serial path.
    baseline = threading.active_count()
    monkeypatch.setattr(threading, "active_count", lambda real=threading.active_count: real() - baseline + 1)
    started = []
    fork_call = results.fork_call

    def counted(function, *args):
        started.append(function.__name__)
        return fork_call(function, *args)

    monkeypatch.setattr(results, "fork_call", counted)
    return started


def serial(monkeypatch, *args, **kwargs) -> pd.DataFrame:
    monkeypatch.setattr(results, "PARALLEL_MIN_BYTES", 1 << 60)
    table = load_results(*args, **kwargs)
    monkeypatch.setattr(results, "PARALLEL_MIN_BYTES", 0)
    return table


def assert_same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(left, right)
    assert left.attrs == right.attrs


def messy_results(path, count=80):
    """Results with garbled lines and blank lines in both halves, a field that first appears in the second
    half (refusal, tool calls), unicode answers, a repeated custom_id, and a result for an unknown id."""
    items = [success(f"r-{i}", f"answer {i} — “quoted” 東京 " + "x" * 200) for i in range(count)]
    items[3] = "{garbled"
    items[count - 6] = "not json at all"
    items[count - 4] = success("r-late", None, refusal="I can't help with that.")
    items[count - 3] = success("r-tool", None, tool_calls=[{"id": "c1", "type": "function"}])
    items[count - 2] = never_run("r-5")  # r-5 succeeded earlier: the success stays
    items[count - 1] = success("r-unknown", "no request has this id")
    items.insert(count // 3, "")
    return write_jsonl(path, items)


def test_messy_file_same_table_as_serial(tmp_path, monkeypatch, forks):
    source = messy_results(tmp_path / "results.jsonl")
    expected = serial(monkeypatch, source)
    table = load_results(source)
    assert forks == ["_read_rest"]
    assert_same(table, expected)
    assert table.attrs["garbled_count"] == 2
    assert [line for _, line in table.attrs["garbled_lines"]] == [4, 76]
    assert table.set_index("custom_id").loc["r-late", "refusal"] == "I can't help with that."
    assert table.line.is_monotonic_increasing


def test_with_requests_same_table_as_serial(tmp_path, monkeypatch, forks):
    source = messy_results(tmp_path / "results.jsonl")
    requests = [chat_request(f"r-{i}", f"question {i}") for i in range(90)]
    requests.append(chat_request("r-7", "a second request with id r-7: its prompt wins"))
    request_file = write_jsonl(tmp_path / "requests.jsonl", requests)
    expected = serial(monkeypatch, source, requests=request_file)
    table = load_results(source, requests=request_file)
    assert forks == ["_read_rest"]
    assert_same(table, expected)
    by_id = table.set_index("custom_id")
    assert by_id.loc["r-7", "prompt"] == "a second request with id r-7: its prompt wins"
    assert table.attrs["unknown_custom_ids"] == ["r-late", "r-tool", "r-unknown"]
    assert (table.status == "missing").sum() == expected.status.eq("missing").sum() > 10


def test_a_failed_child_falls_back_to_reading_here(tmp_path, monkeypatch, forks):
    source = messy_results(tmp_path / "results.jsonl")
    expected = serial(monkeypatch, source)

    def broken(*args):
        raise RuntimeError("the child fails")

    monkeypatch.setattr(results, "_read_rest", broken)
    assert_same(load_results(source), expected)
    assert forks


def test_threaded_process_reads_alone(tmp_path, monkeypatch, forks):
    source = messy_results(tmp_path / "results.jsonl")
    expected = serial(monkeypatch, source)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        table = load_results(source)
    finally:
        stop.set()
        other.join()
    assert not forks
    assert_same(table, expected)


def test_no_fork_possible_means_reading_here(tmp_path, monkeypatch, forks):
    source = messy_results(tmp_path / "results.jsonl")
    expected = serial(monkeypatch, source)

    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(results.os, "fork", no_fork)
    assert_same(load_results(source), expected)
    assert forks
