"""Batch files on an S3-compatible store (moto's server: real HTTP on 127.0.0.1), with records in PostgreSQL:
three "machines" (three data directories) create, advance and read one batch; the local folder stays the
default when LANGBATCH_FILES is unset."""

from __future__ import annotations

import pytest
from batch_support import to_engine, write_chat_file
from support.postgres import free_port

from langbatch_core import Batch, ConfigurationError, OpenAIChatCompletionBatch
from langbatch_core.storage import DuckDBBatchStorage, default_storage
from langbatch_core.storage.shared_files import SharedFilesStorage
from langbatch_core.worker import Worker


@pytest.fixture
def s3(monkeypatch):
    """A moto S3 server with an empty bucket ``team``; boto3 finds it through AWS_ENDPOINT_URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3")
    client.create_bucket(Bucket="team")
    yield client
    server.stop()


def objects(client, prefix="lb/"):
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket="team", Prefix=prefix).get("Contents", []))


def test_machines_sharing_a_store_and_a_bucket_share_the_batch_files(
    tmp_path, engine, postgres_url, s3, monkeypatch
):
    monkeypatch.setenv("LANGBATCH_STORE", postgres_url)
    monkeypatch.setenv("LANGBATCH_FILES", "s3://team/lb")
    machine_a, machine_b, machine_c = (default_storage(tmp_path / name) for name in ("a", "b", "c"))
    assert isinstance(machine_a, SharedFilesStorage)
    requests = write_chat_file(tmp_path / "in.jsonl", ["one", "two", "three"])
    batch = OpenAIChatCompletionBatch(requests, connection=to_engine(engine), storage=machine_a)
    batch.start()
    prefix = f"lb/batches/{batch.id}/"
    assert f"{prefix}requests.jsonl" in objects(s3) and f"{prefix}jobs/a1-j1/input.jsonl" in objects(s3)
    assert not [key for key in objects(s3) if "/." in key]  # no lock or temp file leaves the machine

    worker = Worker(machine_b, name="worker-b", poll_interval=0.05)  # machine B never saw the batch
    while Batch.load(batch.id, storage=machine_b).record.status != "completed":
        worker.run_once()
    assert f"{prefix}results.jsonl" in objects(s3)

    on_c = Batch.load(batch.id, storage=machine_c)  # an empty data directory
    answers, failures = on_c.get_results()
    assert len(answers) == 3 and not failures
    assert on_c.directory == tmp_path / "c" / "batches" / batch.id
    again = Batch.load(batch.id, storage=machine_a)  # A's results.jsonl did not exist: B's is taken
    assert again.record.succeeded == 3 and len(again.get_results()[0]) == 3

    on_c.delete()
    assert objects(s3, prefix) == []


def test_a_changed_file_is_uploaded_once_and_taken_by_the_other_machines(tmp_path, s3):
    inner_a, inner_b = (
        DuckDBBatchStorage(data_dir=tmp_path / "a"),
        DuckDBBatchStorage(data_dir=tmp_path / "b"),
    )
    a, b = SharedFilesStorage(inner_a, "s3://team/lb"), SharedFilesStorage(inner_b, "s3://team/lb")
    folder = a.batch_dir("lb_1")
    folder.mkdir(parents=True)
    (folder / "results.jsonl").write_text("first\n")
    assert a.push("lb_1") == ["results.jsonl"]
    assert a.push("lb_1") == []  # unchanged: not sent again
    assert b.pull("lb_1") == ["results.jsonl"] and b.pull("lb_1") == []
    (folder / "results.jsonl").write_text("second, longer\n")
    assert a.push("lb_1") == ["results.jsonl"]
    assert b.pull("lb_1") == ["results.jsonl"]
    assert (b.batch_dir("lb_1") / "results.jsonl").read_text() == "second, longer\n"


def test_the_joined_table_kept_of_a_table_batch_stays_on_its_machine(tmp_path, engine, s3):
    import pandas as pd

    store = SharedFilesStorage(DuckDBBatchStorage(data_dir=tmp_path / "a"), "s3://team/lb")
    rows = pd.DataFrame({"sku": ["a", "b"]})
    batch = OpenAIChatCompletionBatch.from_table(
        rows, template="Say {{ sku }}", connection=to_engine(engine), storage=store
    )
    batch.start()
    batch.wait(poll_interval=0.05, timeout=60)
    assert (batch.directory / ".joined.parquet").is_file()  # derived data: another machine joins its own
    shared = objects(s3, f"lb/batches/{batch.id}/")
    assert f"lb/batches/{batch.id}/results.jsonl" in shared and not [k for k in shared if "joined" in k]


def test_the_local_folder_stays_the_default_and_a_bad_setting_is_clear(monkeypatch):
    assert isinstance(default_storage(), DuckDBBatchStorage)
    monkeypatch.setenv("LANGBATCH_FILES", "team-bucket/prefix")
    with pytest.raises(ConfigurationError, match=r"like s3://bucket/prefix"):
        default_storage()


def test_an_unreachable_object_store_is_a_clear_error(tmp_path, monkeypatch):
    from langbatch_core import StorageError

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    store = SharedFilesStorage(DuckDBBatchStorage(data_dir=tmp_path), "s3://team/lb")
    (store.batch_dir("lb_1")).mkdir(parents=True)
    (store.batch_dir("lb_1") / "requests.jsonl").write_text("{}\n")
    with pytest.raises(StorageError, match=r"Cannot upload the files of batch lb_1 at s3://team/lb"):
        store.push("lb_1")
