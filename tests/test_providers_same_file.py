"""One OpenAI-format request file, with tools, an image and a JSON schema, runs on every provider and gives
the same results table shape (each provider through its official SDK and its test server)."""

from __future__ import annotations

import orjson
import pytest
from batch_support import to_engine
from support.gemini_server import KEY as GEMINI_KEY
from support.gemini_server import GeminiServer
from support.mistral_server import KEY as MISTRAL_KEY
from support.mistral_server import MistralServer

from langbatch_core import Connection, OpenAIChatCompletionBatch
from langbatch_core.results import load_results

CHAT = "/v1/chat/completions"
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
SCHEMA = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}


def request_file(path, model):
    bodies = [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "plain"}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, IMAGE]}]},
        {"tools": [TOOL], "messages": [{"role": "user", "content": "call it"}]},
        {"response_format": SCHEMA, "temperature": 0.1, "messages": [{"role": "user", "content": "json"}]},
        {"max_tokens": 5, "stop": ["x"], "messages": [{"role": "user", "content": "refused [[400]]"}]},
    ]
    lines = [
        {"custom_id": f"r{i}", "method": "POST", "url": CHAT, "body": {"model": model, **body}}
        for i, body in enumerate(bodies, start=1)
    ]
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


@pytest.fixture
def servers(monkeypatch):
    monkeypatch.setenv("MISTRAL_API_KEY", MISTRAL_KEY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    with MistralServer() as mistral, GeminiServer() as gemini:
        yield mistral, gemini


def test_one_file_runs_on_every_provider_with_the_same_table_shape(tmp_path, servers, engine):
    mistral, gemini = servers
    runs = {
        "engine": (to_engine(engine), "gpt-4o-mini"),
        "mistral": (Connection.mistral(base_url=mistral.url), "pixtral-12b"),
        "gemini": (Connection.gemini(base_url=gemini.url), "gemini-2.5-flash"),
    }
    tables = {}
    for name, (connection, model) in runs.items():
        path = request_file(tmp_path / f"{name}.jsonl", model)
        batch = OpenAIChatCompletionBatch(path, connection=connection)
        batch.start()
        assert batch.wait(poll_interval=0.05) == "completed", name
        tables[name] = load_results(batch.get_results_file(), requests=path)
    shapes = {name: list(table.columns) for name, table in tables.items()}
    assert shapes["mistral"] == shapes["engine"] == shapes["gemini"]
    for name, table in tables.items():
        assert list(table["status"]) == ["succeeded"] * 4 + ["failed"], name
