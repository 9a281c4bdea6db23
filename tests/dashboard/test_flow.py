"""Whole journeys through the pages against a real local engine (upstream backend): create, start, watch,
retry, cancel, delete, explore; and the failures a user meets on the way (engine down, no key)."""

from __future__ import annotations

import json
import time

import common
import connections
import pytest
from streamlit.testing.v1 import AppTest

from .conftest import button, chat_lines, open_page, texts


@pytest.fixture
def local_engine(engine, monkeypatch):
    """The dashboard's local connection points at the test engine."""
    monkeypatch.setenv(connections.ENGINE_URL_ENV, engine.base_url)
    return engine


def create(data: bytes, start: bool = True, connection: int = 0) -> AppTest:
    at = open_page("new_batch")
    at.file_uploader(key="nb_upload").set_value(("questions.jsonl", data, "application/jsonl")).run()
    at.selectbox(key="nb_conn").select_index(connection).run()
    at.button(key="nb_start" if start else "nb_create").click().run()
    assert not at.exception, at.exception
    return at


def status_of(at: AppTest) -> str:
    """The status the details panel shows."""
    line = next(t.value for t in at.text if "Status: " in t.value)
    return line.split("Status: ")[1].split()[0]


def refresh_until_done(at: AppTest, timeout: float = 30) -> AppTest:
    deadline = time.monotonic() + timeout
    while status_of(at) in common.ACTIVE_STATUSES and time.monotonic() < deadline:
        time.sleep(0.2)
        button(at, "Refresh").click().run()
    return at


def test_upload_start_watch_explore(local_engine):
    # 40 requests of 0.8 s through 16 workers: about 2.4 s, long enough to watch it run
    at = create(chat_lines(40, prompt="[[slow:0.8]] question {i}"))
    assert "started" in texts(at, "success")
    at.switch_page("views/batches.py").run()
    assert "Refreshing every" in texts(at, "caption")  # the page polls by itself while it runs
    at = refresh_until_done(at)
    assert status_of(at) == "completed"
    assert {m.label: m.value for m in at.metric}["Succeeded"] == "40"
    assert [b.label for b in at.get("download_button")] == [
        "Download input (JSONL)",
        "Download results (JSONL)",
    ]
    at.button(key="bt_explore").click().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["answer"]) == sorted(f"echo: [[slow:0.8]] question {i}" for i in range(40))
    assert set(table["status"]) == {"succeeded"}


def test_retry_resubmits_only_the_failed_requests(local_engine):
    data = chat_lines(3) + chat_lines(1, prompt="[[500]] flaky {i}").replace(b"req-0", b"req-flaky")
    create(data)
    at = refresh_until_done(open_page("batches"))
    assert {m.label: m.value for m in at.metric}["Failed"] == "1"
    local_engine.upstream.reset()
    button(at, "Retry failed").click().run()
    assert "Resubmitted 1 request(s)." in texts(at, "success")
    at = refresh_until_done(at)
    sent = {r["body"]["messages"][0]["content"] for r in local_engine.upstream.received}
    assert sent == {"[[500]] flaky 0"}  # the successes were not sent again
    assert {m.label: m.value for m in at.metric}["Succeeded"] == "3"


def test_cancel_a_running_batch(local_engine):
    create(chat_lines(4, prompt="[[slow:3]] slow {i}"))
    at = open_page("batches")
    button(at, "Cancel").click().run()
    assert not at.exception
    assert status_of(at) in {"cancelling", "cancelled"}


def test_delete_asks_for_confirmation_then_removes_the_batch_and_its_files(local_engine):
    at = create(chat_lines(2), start=False)
    batch_id = at.session_state["selected_batch"]
    folder = common.storage().batch_dir(batch_id)
    assert folder.exists()
    at = open_page("batches")
    at.button(key="bt_delete").click().run()
    assert "cannot be undone" in texts(at, "warning")
    at.button(key="bt_delete_no").click().run()
    assert [r.id for r in common.list_batches()] == [batch_id]
    at.button(key="bt_delete").click().run()
    at.button(key="bt_delete_yes").click().run()
    assert f"Batch {batch_id} deleted." in texts(at, "success")
    assert common.list_batches() == [] and not folder.exists()


def test_start_later_from_the_batches_page(local_engine):
    create(chat_lines(2), start=False)
    at = open_page("batches")
    assert status_of(at) == "not_started"
    button(at, "Start").click().run()
    assert "started" in texts(at, "success")
    assert status_of(refresh_until_done(at)) == "completed"


def test_engine_down_is_a_clear_message_and_the_batch_is_kept(data_dir, monkeypatch):
    monkeypatch.setenv(connections.ENGINE_URL_ENV, "http://127.0.0.1:9/v1")
    at = create(chat_lines(2))
    assert "cannot be reached" in texts(at, "error").replace("\\", "")
    assert "created but not started" in texts(at, "info")
    assert not at.exception
    assert len(common.list_batches()) == 1  # kept: starting it again finishes the submission
    at = open_page("batches")
    assert button(at, "Start").disabled is False


def test_no_key_for_openai_says_which_variable_to_set(data_dir):
    at = create(chat_lines(2), start=False, connection=1)  # OpenAI, no OPENAI_API_KEY
    assert not at.exception
    shown = texts(at, "error") + texts(at, "success") + texts(at, "warning")
    assert "OPENAI_API_KEY" in shown
    if common.list_batches():  # created (keys are needed only to start): starting says the same
        at = open_page("batches")
        button(at, "Start").click().run()
        assert "OPENAI_API_KEY" in texts(at, "error").replace("\\", "")


def test_an_embeddings_batch_shows_its_vectors_sizes(local_engine):
    lines = [
        {"custom_id": f"e{i}", "method": "POST", "url": "/v1/embeddings",
         "body": {"model": "text-embedding-3-small", "input": f"sentence {i}"}}
        for i in range(3)
    ]  # fmt: skip
    create("".join(json.dumps(line) + "\n" for line in lines).encode())
    at = refresh_until_done(open_page("batches"))
    assert status_of(at) == "completed"
    at.button(key="bt_explore").click().run()
    table = at.dataframe[0].value
    assert set(table["status"]) == {"succeeded"} and table["embedding_dim"].notna().all()
    assert list(table["prompt"]) == [f"sentence {i}" for i in range(3)]


def test_a_newcomer_runs_the_bundled_sample_in_three_clicks(local_engine):
    at = open_page("new_batch")
    at.radio(key="nb_source").set_value("Try a sample").run()
    at.button(key="nb_start").click().run()
    assert "started" in texts(at, "success")
    at = refresh_until_done(open_page("batches"))
    assert status_of(at) == "completed"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Failed"] == "0" and metrics["Succeeded"] == metrics["Requests"]


def test_retry_explains_when_only_invalid_requests_failed(local_engine):
    create(chat_lines(2) + chat_lines(1, prompt="[[400]] bad {i}").replace(b"req-0", b"req-bad"))
    at = refresh_until_done(open_page("batches"))
    button(at, "Retry failed").click().run()
    assert "Nothing to retry" in texts(at, "info")
    assert {m.label: m.value for m in at.metric}["Failed"] == "1"


def test_a_batch_name_is_a_label_never_a_path(local_engine, data_dir):
    at = open_page("new_batch")
    at.file_uploader(key="nb_upload").set_value(("q.jsonl", chat_lines(1), "application/jsonl")).run()
    at.text_input(key="nb_name").input("../../../escape\x00\n").run()
    at.button(key="nb_create").click().run()
    (record,) = common.list_batches()
    assert record.name == "../../../escape"
    assert not (data_dir.parent / "escape").exists() and not (data_dir.parent.parent / "escape").exists()
    assert common.storage().batch_dir(record.id).is_relative_to(data_dir)
