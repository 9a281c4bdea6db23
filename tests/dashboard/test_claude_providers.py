"""Anthropic and Bedrock reach the dashboard through the one registry of kinds, with no list of their own:
Settings lists them, and a batch on Anthropic is created, started, watched and explored."""

from __future__ import annotations

import pytest
from support.anthropic_server import AnthropicServer

from .conftest import chat_lines, open_page, texts
from .test_flow import refresh_until_done, status_of


def test_settings_lists_anthropic_and_bedrock_with_their_key_variables(data_dir, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-value-never-shown-42")
    at = open_page("settings")
    assert not at.exception
    rows = {row["name"]: row for row in at.dataframe[0].value.to_dict("records")}
    assert rows["Anthropic"]["key variable"] == "ANTHROPIC_API_KEY"
    assert rows["Anthropic"]["key configured"] is True
    assert rows["AWS Bedrock"]["key variable"] == "AWS_ACCESS_KEY_ID"
    assert "test-value-never-shown-42" not in str(list(at.main))


@pytest.fixture
def anthropic(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    with AnthropicServer(processing_seconds=0.5) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        yield server


def test_a_batch_on_anthropic_is_created_started_watched_and_explored(data_dir, anthropic):
    at = open_page("new_batch")
    at.file_uploader(key="nb_upload").set_value(
        ("q.jsonl", chat_lines(3, model="claude-haiku-4-5"), "x")
    ).run()
    labels = at.selectbox(key="nb_conn").options
    at.selectbox(key="nb_conn").select_index(labels.index("Anthropic")).run()
    at.button(key="nb_start").click().run()
    assert not at.exception, at.exception
    assert "started" in texts(at, "success")
    assert len(anthropic.created) == 1
    at.switch_page("views/batches.py").run()
    at = refresh_until_done(at)
    assert status_of(at) == "completed"
    at.button(key="bt_explore").click().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["answer"]) == [f"echo: question {i}" for i in range(3)]
