"""One registry of connection kinds, saved connections in the core, errors that say which field is wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support.plugin import write_plugin

from langbatch_core.errors import ConfigurationError, SecretInSettingError
from langbatch_core.providers import Connection, connection_kind, connection_kinds, get_provider
from langbatch_core.providers.saved import (
    delete_connection,
    save_connection,
    saved_connection,
    saved_connections,
    store_path,
)


def test_the_builtin_kinds_say_their_label_key_and_url_needs():
    kinds = {kind.name: kind for kind in connection_kinds()}
    assert list(kinds)[:4] == ["local", "openai", "azure", "compatible"]
    assert [kinds[k].label for k in kinds][:4] == [
        "Local engine",
        "OpenAI",
        "Azure OpenAI",
        "OpenAI-compatible API",
    ]
    assert kinds["azure"].default_key_env == "AZURE_OPENAI_API_KEY" and kinds["azure"].takes_api_version
    assert kinds["compatible"].needs_base_url and not kinds["local"].needs_key
    assert Connection("azure").api_key_env == "AZURE_OPENAI_API_KEY"


def test_a_provider_installed_through_an_entry_point_is_a_kind_everywhere(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(write_plugin(tmp_path / "site")))
    acme = connection_kind("acme")
    assert acme.label == "Acme Batch"
    assert get_provider("acme").__name__ == "AcmeProvider"
    assert Connection("acme").api_key_env == "ACME_API_KEY"
    assert Connection("acme", name="mine").describe() == "mine: Acme Batch"
    save_connection("acme-eu", Connection("acme", base_url="https://eu.acme.example/v1"))
    assert saved_connection("acme-eu").kind == "acme"


def test_without_the_plugin_on_the_path_its_kind_is_unknown():
    with pytest.raises(
        ConfigurationError, match=r"Unknown connection kind 'acme'.*langbatch\.providers"
    ) as error:
        get_provider("acme")
    assert error.value.field == "kind"


def test_the_cli_offers_an_installed_provider(tmp_path):
    site = write_plugin(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    run = [sys.executable, "-m", "langbatch_core.cli"]
    listed = subprocess.run(
        [*run, "connections", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert "acme        Acme Batch" in listed.stdout, listed.stderr
    helped = subprocess.run([*run, "create", "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert "[local|openai|azure|compatible|" in helped.stdout and "|acme]" in helped.stdout, helped.stderr


def test_saved_connections_round_trip_without_secrets(isolated_data_dir):
    groq = Connection.compatible("https://api.groq.example/openai/v1", api_key_env="GROQ_API_KEY", model="m")
    saved = save_connection("groq", groq.with_limits(None))
    assert saved.name == "groq" and saved_connections() == [saved]
    assert json.loads(store_path().read_text()) == [
        {"name": "groq", "kind": "compatible", "base_url": "https://api.groq.example/openai/v1",
         "api_key_env": "GROQ_API_KEY", "model": "m", "api_version": None, "max_requests": None,
         "max_enqueued_tokens": None}
    ]  # fmt: skip
    save_connection("groq", Connection.compatible("https://other.example/v1"))  # replaced, by name
    assert [c.base_url for c in saved_connections()] == ["https://other.example/v1"]
    assert delete_connection("groq") and not delete_connection("groq")
    assert saved_connections() == []


@pytest.mark.parametrize("name", ["", "  ", "openai", "Azure OpenAI", "COMPATIBLE"])
def test_a_saved_connection_needs_its_own_name(name):
    with pytest.raises(ConfigurationError) as error:
        save_connection(name, Connection.compatible("https://x.example/v1"))
    assert error.value.field == "name"
    assert not store_path().exists()


def test_a_key_or_a_credential_is_refused_by_field_never_echoed():
    with pytest.raises(SecretInSettingError) as error:
        Connection.compatible("https://x.example/v1", api_key_env="gsk_abcdefghijklmnop1234567890")
    assert error.value.field == "api_key_env" and "gsk_" not in str(error.value)
    with pytest.raises(SecretInSettingError) as error:
        Connection.compatible("https://user:pw@x.example/v1")
    assert error.value.field == "base_url"
    with pytest.raises(ConfigurationError) as error:
        Connection("compatible")
    assert error.value.field == "base_url" and not isinstance(error.value, SecretInSettingError)


def test_connections_the_dashboard_saved_before_are_still_found(isolated_data_dir):
    earlier = isolated_data_dir / "dashboard" / "connections.json"
    earlier.parent.mkdir(parents=True)
    entry = {"name": "Old", "kind": "compatible", "base_url": "http://127.0.0.1:9/v1", "api_key_env": None,
             "model": None, "max_requests": 100, "max_enqueued_tokens": None}  # fmt: skip
    earlier.write_text(json.dumps([entry]))
    assert saved_connection("Old").limits.max_requests == 100
    save_connection("New", Connection.compatible("http://127.0.0.1:8/v1"))
    assert [c.name for c in saved_connections()] == ["Old", "New"]  # moved to the core's store


def test_the_cli_runs_a_batch_on_a_saved_connection(tmp_path, engine):
    from batch_support import write_chat_file
    from click.testing import CliRunner

    from langbatch_core import Batch
    from langbatch_core.cli import cli

    def langbatch(*args):
        result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    langbatch("connections", "add", "my-engine", "--base-url", engine.base_url, "--max-requests", "1")
    assert "my-engine" in langbatch("connections", "list")
    created = langbatch(
        "create", write_chat_file(tmp_path / "in.jsonl", ["a", "b"]), "--connection", "my-engine"
    )
    batch_id = created.split("Created batch ")[1].split(" ")[0]
    assert Batch.load(batch_id).connection.name == "my-engine"
    langbatch("start", batch_id)
    langbatch("wait", batch_id, "--poll-interval", "0.05")
    batch = Batch.load(batch_id)
    assert len(batch.record.jobs) == 2  # the saved limit: one request per job
    assert sorted(r["content"] for r in batch.get_results()[0]) == ["echo: a", "echo: b"]
    langbatch("connections", "remove", "my-engine")
    assert "No saved connections yet." in langbatch("connections", "list")


def test_a_plugin_that_fails_to_load_is_left_out_and_logged(tmp_path, monkeypatch, caplog):
    site = write_plugin(tmp_path / "site")
    points = site / "acme_langbatch-1.0.dist-info" / "entry_points.txt"
    points.write_text(points.read_text() + "broken = no_such_module_here:Provider\n")
    monkeypatch.syspath_prepend(str(site))
    names = [kind.name for kind in connection_kinds()]
    assert "acme" in names and "broken" not in names
    assert "no_such_module_here:Provider" in caplog.text


def test_an_unreadable_store_is_never_overwritten(isolated_data_dir):
    store_path().parent.mkdir(parents=True, exist_ok=True)
    store_path().write_text("{not json")
    assert saved_connections() == []
    with pytest.raises(ConfigurationError, match=r"connections\.json cannot be read"):
        save_connection("x", Connection.compatible("https://x.example/v1"))
    assert store_path().read_text() == "{not json"


def test_a_connection_of_a_provider_not_installed_now_is_kept(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        patch.syspath_prepend(str(write_plugin(tmp_path / "site")))
        save_connection("acme-eu", Connection("acme"))
    assert [c.name for c in saved_connections()] == ["acme-eu"]  # still listed, so it can be removed
    save_connection("other", Connection.compatible("https://x.example/v1"))
    assert [entry["name"] for entry in json.loads(store_path().read_text())] == ["acme-eu", "other"]
