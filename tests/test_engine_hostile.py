"""The local engine facing careless and hostile clients: malformed, huge, empty and aborted uploads, absurd
parameters, and files deleted under a running batch."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import openai
import pytest
from test_engine import CHAT, chat_line, results, run_batch, upload, wait

from langbatch_core.local.batches import BatchManager, BatchRun
from langbatch_core.local.state import EngineState


def stored_files(engine) -> list[str]:
    """Every name in the engine's file store (temp files included)."""
    return sorted(p.name for p in (Path(engine.data_dir) / "engine" / "files").iterdir())


def raw_exchange(engine, request: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes to the engine and return its answer (head and body)."""
    with socket.create_connection((engine.host, engine.port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < _length(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def _length(answer: bytes) -> int:
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line[15:])
    return 0


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"no boundary given"),
        ("multipart/form-data; boundary=xx", b"garbage that is not multipart"),
        (
            "multipart/form-data; boundary=xx",
            b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n{}\r\n'
            b'--xx\r\nContent-Disposition: form-data; name="file"; filename="b"\r\n\r\n{}\r\n--xx--\r\n',
        ),
    ],
    ids=["missing-boundary", "not-multipart", "two-files"],
)
def test_malformed_multipart_is_a_400_in_openai_shape(engine, content_type, body):
    answer = httpx.post(f"{engine.base_url}/files", content=body, headers={"content-type": content_type})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"].startswith("Bad request:")
    assert stored_files(engine) == []


def test_upload_declaring_more_than_200_mb_is_refused_before_its_body_is_read(engine):
    head = (
        b"POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=xx\r\n"
        b"Content-Length: %d\r\n\r\n" % (201 * 1024 * 1024)
    )
    answer = raw_exchange(engine, head)  # no body sent: the engine must answer from the headers alone
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"code":"file_too_large"' in answer and b"split it into smaller files" in answer
    assert stored_files(engine) == []


def test_chunked_upload_over_the_limit_is_413_and_nothing_is_stored(make_engine):
    engine = make_engine(max_file_bytes=50_000)
    client = openai.OpenAI(base_url=engine.base_url, api_key="k", max_retries=0)
    fits = upload(client, [chat_line(f"r{i}", "x" * 100) for i in range(100)])  # ~25 KB: accepted
    assert fits.bytes < 50_000

    def chunks():  # no Content-Length: the engine has to count while it reads
        boundary = b"--xx\r\n"
        yield boundary + b'Content-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        yield boundary + b'Content-Disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n'
        for i in range(200):
            yield (chat_line(f"r{i}", "y" * 500) + "\n").encode()
        yield b"\r\n--xx--\r\n"

    answer = httpx.post(
        f"{engine.base_url}/files",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=xx"},
    )
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "file_too_large"
    assert [f.id for f in client.files.list()] == [fits.id]
    assert stored_files(engine) == [fits.id]
    client.close()


def test_empty_upload_is_a_400_naming_the_file(openai_client, engine):
    with pytest.raises(openai.BadRequestError) as refused:
        openai_client.files.create(file=("empty.jsonl", b""), purpose="batch")
    assert refused.value.body["param"] == "file" and "empty" in refused.value.body["message"]
    assert openai_client.files.list().data == [] and stored_files(engine) == []


def test_a_client_vanishing_mid_upload_leaves_nothing_and_the_engine_serves_on(openai_client, engine):
    head = (
        b"POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=xx\r\n"
        b"Content-Length: 100000\r\n\r\n"
        b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n{"custom_id":'
    )
    with socket.create_connection((engine.host, engine.port), timeout=5) as sock:
        sock.sendall(head)  # ... and gone
    time.sleep(0.2)  # the engine notices the disconnect
    assert httpx.get(f"{engine.base_url}/health").status_code == 200
    assert openai_client.files.list().data == [] and stored_files(engine) == []
    assert upload(openai_client, [chat_line("a", "still here")]).bytes > 0


@pytest.mark.parametrize("window", ["99999999999999999999d", "400d", "1e9s", "-1h", "0s", "24 h"])
def test_absurd_completion_windows_are_400(openai_client, window):
    file = upload(openai_client, [chat_line("a", "x")])
    with pytest.raises(openai.BadRequestError) as refused:
        openai_client.batches.create(input_file_id=file.id, endpoint=CHAT, completion_window=window)
    assert refused.value.body["param"] == "completion_window"
    assert openai_client.batches.list().data == []


def test_input_deleted_while_its_batch_runs_is_kept_until_the_batch_ends(make_engine, upstream, openai_spec):
    first = make_engine(concurrency=2)
    client = openai.OpenAI(base_url=first.base_url, api_key="k", max_retries=0)
    batch = run_batch(client, [chat_line(f"r{i}", f"t{i} [[slow:0.05]]") for i in range(12)])
    wait(client, batch.id, {"in_progress"})
    deleted = client.files.delete(batch.input_file_id)  # as OpenAI: the file goes, the batch runs on
    openai_spec.check(deleted, "DeleteFileResponse")
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(batch.input_file_id)
    client.close()
    first.stop()  # and the restarted engine still has the requests to resume
    second = make_engine(concurrency=4)
    client = openai.OpenAI(base_url=second.base_url, api_key="k", max_retries=0)
    done = wait(client, batch.id)
    assert done.status == "completed" and set(results(client, done.output_file_id)) == {
        f"r{i}" for i in range(12)
    }
    assert batch.input_file_id not in stored_files(second)  # the bytes went with the batch
    client.close()


def test_input_deleted_after_its_batch_ended_is_removed_at_once(openai_client, engine):
    batch = wait(openai_client, run_batch(openai_client, [chat_line("a", "x")]).id)
    openai_client.files.delete(batch.input_file_id)
    assert batch.input_file_id not in stored_files(engine)
    assert batch.output_file_id in stored_files(engine)


def test_a_huge_batch_creation_body_is_413_not_read_whole(engine):
    answer = httpx.post(f"{engine.base_url}/batches", content=b'{"metadata": "' + b"x" * (2 << 20) + b'"}')
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "body_too_large"


def test_a_deeply_nested_line_is_reported_on_its_line_not_as_an_engine_failure(openai_client):
    file = openai_client.files.create(
        file=("deep.jsonl", (chat_line("a", "fine") + "\n" + "[" * 5000 + "]" * 5000 + "\n").encode()),
        purpose="batch",
    )
    created = openai_client.batches.create(input_file_id=file.id, endpoint=CHAT, completion_window="24h")
    batch = wait(openai_client, created.id)
    assert batch.status == "failed"
    assert [(e.line, e.code) for e in batch.errors.data] == [(2, "invalid_json")]


def test_input_shared_by_two_batches_outlives_the_first_to_end(tmp_path):
    state = EngineState(tmp_path)
    source = tmp_path / "requests.jsonl"
    source.write_text(chat_line("a", "x") + "\n")
    file = state.add_file(source, "requests.jsonl", "batch")
    first = {"id": "batch_1", "input_file_id": file["id"], "status": "completed"}
    second = {"id": "batch_2", "input_file_id": file["id"], "status": "in_progress"}
    for batch in (first, second):
        state.put(batch, "batch")
    manager = BatchManager(state, executor=None)  # no batch runs here: only the clean-up is checked
    state.delete_file(file["id"], keep_bytes=manager.uses_input(file["id"]))
    BatchRun(manager, first)._drop_deleted_input()
    assert state.file_path(file["id"]).exists()  # batch_2 still reads it
    second["status"] = "completed"
    state.put(second, "batch")
    BatchRun(manager, second)._drop_deleted_input()
    assert not state.file_path(file["id"]).exists()
    state.close()


def test_ids_with_path_tricks_name_nothing(engine):
    root = Path(engine.data_dir) / "engine"
    before = (root / "state.sqlite3").stat().st_size
    for trick in [
        "%2e%2e",
        "..%2fstate.sqlite3",
        "%2Fetc%2Fpasswd",
        "a%00b",
        "state.sqlite3",
        "%2e%2e%2f%2e%2e",
    ]:
        for method, path in [
            ("GET", f"/files/{trick}"),
            ("GET", f"/files/{trick}/content"),
            ("DELETE", f"/files/{trick}"),
            ("GET", f"/batches/{trick}"),
            ("POST", f"/batches/{trick}/cancel"),
        ]:
            answer = httpx.request(method, engine.base_url + path)
            assert answer.status_code == 404, (method, path)
            assert set(answer.json()["error"]) == {"message", "type", "param", "code"}
    assert (root / "state.sqlite3").stat().st_size == before


def test_concurrent_cancels_end_in_one_consistent_cancelled_batch(make_engine, upstream, openai_spec):
    import concurrent.futures

    engine = make_engine(concurrency=2)
    client = openai.OpenAI(base_url=engine.base_url, api_key="k", max_retries=0)
    batch = run_batch(client, [chat_line(f"r{i}", f"t{i} [[slow:0.1]]") for i in range(20)])
    wait(client, batch.id, {"in_progress"})
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: httpx.post(f"{engine.base_url}/batches/{batch.id}/cancel"), range(8))
        )
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["status"] for a in answers} <= {"cancelling", "cancelled"}
    done = wait(client, batch.id)
    openai_spec.check(done, "Batch")
    counts = done.request_counts
    assert done.status == "cancelled" and counts.completed + counts.failed == counts.total == 20
    finished = results(client, done.output_file_id) | results(client, done.error_file_id)
    assert len(finished) == 20
    client.close()
