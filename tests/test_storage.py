"""Both stores and a custom one: save, load, list, delete, clear errors, no path tricks, migrations."""

from __future__ import annotations

import pytest
from batch_support import to_engine, write_chat_file

from langbatch_core import (
    BatchNotFoundError,
    BatchRecord,
    BatchStorage,
    DuckDBBatchStorage,
    FileBatchStorage,
    OpenAIChatCompletionBatch,
    StorageError,
)
from langbatch_core.storage import BatchSummary, JobRecord
from langbatch_core.storage.duckdb import MIGRATIONS


class MemoryStorage(BatchStorage):
    """A custom store, as the seed's CustomStorage: a dict in memory."""

    def __init__(self):
        super().__init__()
        self.records = {}

    def save(self, record):
        self.records[record.id] = BatchRecord.from_dict(record.to_dict())

    def load(self, batch_id):
        if batch_id not in self.records:
            raise BatchNotFoundError(f"no {batch_id}")
        return self.records[batch_id]

    def list(self):
        return sorted(self.records.values(), key=lambda r: r.created_at, reverse=True)

    def delete(self, batch_id):
        self.load(batch_id)
        del self.records[batch_id]


@pytest.fixture(params=["files", "duckdb", "custom", "postgres"])
def storage(request):
    if request.param == "postgres":
        from langbatch_core.storage.postgres import PostgresBatchStorage

        return PostgresBatchStorage(request.getfixturevalue("postgres_url"))
    return {"files": FileBatchStorage, "duckdb": DuckDBBatchStorage, "custom": MemoryStorage}[request.param]()


def record(batch_id="lb_1", created_at=1.0, **kw):
    job = JobRecord(key="a1-j1", attempt=1, request_count=2, input_file="jobs/a1-j1/input.jsonl")
    return BatchRecord(id=batch_id, endpoint="/v1/chat/completions", created_at=created_at, jobs=[job], **kw)


def test_save_load_list_delete(storage):
    storage.save(record("lb_old", 1.0, name="old", connection={"kind": "local"}))
    storage.save(record("lb_new", 2.0, name="new", succeeded=1, pending=1))
    assert storage.load("lb_old").name == "old"
    assert storage.load("lb_old").jobs[0].key == "a1-j1"
    assert [r.id for r in storage.list()] == ["lb_new", "lb_old"]  # newest first
    storage.save(record("lb_old", 1.0, name="renamed"))  # save replaces
    assert storage.load("lb_old").name == "renamed"
    storage.delete("lb_old")
    assert [r.id for r in storage.list()] == ["lb_new"]
    with pytest.raises(BatchNotFoundError):
        storage.load("lb_old")


@pytest.mark.parametrize("make", [FileBatchStorage, DuckDBBatchStorage])
def test_unknown_id_is_a_clear_error(make):
    with pytest.raises(BatchNotFoundError, match="langbatch list") as caught:
        make().load("lb_missing")
    assert "lb_missing" in str(caught.value)
    with pytest.raises(BatchNotFoundError):
        make().delete("lb_missing")


@pytest.mark.parametrize("make", [FileBatchStorage, DuckDBBatchStorage])
@pytest.mark.parametrize("bad", ["../etc", "a/b", "..", "", "x" * 200, "lb 1", "/abs"])
def test_ids_with_path_tricks_are_refused(make, bad):
    with pytest.raises(StorageError, match="Invalid batch id"):
        make().load(bad)


def test_a_batch_runs_with_every_store(storage, tmp_path, engine):
    path = write_chat_file(tmp_path / "in.jsonl", ["a", "b"])
    batch = OpenAIChatCompletionBatch(path, connection=to_engine(engine), storage=storage)
    batch.start()
    batch.wait(poll_interval=0.05)
    again = OpenAIChatCompletionBatch.load(batch.id, storage=storage)
    assert again.record.status == "completed" and again.record.succeeded == 2
    assert again.directory == storage.data_dir / "batches" / batch.id
    assert len(again.get_results()[0]) == 2


def test_file_store_writes_no_temp_files_and_readable_json(tmp_path):
    storage = FileBatchStorage(tmp_path)
    storage.save(record())
    assert [p.name for p in (tmp_path / "batches" / "lb_1").iterdir()] == ["batch.json"]


def test_a_garbled_record_is_a_clear_error(tmp_path):
    storage = FileBatchStorage(tmp_path)
    storage.save(record())
    (tmp_path / "batches" / "lb_1" / "batch.json").write_text("{not json")
    with pytest.raises(StorageError, match="unreadable"):
        storage.load("lb_1")


def test_duckdb_migrations_are_named_and_applied_once(tmp_path):
    path = tmp_path / "store.duckdb"
    DuckDBBatchStorage(path).save(record())
    again = DuckDBBatchStorage(path)
    assert again.applied_migrations() == [m.__name__ for m in MIGRATIONS]
    assert again.applied_migrations()[0] == "m001_initial"
    assert again.load("lb_1").id == "lb_1"


def test_duckdb_keeps_queryable_summary_and_job_rows(tmp_path):
    import duckdb

    path = tmp_path / "store.duckdb"
    DuckDBBatchStorage(path).save(record(name="n", succeeded=3))
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT name, succeeded FROM batches").fetchall() == [("n", 3)]
        assert con.execute("SELECT batch_id, key, status FROM jobs").fetchall() == [
            ("lb_1", "a1-j1", "submitting")
        ]


def test_summaries_list_the_table_columns_without_whole_records(storage):
    submitted = JobRecord(key="a1-j1", attempt=1, request_count=2, input_file="i", status="in_progress",
                          provider_job_id="batch_9")  # fmt: skip
    storage.save(record("lb_a", 1.0, name="a", owner="ann", connection={"kind": "openai", "name": "team"},
                        status="validating", request_count=4, succeeded=1, failed=1, not_run=1, pending=1,
                        estimated_cost_usd=0.25, advanced_at=5.0, advanced_by="w1"))  # fmt: skip
    storage.save(record("lb_b", 2.0, owner="bob", connection={"kind": "local"}, status="in_progress"))
    storage.save(BatchRecord(id="lb_c", endpoint="/v1/embeddings", created_at=3.0, jobs=[submitted]))
    found = storage.summaries()
    assert [s.id for s in found] == ["lb_c", "lb_b", "lb_a"]  # newest first
    assert found == [BatchSummary.of(r) for r in storage.list()]
    a = found[2]
    assert (a.name, a.owner, a.connection, a.status, a.advanced_at, a.advanced_by) == (
        "a", "ann", "team", "validating", 5.0, "w1")  # fmt: skip
    assert (a.request_count, a.succeeded, a.failed, a.not_run, a.pending) == (4, 1, 1, 1, 1)
    assert a.estimated_cost_usd == 0.25 and a.start_interrupted  # its one job never reached the provider
    assert found[1].connection == "local" and not found[0].start_interrupted and found[0].connection is None
    assert [s.id for s in storage.summaries(limit=2)] == ["lb_c", "lb_b"]
    if not isinstance(storage, MemoryStorage):  # its list() has no owner
        assert [s.id for s in storage.summaries(owner="ann")] == ["lb_a"]


def test_summary_is_a_flat_row_for_tables():
    row = record(name="n", connection={"kind": "local"}).summary()
    assert row["connection_kind"] == "local" and row["jobs"] == 1 and row["attempts"] == 1
    assert "connection" not in row and isinstance(row["created_at"], float)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[1, 2]", "a JSON list, not an object"),
        ('{"id": "../../etc", "endpoint": "x"}', "names another batch"),
    ],
)
def test_a_record_of_the_wrong_shape_or_batch_is_refused(tmp_path, content, expected):
    storage = FileBatchStorage(tmp_path)
    storage.save(record())
    (tmp_path / "batches" / "lb_1" / "batch.json").write_text(content)
    for call in (lambda: storage.load("lb_1"), storage.list):
        with pytest.raises(StorageError, match=expected):
            call()


def test_a_file_that_is_not_a_duckdb_store_is_not_called_locked(tmp_path):
    path = tmp_path / "langbatch.duckdb"
    path.write_text("not a database")
    with pytest.raises(StorageError, match="move it aside") as caught:
        DuckDBBatchStorage(path, lock_timeout=0.1).list()
    assert "held by another process" not in str(caught.value)


def test_an_unknown_id_names_the_store_that_may_have_it(tmp_path):
    with pytest.raises(BatchNotFoundError, match=r"storage=DuckDBBatchStorage\(\)"):
        FileBatchStorage(tmp_path).load("lb_1")
    with pytest.raises(BatchNotFoundError, match="langbatch --store files list"):
        DuckDBBatchStorage(data_dir=tmp_path).load("lb_1")
