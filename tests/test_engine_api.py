"""The local engine's HTTP API surface: files, listing with cursors, OpenAI error shapes and codes."""

from __future__ import annotations

import httpx
import openai
import pytest
from test_engine import CHAT, chat_line, run_batch, upload, wait


def test_files_upload_list_retrieve_content_delete(openai_client, openai_spec):
    first = upload(openai_client, [chat_line("a", "one")])
    second = upload(openai_client, [chat_line("b", "two")])
    listing = openai_client.files.list()
    assert [f.id for f in listing.data] == [second.id, first.id]  # newest first
    openai_spec.check(listing.model_dump(mode="json"), "ListFilesResponse")
    oldest_first = openai_client.files.list(order="asc", limit=1)
    assert [f.id for f in oldest_first.data] == [first.id] and oldest_first.has_more
    assert openai_client.files.retrieve(first.id).bytes == first.bytes
    assert '"custom_id": "a"' in openai_client.files.content(first.id).text
    deleted = openai_client.files.delete(first.id)
    openai_spec.check(deleted, "DeleteFileResponse")
    assert deleted.deleted and deleted.id == first.id
    with pytest.raises(openai.NotFoundError):
        openai_client.files.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        openai_client.files.content(first.id)


def test_batches_list_pages_with_after_cursor(openai_client, openai_spec):
    created = [run_batch(openai_client, [chat_line("a", f"n{i}")]).id for i in range(5)]
    page = openai_client.batches.list(limit=2)
    openai_spec.check(page.model_dump(mode="json"), "ListBatchesResponse")
    assert [b.id for b in page.data] == created[::-1][:2] and page.has_more
    assert page.first_id == created[-1] and page.last_id == created[-2]
    second = openai_client.batches.list(limit=2, after=page.last_id)
    assert [b.id for b in second.data] == created[::-1][2:4]
    assert [b.id for b in openai_client.batches.list(limit=2)] == created[::-1]
    last = openai_client.batches.list(limit=10, after=created[1])
    assert [b.id for b in last.data] == [created[0]] and not last.has_more
    for batch_id in created:
        wait(openai_client, batch_id)


def error_of(exc: openai.APIStatusError) -> dict:
    body = exc.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_unknown_ids_are_404_in_openai_error_shape(openai_client):
    with pytest.raises(openai.NotFoundError) as batch_missing:
        openai_client.batches.retrieve("batch_nope")
    assert "batch_nope" in error_of(batch_missing.value)["message"]
    with pytest.raises(openai.NotFoundError):
        openai_client.batches.cancel("batch_nope")
    with pytest.raises(openai.NotFoundError) as file_missing:
        openai_client.batches.create(input_file_id="file-nope", endpoint=CHAT, completion_window="24h")
    assert error_of(file_missing.value)["param"] == "input_file_id"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"endpoint": "/v1/images/nope"}, "endpoint"),
        ({"completion_window": "forever"}, "completion_window"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"metadata": {"k" * 65: "v"}}, "metadata"),
        ({"metadata": {"k": "v" * 513}}, "metadata.k"),
    ],
)
def test_bad_batch_parameters_are_400_naming_the_parameter(openai_client, change, param):
    file = upload(openai_client, [chat_line("a", "x")])
    arguments = {"input_file_id": file.id, "endpoint": CHAT, "completion_window": "24h", **change}
    with pytest.raises(openai.BadRequestError) as error:
        openai_client.batches.create(**arguments)
    assert error_of(error.value)["param"] == param
    assert openai_client.batches.list().data == []


def test_metadata_at_the_limits_is_accepted(openai_client):
    metadata = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}
    batch = run_batch(openai_client, [chat_line("a", "x")], metadata=metadata)
    assert batch.metadata == metadata
    wait(openai_client, batch.id)


def test_bad_uploads_and_queries_are_400(engine, openai_client):
    with pytest.raises(openai.BadRequestError) as error:
        openai_client.files.create(file=("x.jsonl", b"{}"), purpose="nonsense")
    assert error_of(error.value)["param"] == "purpose"
    with pytest.raises(openai.BadRequestError):
        openai_client.batches.list(limit=1000)
    answer = httpx.post(f"{engine.base_url}/batches", content=b"not json")
    assert answer.status_code == 400 and answer.json()["error"]["type"] == "invalid_request_error"
    file = openai_client.files.create(file=("x.txt", b"hello"), purpose="user_data")
    with pytest.raises(openai.BadRequestError):
        openai_client.batches.create(input_file_id=file.id, endpoint=CHAT, completion_window="24h")


def test_unknown_paths_and_methods_answer_json_errors(engine):
    missing = httpx.get(f"{engine.base_url}/nothing/here")
    assert missing.status_code == 404 and "error" in missing.json()
    wrong_method = httpx.delete(f"{engine.base_url}/batches")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


def test_health_describes_the_engine(engine, upstream):
    answer = httpx.get(engine.base_url.removesuffix("/v1") + "/health").json()
    assert answer["status"] == "ok" and answer["backend"] == "upstream"
    assert answer["upstream"] == upstream.base_url
    assert answer["data_dir"] == str(engine.data_dir)


def test_engine_refuses_an_endpoint_its_backend_does_not_serve(make_engine, openai_spec):
    from test_engine_faults import ScriptedBackend

    engine = make_engine(backend=ScriptedBackend([]))
    client = openai.OpenAI(base_url=engine.base_url, api_key="k", max_retries=0)
    file = upload(client, [chat_line("a", "x", url="/v1/embeddings")])
    with pytest.raises(openai.BadRequestError) as error:
        client.batches.create(input_file_id=file.id, endpoint="/v1/embeddings", completion_window="24h")
    assert error_of(error.value)["code"] == "unsupported_endpoint"
    client.close()


def test_short_completion_windows_are_accepted_as_durations(openai_client):
    file = upload(openai_client, [chat_line("a", "x")])
    batch = openai_client.batches.create(input_file_id=file.id, endpoint=CHAT, completion_window="90s")
    assert batch.completion_window == "90s" and batch.expires_at - batch.created_at in (89, 90, 91)
    wait(openai_client, batch.id)
