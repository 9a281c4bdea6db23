"""One DuckDB store used by two processes at once (the CLI and the dashboard): nothing lost, no lock error."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap

import pytest

from langbatch_core import DuckDBBatchStorage, StorageError

WRITER = textwrap.dedent(
    """
    import sys
    from langbatch_core import BatchRecord, DuckDBBatchStorage

    storage = DuckDBBatchStorage(sys.argv[1])
    for i in range(25):
        name = sys.argv[2]
        storage.save(BatchRecord(id=f"lb_{name}_{i}", endpoint="/v1/chat/completions", name=name))
        storage.list()
    print("ok")
    """
)

HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
    """
)


def test_two_processes_share_one_store(tmp_path):
    path = tmp_path / "langbatch.duckdb"
    DuckDBBatchStorage(path).list()  # create + migrate first, as the dashboard would
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), name], stdout=subprocess.PIPE, text=True)
        for name in ("cli", "dash")
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0] and outputs == ["ok\n", "ok\n"]
    records = DuckDBBatchStorage(path).list()
    assert len(records) == 50
    assert {r.name for r in records} == {"cli", "dash"}


@contextlib.contextmanager
def lock_held(path, seconds):
    """Another process holding the DuckDB file's write lock for ``seconds``."""
    DuckDBBatchStorage(path).list()  # create + migrate first
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "holding\n"
        yield
    finally:
        holder.wait(timeout=30)


def test_a_held_lock_is_waited_for(tmp_path):
    path = tmp_path / "langbatch.duckdb"
    with lock_held(path, 1.0):
        assert DuckDBBatchStorage(path, lock_timeout=20).list() == []  # waits for the holder to let go


def test_a_lock_held_too_long_is_a_clear_error(tmp_path):
    path = tmp_path / "langbatch.duckdb"
    with lock_held(path, 1.5), pytest.raises(StorageError, match="held by another process"):
        DuckDBBatchStorage(path, lock_timeout=0.3).list()


DASHBOARD_LIKE = textwrap.dedent(
    """
    import sys, time
    from langbatch_core import Batch
    from langbatch_core.storage import default_storage

    storage, deadline, polls = default_storage(), time.monotonic() + float(sys.argv[1]), 0
    print("polling", flush=True)
    while time.monotonic() < deadline:  # what the Batches page does while a batch runs, without a pause
        for record in storage.list():
            Batch.load(record.id, storage=storage).refresh()
            polls += 1
    print(polls)
    """
)


def test_a_python_wait_loop_beside_a_busy_dashboard_gets_no_lock_error(tmp_path, engine):
    from batch_support import to_engine, write_chat_file

    from langbatch_core import OpenAIChatCompletionBatch

    prompts = [f"q{i} [[slow:0.1]]" for i in range(30)]
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", prompts), connection=to_engine(engine)
    )
    batch.save()
    dashboard = subprocess.Popen(
        [sys.executable, "-c", DASHBOARD_LIKE, "6"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert dashboard.stdout.readline() == "polling\n"
        batch.start()
        assert batch.wait(poll_interval=0, timeout=60) == "completed"
        assert batch.record.succeeded == 30
    finally:
        polls = dashboard.communicate(timeout=60)[0]
    assert dashboard.returncode == 0 and int(polls) > 10  # the two processes really shared the store
