"""One vocabulary for a request's outcome, computed once by the core: succeeded; failed (the API answered
with an error); not run (expired, cancelled or lost); pending. The four always add up to the total."""

from __future__ import annotations

import time

from batch_support import to_engine, write_chat_file
from click.testing import CliRunner

from langbatch_core import OpenAIChatCompletionBatch
from langbatch_core.cli import cli
from langbatch_core.storage import BatchRecord, DuckDBBatchStorage


def outcome(batch) -> tuple[int, int, int, int]:
    r = batch.record
    assert r.succeeded + r.failed + r.not_run + r.pending == r.request_count
    return r.succeeded, r.failed, r.not_run, r.pending


def test_a_cancelled_batch_counts_its_unrun_requests_as_not_run_not_failed(tmp_path, make_engine, upstream):
    engine = make_engine(concurrency=1)
    prompts = ["rejected [[400]]"] + [f"p{i} [[slow:0.15]]" for i in range(10)]
    path = write_chat_file(tmp_path / "in.jsonl", prompts)
    batch = OpenAIChatCompletionBatch(path, connection=to_engine(engine))
    batch.start()
    while batch.record.succeeded < 1:
        time.sleep(0.02)
        batch.refresh()
    batch.cancel()
    assert batch.wait(poll_interval=0.05) == "cancelled"
    succeeded, failed, not_run, pending = outcome(batch)
    assert failed == 1 and pending == 0  # only the 400: the API answered it with an error
    assert not_run == 11 - succeeded - 1 and not_run >= 1
    progress = batch.progress()
    assert (progress["failed"], progress["not_run"]) == (1, not_run)


def test_an_expired_request_is_not_run(tmp_path, make_engine, upstream):
    engine = make_engine(completion_window=0.5)
    path = write_chat_file(tmp_path / "in.jsonl", ["fast", "bad [[400]]", "slow [[slow:0.9]]"])
    batch = OpenAIChatCompletionBatch(path, connection=to_engine(engine))
    batch.start()
    assert batch.wait(poll_interval=0.05) == "expired"
    assert outcome(batch) == (1, 1, 1, 0)
    status = CliRunner().invoke(cli, ["status", batch.id]).output
    assert "expired: 1 succeeded, 1 failed, 1 not run, 0 pending of 3" in status
    listed = CliRunner().invoke(cli, ["list"]).output
    assert "1/3 ok 1 failed 1 not run 0 pending" in listed


def test_a_record_saved_before_not_run_existed_still_loads(tmp_path):
    old = BatchRecord(id="lb_old", endpoint="/v1/chat/completions").to_dict()
    del old["not_run"]
    assert BatchRecord.from_dict(old).not_run == 0
    store = DuckDBBatchStorage(tmp_path / "store.duckdb")
    store.save(BatchRecord(id="lb_new", endpoint="/v1/chat/completions", not_run=3))
    assert store.load("lb_new").not_run == 3
