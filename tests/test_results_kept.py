"""A batch's results table kept beside its results (``.results.arrow``): read back exactly as loaded, made
again whenever the files it was made from change, written when results arrive, never an error."""

from __future__ import annotations

import json
import os
import time

import pytest
from batch_support import to_engine
from pandas.testing import assert_frame_equal
from support.data_requests import chat_request, write_lines
from support.data_results import never_run, rejected, success, write_jsonl, write_results_file

from langbatch_core import OpenAIChatCompletionBatch
from langbatch_core.kept import KEY, is_kept
from langbatch_core.results import load_results
from langbatch_core.results.kept import KEPT_FILE, keep_results_table, results_table
from langbatch_core.worker import Worker


def files(tmp_path):
    """A result file with every outcome and some late fields; requests with one not answered."""
    lines = [chat_request(f"r{i}", f"question {i}") for i in range(8)]
    requests = write_lines(tmp_path / "requests.jsonl", lines)
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    results = write_jsonl(
        tmp_path / "results.jsonl",
        [
            success("r3", "Trois — « oui » 日本"),
            rejected("r1", 400, "Unrecognized argument"),
            never_run("r2", "batch_expired"),
            success("r0", None, refusal="I can't help with that."),
            success("r4", None, tool_calls=[call], finish_reason="tool_calls"),
            success("r5", "ok"),
            success("r6", "unknown id is still a row") | {"custom_id": "stray"},
        ],
    )
    return results, requests


def key_in(path):
    """The key a kept file was written with."""
    import pyarrow.ipc as ipc

    with path.open("rb") as file:
        return ipc.open_file(file).schema.metadata[KEY]


def test_the_kept_table_reads_back_exactly_as_loaded(tmp_path):
    results, requests = files(tmp_path)
    expected = load_results([results], requests=requests, order="requests")
    first = results_table(results, requests)
    assert (tmp_path / KEPT_FILE).is_file()
    os.utime(tmp_path / KEPT_FILE, ns=(1, 1))  # a second read must not write it again
    again = results_table(results, requests)
    assert (tmp_path / KEPT_FILE).stat().st_mtime_ns == 1
    for table in (first, again):
        assert_frame_equal(table, expected, check_exact=True)
        assert table.attrs == expected.attrs
    assert again["status"].tolist()[-2:] == ["missing", "succeeded"]  # r7, then the unknown id last
    assert again.attrs["unknown_custom_ids"] == ["stray"]


def test_new_results_or_requests_make_it_again(tmp_path):
    results, requests = files(tmp_path)
    results_table(results, requests)
    newer = write_jsonl(tmp_path / "new.jsonl", [success(f"r{i}", f"retried {i}") for i in range(8)])
    os.replace(newer, results)  # as a merge does
    assert results_table(results, requests)["answer"].tolist() == [f"retried {i}" for i in range(8)]
    fewer = write_lines(tmp_path / "fewer.jsonl", [chat_request(f"r{i}", "q") for i in range(3)])
    os.replace(fewer, requests)
    table = results_table(results, requests)
    assert table.attrs["unknown_count"] == 5 and len(table) == 8
    assert_frame_equal(table, load_results([results], requests=requests, order="requests"), check_exact=True)


def test_keeping_after_a_merge_writes_only_what_is_not_kept_yet(tmp_path):
    results, requests = files(tmp_path)
    path = tmp_path / KEPT_FILE
    keep_results_table(results, requests)
    assert is_kept(path, key_in(path))
    os.utime(path, ns=(1, 1))
    keep_results_table(results, requests)
    assert path.stat().st_mtime_ns == 1  # kept already: left as it is
    os.replace(write_jsonl(tmp_path / "new.jsonl", [success("r0", "again")]), results)
    keep_results_table(results, requests)
    assert path.stat().st_mtime_ns != 1
    assert results_table(results, requests)["answer"].tolist()[0] == "again"
    assert not is_kept(path, b"another key") and not is_kept(tmp_path / "none.arrow", b"")


def test_without_requests_it_is_the_results_alone(tmp_path):
    results, requests = files(tmp_path)
    assert "prompt" in results_table(results, requests).columns
    table = results_table(results, None)
    assert "prompt" not in table.columns and len(table) == 7


@pytest.mark.parametrize("damage", ["garbage", "half written", "a folder"])
def test_a_damaged_kept_file_is_made_again(tmp_path, damage):
    results, requests = files(tmp_path)
    path = tmp_path / KEPT_FILE
    results_table(results, requests)
    if damage == "garbage":
        path.write_bytes(b"not an arrow file")
    elif damage == "half written":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.unlink()
        path.mkdir()
    table = results_table(results, requests)
    assert_frame_equal(table, load_results([results], requests=requests, order="requests"), check_exact=True)
    assert damage == "a folder" or path.read_bytes().startswith(b"ARROW1")  # written again, whole
    assert not list(tmp_path.glob(f"{KEPT_FILE}.*"))  # no temporary file left behind


def test_a_file_with_garbled_lines_is_not_kept(tmp_path):
    results = write_jsonl(tmp_path / "results.jsonl", [success("a"), "{not json", success("b")])
    table = results_table(results, None)
    assert table.attrs["garbled_count"] == 1 and len(table) == 2
    assert not (tmp_path / KEPT_FILE).exists()


def test_a_big_file_reads_back_exactly(tmp_path):
    results = write_results_file(tmp_path / "results.jsonl", 3_000, answer_chars=400)
    expected = load_results([results], order="requests")
    results_table(results, None)
    assert_frame_equal(results_table(results, None), expected, check_exact=True)


def test_results_arriving_keep_the_table_before_anyone_asks(tmp_path, engine):
    path = write_lines(tmp_path / "in.jsonl", [chat_request(f"q{i}", f"say {i}") for i in range(4)])
    batch = OpenAIChatCompletionBatch(path, connection=to_engine(engine))
    batch.start()
    batch.wait(poll_interval=0.05, timeout=60)
    kept = batch.directory / KEPT_FILE
    written = kept.stat().st_mtime_ns
    table = results_table(batch.results_path, batch.requests_path)
    assert kept.stat().st_mtime_ns == written  # read back, not made again: kept for these very files
    assert table["answer"].tolist() == [f"echo: say {i}" for i in range(4)]
    assert_frame_equal(
        table, load_results([batch.results_path], requests=batch.requests_path, order="requests")
    )


def test_a_worker_keeps_the_table_of_the_results_it_merged(tmp_path, engine):
    path = write_lines(tmp_path / "in.jsonl", [chat_request(f"q{i}", f"say {i}") for i in range(3)])
    batch = OpenAIChatCompletionBatch(path, connection=to_engine(engine))
    batch.start()
    worker = Worker(name="w", poll_interval=0.05)
    deadline = time.monotonic() + 60
    while not (batch.directory / KEPT_FILE).exists():
        assert time.monotonic() < deadline, "the worker did not keep the results table"
        worker.run_once()
        time.sleep(0.05)
    written = (batch.directory / KEPT_FILE).stat().st_mtime_ns
    table = results_table(batch.results_path, batch.requests_path)
    assert (batch.directory / KEPT_FILE).stat().st_mtime_ns == written  # kept by the worker for these files
    assert table["status"].tolist() == ["succeeded"] * 3
    assert json.loads(key_in(batch.directory / KEPT_FILE))["results"] is not None


def test_a_batch_s_results_table_and_export_are_the_kept_table_in_request_order(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", [chat_request(f"q{i}", f"say {i}") for i in range(4)])
    batch = OpenAIChatCompletionBatch(path)
    write_jsonl(batch.results_path, [success(f"q{i}", f"answer {i}") for i in (3, 1, 0)])  # q2: no result
    table = batch.results_table()
    assert table["custom_id"].tolist() == ["q0", "q1", "q2", "q3"]
    assert table["status"].tolist() == ["succeeded", "succeeded", "missing", "succeeded"]
    assert (batch.directory / KEPT_FILE).is_file()  # the table Python, the CLI and the dashboard share
    exported = batch.export_results(tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()
    assert [line.split(",")[0] for line in exported[1:]] == ["q0", "q1", "q2", "q3"]


def test_a_kept_file_with_the_right_key_but_no_table_in_it_is_made_again(tmp_path):
    import pyarrow as pa
    import pyarrow.ipc as ipc

    results, requests = files(tmp_path)
    path = tmp_path / KEPT_FILE
    results_table(results, requests)
    schema = pa.schema([("x", pa.int64())], metadata={KEY: key_in(path)})  # no attrs, not the table
    with ipc.new_file(str(path), schema) as writer:
        writer.write_table(pa.table({"x": [1]}, schema=schema))
    table = results_table(results, requests)
    assert_frame_equal(table, load_results([results], requests=requests, order="requests"), check_exact=True)
