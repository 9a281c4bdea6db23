"""What a careless or hostile caller gets: clear LangBatchErrors, and nothing recorded or written by a call
that fails."""

from __future__ import annotations

import threading

import pytest
from batch_support import prompts_received, to_engine, write_chat_file

from langbatch_core import (
    Batch,
    BatchStateError,
    ConfigurationError,
    FileBatchStorage,
    InvalidRequestsError,
    Limits,
    MissingAPIKeyError,
    OpenAIChatCompletionBatch,
    OpenAIEmbeddingBatch,
)
from langbatch_core.storage import BatchRecord

BODY = {"messages": [{"role": "user", "content": "Hi"}]}


@pytest.mark.parametrize("requests", ["What is the capital of the moon?", BODY, b"{}"])
def test_create_refuses_one_request_instead_of_a_list(requests):
    with pytest.raises(InvalidRequestsError, match="takes a list of requests"):
        OpenAIChatCompletionBatch.create(requests)


@pytest.mark.parametrize(
    ("item", "expected"),
    [(1, "Item 2 given to create\\(\\) is a int"), (None, "is a NoneType"), (["x"], "is a list")],
)
def test_create_names_an_item_of_the_wrong_type(item, expected):
    with pytest.raises(InvalidRequestsError, match=expected) as caught:
        OpenAIChatCompletionBatch.create([BODY, item])
    assert [(issue.line, issue.code) for issue in caught.value.issues][:1] == [(2, "invalid_item")]


def test_create_names_an_item_holding_a_value_json_cannot_hold():
    with pytest.raises(InvalidRequestsError, match=r"Item 1 .* not JSON"):
        OpenAIChatCompletionBatch.create([{**BODY, "temperature": object()}])


def test_create_with_no_requests_says_so():
    with pytest.raises(InvalidRequestsError, match="got no requests"):
        OpenAIEmbeddingBatch.create([])


def test_request_kwargs_must_be_a_dict():
    with pytest.raises(ConfigurationError, match="request_kwargs must be a dict"):
        OpenAIChatCompletionBatch.create([BODY], request_kwargs="max_tokens=5")


def test_start_without_a_key_records_nothing(tmp_path):
    batch = OpenAIChatCompletionBatch(write_chat_file(tmp_path / "in.jsonl", ["a"]))
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        batch.start()
    assert batch.record.jobs == [] and batch.record.status == "not_started"
    assert FileBatchStorage().list() == []  # no batch left "validating" forever


def test_a_deleted_batch_says_so(tmp_path, engine):
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", ["a"]), connection=to_engine(engine)
    )
    batch.start()
    batch.wait(poll_interval=0.05)
    batch.delete()
    for call in (
        batch.get_status,
        batch.get_results,
        batch.save,
        lambda: batch.get_requests_by_custom_ids(["a"]),
    ):
        with pytest.raises(BatchStateError, match="was deleted"):
            call()


def test_results_file_before_any_job_finished_is_a_clear_error(tmp_path, make_engine):
    engine = make_engine(concurrency=1)
    path = write_chat_file(tmp_path / "in.jsonl", ["slow [[slow:0.5]]"])
    batch = OpenAIChatCompletionBatch(path, connection=to_engine(engine))
    batch.start()
    with pytest.raises(BatchStateError, match="no results yet"):
        batch.get_results_file()
    batch.wait(poll_interval=0.05)
    assert batch.get_results_file().read_bytes().count(b"\n") == 1


def test_one_custom_id_may_be_given_as_a_string(tmp_path):
    batch = OpenAIChatCompletionBatch(write_chat_file(tmp_path / "in.jsonl", ["a", "b"]))
    assert [r["custom_id"] for r in batch.get_requests_by_custom_ids("request-2")] == ["request-2"]
    assert batch.get_requests_by_custom_ids(["nope"]) == []


def test_an_unusable_data_dir_is_a_configuration_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LANGBATCH_DATA_DIR", str(blocker / "data"))
    with pytest.raises(ConfigurationError, match="LANGBATCH_DATA_DIR") as caught:
        OpenAIChatCompletionBatch(write_chat_file(tmp_path / "in.jsonl", ["a"]))
    assert str(blocker / "data") in str(caught.value)
    with pytest.raises(ConfigurationError, match="given to FileBatchStorage"):
        FileBatchStorage(blocker / "data").save(BatchRecord(id="lb_1", endpoint="/v1/embeddings"))


def test_two_starts_at_once_submit_every_request_once(tmp_path, engine, upstream, openai_client):
    path = write_chat_file(tmp_path / "in.jsonl", ["a", "b", "c", "d"])
    connection = to_engine(engine, limits=Limits(max_requests=1))
    first = OpenAIChatCompletionBatch(path, connection=connection)
    first.save()
    copies = [Batch.load(first.id, connection=connection) for _ in range(2)]  # e.g. two `langbatch start`
    barrier, outcomes = threading.Barrier(2), []

    def start(batch):
        barrier.wait()
        try:
            batch.start()
            outcomes.append("started")
        except BatchStateError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=start, args=(batch,)) for batch in copies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes)[0].endswith("retry() or cancel().") and sorted(outcomes)[1] == "started"
    assert copies[0].wait(poll_interval=0.05) == "completed"
    remote = [b for b in openai_client.batches.list() if b.metadata.get("langbatch_batch_id") == first.id]
    assert len(remote) == 4
    assert prompts_received(upstream) == {p: 1 for p in "abcd"}


def test_wait_refuses_a_negative_poll_interval(tmp_path, engine):
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", ["a"]), connection=to_engine(engine)
    )
    batch.start()
    with pytest.raises(ConfigurationError, match="0 seconds or more"):
        batch.wait(poll_interval=-1)


def test_the_default_connection_records_where_openai_base_url_points(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    batch = OpenAIChatCompletionBatch(write_chat_file(tmp_path / "in.jsonl", ["a"]))
    batch.save()
    monkeypatch.delenv("OPENAI_BASE_URL")  # a later shell without it must still poll where the jobs are
    assert OpenAIChatCompletionBatch.load(batch.id).connection.base_url == "http://127.0.0.1:9/v1"
