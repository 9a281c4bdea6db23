"""The PostgreSQL store on a real server: chosen by LANGBATCH_STORE, named migrations applied once, saves
that never overwrite a newer record, a batch lock that holds across machines (processes with different data
directories), worker leases that never hand one batch to two workers, and no password in any message."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import psycopg
import pytest

from langbatch_core import BatchNotFoundError, BatchRecord, StaleRecordError, StorageError
from langbatch_core.errors import ConfigurationError
from langbatch_core.storage import DuckDBBatchStorage, JobRecord, default_storage, describe_default_storage
from langbatch_core.storage.base import CATCH_UP_SECONDS
from langbatch_core.storage.postgres import MIGRATIONS, PostgresBatchStorage

# Holds one batch's lock in another process ("another machine": its own data directory) until killed.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from langbatch_core.storage.postgres import PostgresBatchStorage
    store = PostgresBatchStorage(sys.argv[1], data_dir=sys.argv[2])
    with store.lock("lb_1") as held:
        print("held" if held else "refused", flush=True)
        time.sleep(600)
    """
)


def record(batch_id="lb_1", status="in_progress", version=0, **kw):
    return BatchRecord(id=batch_id, endpoint="/v1/chat/completions", status=status, version=version, **kw)


def test_langbatch_store_chooses_postgres_and_keeps_duckdb_otherwise(postgres_url, monkeypatch, tmp_path):
    assert isinstance(default_storage(), DuckDBBatchStorage)
    monkeypatch.setenv("LANGBATCH_STORE", postgres_url)
    store = default_storage()
    assert isinstance(store, PostgresBatchStorage)
    store.save(record())
    assert [r.id for r in default_storage().list()] == ["lb_1"]
    monkeypatch.setenv("LANGBATCH_STORE", f"duckdb://{tmp_path}/team.duckdb")
    assert default_storage().path == tmp_path / "team.duckdb"
    monkeypatch.setenv("LANGBATCH_STORE", "mysql://db/x")
    with pytest.raises(ConfigurationError, match="unknown kind of store"):
        default_storage()


def test_migrations_are_named_and_applied_once_by_processes_starting_together(postgres_url):
    script = "import sys; from langbatch_core.storage.postgres import PostgresBatchStorage as P; "
    script += "P(sys.argv[1]).list()"
    procs = [subprocess.Popen([sys.executable, "-c", script, postgres_url]) for _ in range(4)]
    assert [proc.wait(timeout=60) for proc in procs] == [0] * 4
    assert PostgresBatchStorage(postgres_url).applied_migrations() == [m.__name__ for m in MIGRATIONS]


def test_a_person_s_listing_reads_the_owner_index(postgres_url):
    store = PostgresBatchStorage(postgres_url)
    for n in range(50):
        store.save(record(f"lb_{n}", owner=f"user{n % 5}@example.com"))
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("SET enable_seqscan = off")  # a tiny table: ask which index serves, not what is cheapest
        query = "EXPLAIN SELECT id FROM batches WHERE lower(owner) = %s ORDER BY created_at DESC LIMIT 20"
        plan = "\n".join(row[0] for row in con.execute(query, ["user1@example.com"]).fetchall())
    assert "batches_owner_listing" in plan and "Sort" not in plan
    assert len(store.summaries(owner="USER1@example.com")) == 10


def test_a_save_on_an_older_version_is_refused_not_written(postgres_url):
    store = PostgresBatchStorage(postgres_url)
    store.save(record(version=1, name="first"))
    store.save(record(version=2, name="second"))  # the next version: saved
    with pytest.raises(StaleRecordError, match=r"holds version 2.*Load the batch again"):
        store.save(record(version=2, name="lost update"))  # made on version 1 too
    assert store.load("lb_1").name == "second"


def test_a_save_replaces_the_job_rows_and_a_refused_save_leaves_them(postgres_url):
    def job(key, status="in_progress"):
        return JobRecord(
            key=key, attempt=1, request_count=2, input_file="i", status=status, provider_job_id=key
        )

    def rows():
        with psycopg.connect(postgres_url, autocommit=True) as con:
            return con.execute("SELECT key, status FROM jobs WHERE batch_id = 'lb_1' ORDER BY key").fetchall()

    store = PostgresBatchStorage(postgres_url)
    store.save(record(version=1, jobs=[job("a1-j1"), job("a1-j2")]))
    assert rows() == [("a1-j1", "in_progress"), ("a1-j2", "in_progress")]
    store.save(record(version=2, jobs=[job("a1-j1", "completed"), job("a2-j1")]))  # one gone, one new
    assert rows() == [("a1-j1", "completed"), ("a2-j1", "in_progress")]
    with pytest.raises(StaleRecordError):
        store.save(record(version=2, jobs=[]))
    assert rows() == [("a1-j1", "completed"), ("a2-j1", "in_progress")]
    store.save(record(version=3))
    assert rows() == [] and store.load("lb_1").jobs == []


def test_the_batch_lock_holds_across_machines_and_dies_with_its_holder(postgres_url, tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, postgres_url, str(tmp_path / "machine-a")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        store = PostgresBatchStorage(postgres_url, data_dir=tmp_path / "machine-b")
        with store.lock("lb_1", wait=False) as held:
            assert held is False
        with store.lock("lb_2", wait=False) as held:
            assert held is True  # another batch: not blocked
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 30
    while True:  # the server notices the closed connection and drops its locks
        with store.lock("lb_1", wait=False) as held:
            if held:
                break
        assert time.monotonic() < deadline, "the killed holder's lock was never released"
        time.sleep(0.05)


def test_the_lock_is_released_reused_and_excludes_other_objects_of_the_process(postgres_url):
    store = PostgresBatchStorage(postgres_url)
    for _ in range(3):
        with store.lock("lb_1") as held:
            assert held
            other = PostgresBatchStorage(postgres_url)
            with other.lock("lb_1", wait=False) as also:
                assert also is False  # a second batch object of the same process waits its turn too


class CountingStore(PostgresBatchStorage):
    """Counts the store's calls to the server besides the lock's own (a real subclass)."""

    calls = 0

    def _run(self, work):
        self.calls += 1
        return super()._run(work)


def test_the_lock_reads_the_latest_record_with_it_for_the_holder_s_first_load(postgres_url):
    store = CountingStore(postgres_url)
    store.save(record(version=1, name="first"))
    PostgresBatchStorage(postgres_url).save(record(version=2, name="by another writer"))
    with store.lock("lb_1") as held:
        before = store.calls
        assert held and store.load("lb_1").name == "by another writer"  # read as the lock was taken
        assert store.calls == before  # no second round trip
        store.load("lb_1")
        assert store.calls == before + 1  # read once: later loads ask the server
    with store.lock("lb_1"):
        store.save(record(version=3, name="saved under the lock"))
        assert store.load("lb_1").name == "saved under the lock"  # a save drops what the lock read
    with store.lock("lb_1"):
        pass
    assert store.load("lb_1").version == 3 and store.calls > before + 1  # released: read from the server


def test_worker_leases_hand_each_running_batch_to_one_worker(postgres_url):
    store = PostgresBatchStorage(postgres_url)
    for i in range(10):
        store.save(record(f"lb_{i}", status="in_progress" if i < 8 else "completed"))
    first = store.active_batch_ids("w1", limit=5, lease_seconds=60)
    second = store.active_batch_ids("w2", limit=100, lease_seconds=60)
    assert len(first) == 5 and len(second) == 3 and not set(first) & set(second)
    assert store.active_batch_ids("w3", limit=100, lease_seconds=60) == []  # all leased
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("UPDATE batches SET lease_until = 0")  # leases expired: a killed worker's batches
    assert len(store.active_batch_ids("w3", limit=100, lease_seconds=60)) == 8


def test_a_batch_finished_by_a_refresh_is_leased_until_a_worker_has_seen_it(postgres_url):
    store = PostgresBatchStorage(postgres_url)
    now = time.time()
    finished = [JobRecord(key="j1", attempt=1, request_count=1, input_file="in.jsonl", status="completed")]
    store.save(record("lb_new", status="completed", jobs=finished, updated_at=now, advanced_at=now - 5))
    store.save(record("lb_seen", status="completed", jobs=finished, updated_at=now, advanced_at=now))
    store.save(record("lb_old", status="completed", jobs=finished, updated_at=now - 2 * CATCH_UP_SECONDS))
    store.save(record("lb_unstarted", status="created", updated_at=now))
    assert store.active_batch_ids("w1", limit=100, lease_seconds=60) == ["lb_new"]


def test_the_password_never_shows_and_an_unreachable_server_is_a_clear_error(postgres_server, monkeypatch):
    url = f"postgresql://langbatch:s3cret-pw@127.0.0.1:{postgres_server.port + 1}/team"
    store = PostgresBatchStorage(url, connect_timeout=2)
    with pytest.raises(StorageError, match=r"Cannot reach the store PostgreSQL 127\.0\.0\.1") as caught:
        store.list()
    monkeypatch.setenv("LANGBATCH_STORE", url)
    shown = [str(caught.value), repr(store), str(describe_default_storage()["store"])]
    assert not [text for text in shown if "s3cret" in text]
    with pytest.raises(BatchNotFoundError):
        PostgresBatchStorage(postgres_server.new_database()).load("lb_missing")
