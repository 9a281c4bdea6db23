"""A batch on Mistral and on Gemini from the dashboard: created, started, watched and explored (each
provider's official SDK talking to its test server through a saved connection, as a gateway would be)."""

from __future__ import annotations

import connections
import pytest
from support.gemini_server import KEY as GEMINI_KEY
from support.gemini_server import GeminiServer
from support.mistral_server import KEY as MISTRAL_KEY
from support.mistral_server import MistralServer

from langbatch_core import Connection

from .conftest import chat_lines, open_page, texts
from .test_flow import refresh_until_done, status_of

PROVIDERS = {
    "mistral": (MistralServer, "MISTRAL_API_KEY", MISTRAL_KEY, "mistral-small-latest"),
    "gemini": (GeminiServer, "GEMINI_API_KEY", GEMINI_KEY, "gemini-2.5-flash"),
}


@pytest.mark.parametrize("kind", sorted(PROVIDERS))
def test_a_batch_on_the_provider_from_upload_to_results(kind, data_dir, monkeypatch):
    server_class, key_env, key, model = PROVIDERS[kind]
    monkeypatch.setenv(key_env, key)
    with server_class(per_poll=1) as server:
        connections.save_connection(Connection(kind, base_url=server.url, name=f"my {kind}"))
        at = open_page("new_batch")
        upload = ("questions.jsonl", chat_lines(3, model=model), "application/jsonl")
        at.file_uploader(key="nb_upload").set_value(upload).run()
        picker = at.selectbox(key="nb_conn")
        picker.select_index(next(i for i, o in enumerate(picker.options) if f"my {kind}" in o)).run()
        at.button(key="nb_start").click().run()
        assert not at.exception, at.exception
        assert "started" in texts(at, "success")

        at.switch_page("views/batches.py").run()
        assert status_of(at) in {"validating", "in_progress"}
        at = refresh_until_done(at)
        assert status_of(at) == "completed"
        assert {m.label: m.value for m in at.metric}["Succeeded"] == "3"
        at.button(key="bt_explore").click().run()
        assert not at.exception
        table = at.dataframe[0].value
        assert sorted(table["answer"]) == [f"echo: question {i}" for i in range(3)]
