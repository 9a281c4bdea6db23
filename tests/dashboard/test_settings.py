"""The Settings page: connections (never a key's value), data directory, local engine status."""

from __future__ import annotations

import json
from pathlib import Path

import connections
from support.plugin import write_plugin

from langbatch_core.providers import Connection
from langbatch_core.providers.saved import save_connection

from .conftest import chat_lines, open_page, texts
from .test_new_batch import upload


def connection_rows(at) -> dict:
    table = at.dataframe[0].value
    return {row["name"]: row for row in table.to_dict("records")}


def everything(at) -> str:
    return json.dumps([str(e) for e in at.main]) + json.dumps([str(e) for e in at.sidebar])


def test_builtin_connections_show_whether_a_key_is_configured_never_its_value(data_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value-987")
    at = open_page("settings")
    assert not at.exception
    rows = connection_rows(at)
    assert rows["Local engine"]["key configured"] is True
    assert rows["OpenAI"]["key configured"] is True
    assert rows["OpenAI"]["key variable"] == "OPENAI_API_KEY"
    assert rows["Azure OpenAI"]["key configured"] is False
    assert "AZURE_OPENAI_API_KEY" in texts(at, "info")
    # whether a key is there is what people look for: before the wide columns, never scrolled out of view
    assert list(at.dataframe[0].value.columns)[:4] == ["name", "kind", "key configured", "key variable"]
    assert "sk-secret-value-987" not in everything(at)
    assert str(data_dir) in texts(at, "code")


def fill_connection(at, **fields):
    for key, value in fields.items():
        at.text_input(key=key).input(value)
    at.button[0].click()  # the form's submit button
    return at.run()


def test_a_compatible_connection_is_saved_without_any_secret(data_dir):
    at = fill_connection(
        open_page("settings"),
        conn_name="Groq",
        conn_url="https://api.groq.example/openai/v1",
        conn_key_env="GROQ_API_KEY",
    )
    assert not at.exception
    assert "Connection saved" in texts(at, "success")
    saved = json.loads((data_dir / "connections.json").read_text())
    assert saved[0]["name"] == "Groq" and saved[0]["api_key_env"] == "GROQ_API_KEY"
    at = open_page("settings")
    assert connection_rows(at)["Groq"]["key configured"] is False


def test_a_key_pasted_where_its_variable_name_goes_is_refused(data_dir):
    at = fill_connection(
        open_page("settings"), conn_name="X", conn_url="https://x.example/v1", conn_key_env="sk-proj-abc123"
    )
    assert "never the key itself" in texts(at, "error")
    assert not (data_dir / "connections.json").exists()


def test_a_base_url_without_a_scheme_is_refused(data_dir):
    at = fill_connection(open_page("settings"), conn_name="X", conn_url="api.example.com")
    assert "must start with http" in texts(at, "error")


def test_saved_connections_can_be_removed(data_dir):
    save_connection("Mine", Connection.compatible("http://127.0.0.1:9/v1"))
    at = open_page("settings")
    at.button(key="conn_delete").click().run()
    assert "Mine" not in connection_rows(at)


def test_engine_status_shows_a_running_engine(data_dir, engine, monkeypatch):
    monkeypatch.setenv(connections.ENGINE_URL_ENV, engine.base_url)
    at = open_page("settings")
    assert "is running" in texts(at, "success")
    assert engine.base_url in texts(at, "text")


def test_the_shared_engine_is_shown_and_stopped_from_the_page(data_dir, upstream):
    from langbatch_core.local import ensure_local_engine
    from langbatch_core.local.engine import read_info

    url = ensure_local_engine(data_dir, backend=f"upstream:{upstream.base_url}")
    pid = read_info(data_dir / "engine")["pid"]
    at = open_page("settings")
    shown = texts(at, "text")
    assert url in shown and str(pid) in shown and str(data_dir) in shown and "upstream" in shown
    at.button(key="engine_stop").click().run()
    assert not at.exception
    assert "stopped" in texts(at, "success") and "not running" in texts(at, "info")
    assert read_info(data_dir / "engine") is None
    assert not _running(pid)


def _running(pid: int) -> bool:
    """True while ``pid`` runs: not gone, and not a zombie waiting for its parent (this process)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_page_says_where_the_batches_are(data_dir):
    code = texts(open_page("settings"), "code")
    assert str(data_dir / "langbatch.duckdb") in code and str(data_dir / "batches") in code


def test_engine_status_says_when_the_named_engine_does_not_answer(data_dir, monkeypatch):
    monkeypatch.setenv(connections.ENGINE_URL_ENV, "http://127.0.0.1:9/v1")
    at = open_page("settings")
    assert "does not answer" in texts(at, "error")


def test_engine_status_offers_to_start_one_when_none_runs(data_dir):
    at = open_page("settings")
    assert "not running" in texts(at, "info")
    assert at.button(key="engine_start")


def test_a_key_in_st_secrets_counts_as_configured_and_stays_hidden(data_dir):
    from streamlit.testing.v1 import AppTest

    from .conftest import APP

    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["OPENAI_API_KEY"] = "sk-from-secrets-555"
    at.run()
    at.switch_page("views/settings.py").run()
    assert connection_rows(at)["OpenAI"]["key configured"] is True
    assert "sk-from-secrets-555" not in everything(at)


def test_a_provider_installed_through_an_entry_point_is_offered_everywhere(data_dir, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(write_plugin(tmp_path / "site")))
    at = open_page("settings")
    assert not at.exception
    row = connection_rows(at)["Acme Batch"]
    assert row["kind"] == "Acme Batch" and row["key variable"] == "ACME_API_KEY"
    assert "Acme Batch" in at.selectbox(key="conn_kind").options
    assert "Acme Batch" in run_picker().options


def test_a_connection_saved_from_the_cli_is_listed_and_offered(data_dir):
    from click.testing import CliRunner

    from langbatch_core.cli import cli

    added = CliRunner().invoke(
        cli, ["connections", "add", "my-vllm", "--base-url", "http://127.0.0.1:9/v1", "--max-requests", "7"]
    )
    assert added.exit_code == 0, added.output
    at = open_page("settings")
    assert connection_rows(at)["my-vllm"]["max requests/job"] == "7"
    assert "my-vllm (OpenAI-compatible API)" in run_picker().options


def run_picker():
    """The New batch page's connection picker, once a file is uploaded."""
    return upload(open_page("new_batch"), "q.jsonl", chat_lines(1)).selectbox(key="nb_conn")


def test_a_wrong_url_in_an_endpoint_variable_does_not_break_the_page(data_dir, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "my-resource.openai.azure.com")
    at = open_page("settings")
    assert not at.exception
    assert "Azure OpenAI" in connection_rows(at)
