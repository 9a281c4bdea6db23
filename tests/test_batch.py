"""The batch lifecycle against the local engine through the official client: create, start, split, status,
results, and the errors around them."""

from __future__ import annotations

import orjson
import pytest
from batch_support import CHAT, prompts_received, to_engine, write_chat_file

from langbatch_core import (
    Batch,
    BatchStateError,
    DuckDBBatchStorage,
    FileBatchStorage,
    InvalidRequestsError,
    Limits,
    OpenAIChatCompletionBatch,
    OpenAIEmbeddingBatch,
)
from langbatch_core.storage import default_storage


def test_a_file_batch_is_validated_and_gets_an_id(tmp_path, engine):
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", ["a", "b"]), connection=to_engine(engine)
    )
    assert batch.id.startswith("lb_")
    assert batch.record.request_count == 2
    assert batch.requests_path.read_bytes() == (tmp_path / "in.jsonl").read_bytes()
    assert batch.get_status() == "not_started"


def test_an_invalid_file_raises_with_every_issue(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = orjson.dumps(
        {"custom_id": "a", "method": "POST", "url": CHAT, "body": {"model": "m", "messages": []}}
    )
    path.write_bytes(good + b"\nnot json\n" + good + b"\n")
    with pytest.raises(InvalidRequestsError) as caught:
        OpenAIChatCompletionBatch(path)
    lines = {issue.line for issue in caught.value.issues}
    assert {1, 2, 3} <= lines  # empty messages, bad JSON, duplicate custom_id


def test_create_from_bodies_uses_default_model_and_request_kwargs(engine):
    x = {"messages": [{"role": "user", "content": "x"}]}
    y = {"messages": [{"role": "user", "content": "y"}], "temperature": 1}
    batch = OpenAIChatCompletionBatch.create(
        [x, y], request_kwargs={"max_tokens": 5, "temperature": 0}, connection=to_engine(engine)
    )
    first, second = batch.get_requests_by_custom_ids(["request-1", "request-2"])
    assert first["body"] == {"max_tokens": 5, "temperature": 0, **x, "model": "gpt-4o-mini"}
    assert first["url"] == CHAT and first["method"] == "POST"
    assert second["body"]["temperature"] == 1  # the body wins over request_kwargs


def test_create_errors_name_the_item(engine):
    with pytest.raises(InvalidRequestsError, match=r"line N is item N\)[^\n]*\n  line 2") as caught:
        OpenAIChatCompletionBatch.create([{"messages": [{"role": "user", "content": "x"}]}, {"messages": []}])
    assert [issue.line for issue in caught.value.issues] == [2]


def test_create_model_argument_overrides_the_default(engine):
    batch = OpenAIChatCompletionBatch.create(["hello"], model="gpt-4o", connection=to_engine(engine))
    (request,) = batch.get_requests_by_custom_ids(["request-1"])
    assert request["body"]["model"] == "gpt-4o"
    assert request["body"]["messages"] == [{"role": "user", "content": "hello"}]


def test_create_keeps_full_request_lines(engine):
    line = {
        "custom_id": "mine",
        "method": "POST",
        "url": CHAT,
        "body": {"model": "m", "messages": [{"role": "user", "content": "q"}]},
    }
    batch = OpenAIChatCompletionBatch.create([line], connection=to_engine(engine))
    assert batch.get_requests_by_custom_ids(["mine"]) == [line]


def test_start_splits_over_limits_and_tags_every_job(tmp_path, engine, openai_client, upstream):
    path = write_chat_file(tmp_path / "in.jsonl", [f"p{i}" for i in range(5)])
    batch = OpenAIChatCompletionBatch(path, connection=to_engine(engine, limits=Limits(max_requests=2)))
    batch.start()
    assert [job.request_count for job in batch.record.jobs] == [2, 2, 1]
    remote = {
        b.id: b for b in openai_client.batches.list() if b.metadata.get("langbatch_batch_id") == batch.id
    }
    assert set(remote) == {job.provider_job_id for job in batch.record.jobs}
    assert {b.metadata["langbatch_attempt"] for b in remote.values()} == {"1"}
    assert batch.wait(poll_interval=0.05) == "completed"
    assert prompts_received(upstream) == {f"p{i}": 1 for i in range(5)}


def test_start_twice_is_a_clear_error(tmp_path, engine):
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", ["a"]), connection=to_engine(engine)
    )
    batch.start()
    with pytest.raises(BatchStateError, match="already started"):
        batch.start()


def test_results_before_start_are_a_clear_error(tmp_path, engine):
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", ["a"]), connection=to_engine(engine)
    )
    with pytest.raises(BatchStateError, match="start"):
        batch.get_results()


def test_chat_results_carry_content_usage_and_failures(tmp_path, engine):
    path = write_chat_file(tmp_path / "in.jsonl", ["hello", "bad [[400]]"])
    batch = OpenAIChatCompletionBatch(path, connection=to_engine(engine))
    batch.start()
    batch.wait(poll_interval=0.05)
    successful, unsuccessful = batch.get_results()
    (ok,) = successful
    assert ok["custom_id"] == "request-1" and ok["content"] == "echo: hello"
    assert ok["usage"]["total_tokens"] > 0 and ok["model"] and ok["finish_reason"] == "stop"
    (failed,) = unsuccessful
    assert failed["custom_id"] == "request-2" and failed["status_code"] == 400
    assert "[[400]]" in failed["message"] or failed["message"]
    assert batch.get_unsuccessful_requests() == batch.get_requests_by_custom_ids(["request-2"])
    assert (batch.record.succeeded, batch.record.failed, batch.record.pending) == (1, 1, 0)


def test_embedding_results_carry_every_vector(engine):
    batch = OpenAIEmbeddingBatch.create(["one", "two"], connection=to_engine(engine))
    (request,) = batch.get_requests_by_custom_ids(["request-1"])
    assert request["body"] == {"input": "one", "model": "text-embedding-3-small"}
    batch.start()
    assert batch.wait(poll_interval=0.05) == "completed"
    successful, unsuccessful = batch.get_results()
    assert unsuccessful == []
    assert sorted(r["custom_id"] for r in successful) == ["request-1", "request-2"]
    assert all(len(r["embedding"]) == 8 and r["embeddings"] == [r["embedding"]] for r in successful)


def test_results_file_is_openai_result_jsonl(tmp_path, engine):
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", ["a", "b"]), connection=to_engine(engine)
    )
    batch.start()
    batch.wait(poll_interval=0.05)
    lines = [orjson.loads(line) for line in batch.get_results_file().read_bytes().splitlines()]
    assert sorted(line["custom_id"] for line in lines) == ["request-1", "request-2"]
    assert all(line["response"]["status_code"] == 200 and line["error"] is None for line in lines)


def test_wait_reports_progress_to_the_callback(tmp_path, engine):
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", ["a", "b", "c"]), connection=to_engine(engine)
    )
    batch.start()
    seen = []
    batch.wait(poll_interval=0.05, callback=seen.append)
    assert seen[-1]["status"] == "completed"
    assert (seen[-1]["total"], seen[-1]["succeeded"], seen[-1]["pending"]) == (3, 3, 0)


def test_save_load_round_trip_and_generic_load(tmp_path, engine):
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", ["a"]), connection=to_engine(engine), name="demo"
    )
    batch.start()
    batch.wait(poll_interval=0.05)
    again = Batch.load(batch.id)
    assert type(again) is OpenAIChatCompletionBatch
    assert again.record == default_storage().load(batch.id)
    assert again.name == "demo" and again.get_status() == "completed"
    assert again.get_results()[0][0]["content"] == "echo: a"


def test_python_keeps_batches_in_the_one_default_store_of_the_data_dir(tmp_path, isolated_data_dir):
    batch = OpenAIChatCompletionBatch(write_chat_file(tmp_path / "in.jsonl", ["a"]))
    batch.save()
    assert isinstance(batch.storage, DuckDBBatchStorage)
    assert batch.storage.path == isolated_data_dir / "langbatch.duckdb"
    assert batch.directory == isolated_data_dir / "batches" / batch.id
    assert [r.id for r in DuckDBBatchStorage(isolated_data_dir / "langbatch.duckdb").list()] == [batch.id]
    assert not (batch.directory / "batch.json").exists()


def test_load_without_storage_falls_back_to_the_file_store_of_earlier_versions(tmp_path, engine):
    old = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", ["a"]),
        connection=to_engine(engine),
        storage=FileBatchStorage(),
    )
    old.start()
    loaded = OpenAIChatCompletionBatch.load(old.id)
    assert isinstance(loaded.storage, FileBatchStorage) and loaded.record.jobs == old.record.jobs
    loaded.wait(poll_interval=0.05)
    assert FileBatchStorage().load(old.id).status == "completed"  # saved back where it was found
    assert default_storage().list() == []


def test_loading_a_chat_batch_as_embeddings_is_refused(tmp_path, engine):
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", ["a"]), connection=to_engine(engine)
    )
    batch.save()
    with pytest.raises(BatchStateError, match="OpenAIChatCompletionBatch"):
        OpenAIEmbeddingBatch.load(batch.id)


def test_delete_forgets_the_batch_and_its_files(tmp_path, engine):
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", ["a"]), connection=to_engine(engine)
    )
    batch.start()
    batch.wait(poll_interval=0.05)
    folder = batch.directory
    batch.delete()
    assert not folder.exists()
    assert default_storage().list() == []


def test_list_shows_counts_for_the_dashboard(tmp_path, engine):
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", ["a", "b [[400]]"]), connection=to_engine(engine), name="n"
    )
    batch.start()
    batch.wait(poll_interval=0.05)
    (row,) = [record.summary() for record in default_storage().list()]
    assert row["name"] == "n" and row["id"] == batch.id and row["status"] == "completed"
    assert (row["succeeded"], row["failed"], row["pending"], row["request_count"]) == (1, 1, 0, 2)
    assert row["connection_kind"] == "compatible" and row["model"] == "gpt-4o-mini" and row["jobs"] == 1
