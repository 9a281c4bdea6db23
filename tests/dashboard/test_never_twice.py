"""Never twice: a second press, a double click or a rerun during the first action makes no second batch and
sends no second Start, Retry or Cancel; the second press is answered with a quiet note, never an error."""

from __future__ import annotations

import common
import connections
import pytest
import streamlit as st

from langbatch_core import Batch

from .conftest import button, chat_lines, open_page, texts
from .test_flow import create, refresh_until_done


@pytest.fixture
def local_engine(engine, monkeypatch):
    monkeypatch.setenv(connections.ENGINE_URL_ENV, engine.base_url)
    return engine


def test_create_and_start_pressed_twice_makes_one_batch(local_engine):
    at = create(chat_lines(2))
    assert "started" in texts(at, "success")
    at.button(key="nb_start").click().run()
    assert not at.exception and not texts(at, "error")
    assert len(common.list_batches()) == 1
    assert "already made from this file" in texts(at, "info")


def test_create_then_create_and_start_starts_that_same_batch(local_engine):
    at = create(chat_lines(2), start=False)
    (made,) = common.list_batches()
    assert "Change the name to make another" in texts(at, "caption")
    at.button(key="nb_start").click().run()
    (record,) = common.list_batches()
    assert record.id == made.id and record.jobs  # started, not a second batch


def test_a_rerun_while_the_first_create_runs_makes_no_second_batch(local_engine, monkeypatch):
    can_start = common.can_start

    def interrupted(record):  # the first run stops after the batch is made and before its start, as when a
        st.stop()  # second click reruns the page: Streamlit stops a run at its next st call

    monkeypatch.setattr(common, "can_start", interrupted)
    at = create(chat_lines(2))
    assert len(common.list_batches()) == 1
    monkeypatch.setattr(common, "can_start", can_start)
    at.button(key="nb_start").click().run()
    (record,) = common.list_batches()
    assert record.jobs and "started" in texts(at, "success")


def test_another_name_makes_another_batch(local_engine):
    at = create(chat_lines(2), start=False)
    at.text_input(key="nb_name").input("second run").run()
    at.button(key="nb_create").click().run()
    assert len(common.list_batches()) == 2


def flaky_batch(local_engine):
    create(chat_lines(2) + chat_lines(1, prompt="[[500]] flaky {i}").replace(b"req-0", b"req-flaky"))
    at = refresh_until_done(open_page("batches"))
    local_engine.upstream.reset()
    return at


def flaky_sent(local_engine) -> int:
    return sum(1 for r in local_engine.upstream.received if "flaky" in r["body"]["messages"][0]["content"])


def test_retry_pressed_twice_on_the_same_drawing_retries_once(local_engine):
    at = flaky_batch(local_engine)
    retry = button(at, "Retry failed")
    retry.click().run()
    assert "Resubmitted 1 request(s)." in texts(at, "success")
    refresh_until_done(at)
    sent = flaky_sent(local_engine)
    retry.click().run()  # the button as first drawn, pressed again
    refresh_until_done(at)
    (record,) = common.list_batches()
    assert record.attempts == 2 and flaky_sent(local_engine) == sent


def test_a_stale_retry_start_or_cancel_is_a_quiet_note(local_engine):
    at = flaky_batch(local_engine)
    (record,) = common.list_batches()
    drawn = common.action_stamp(record)
    first = Batch.load(record.id, storage=common.storage())
    first.retry()  # the first press took effect
    first.wait(poll_interval=0.05)
    sent = flaky_sent(local_engine)
    for action, note in (
        ("retry", "was already retried"),
        ("start", "is already started"),
        ("cancel", "nothing to cancel"),
    ):
        at.session_state["bt_request"] = (record.id, action, drawn)
        at.run()
        assert not at.exception and not texts(at, "error"), texts(at, "error")
        assert note in texts(at, "info")
    assert common.list_batches()[0].attempts == 2 and flaky_sent(local_engine) == sent


def test_delete_confirmed_twice_is_harmless(local_engine):
    at = create(chat_lines(1), start=False)
    batch_id = at.session_state["selected_batch"]
    at = open_page("batches")
    at.button(key="bt_delete").click().run()
    yes = at.button(key="bt_delete_yes")
    yes.click().run()
    assert f"Batch {batch_id} deleted." in texts(at, "success")
    at.session_state["bt_request"] = (batch_id, "delete", "1.1")
    at.run()
    assert not texts(at, "error")


def test_a_cancel_message_claims_no_state_that_ends(local_engine):
    create(chat_lines(4, prompt="[[slow:3]] slow {i}"))
    at = open_page("batches")
    button(at, "Cancel").click().run()
    assert "Cancel sent" in texts(at, "success")
    assert "cancelling" not in texts(at, "success") + texts(at, "info")  # it outlives the cancelling state
    at = refresh_until_done(at)
    assert "cancelling" not in texts(at, "success") + texts(at, "info")
