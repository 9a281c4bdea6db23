"""One OpenAI-format request file, with tools, an image, a JSON schema and a line the API refuses, runs on
every provider and gives the same results table shape (each provider through its official SDK and its test
server). What a provider refuses by design (Bedrock: tools and structured output) is reported at validation,
by line, with the provider's rule; the rest of the file runs."""

from __future__ import annotations

import orjson
import pytest
from batch_support import to_engine
from support.anthropic_server import AnthropicServer
from support.bedrock_server import BedrockServer
from support.gemini_server import KEY as GEMINI_KEY
from support.gemini_server import GeminiServer
from support.mistral_server import KEY as MISTRAL_KEY
from support.mistral_server import MistralServer

from langbatch_core import Connection, InvalidRequestsError, Limits, OpenAIChatCompletionBatch, validate_file
from langbatch_core.providers import provider_for
from langbatch_core.results import load_results

CHAT = "/v1/chat/completions"
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
SCHEMA = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
ROLE = "arn:aws:iam::123456789012:role/BedrockBatch"


def request_file(path, model, skip=()):
    bodies = [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "plain"}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, IMAGE]}]},
        {"tools": [TOOL], "messages": [{"role": "user", "content": "call it"}]},
        {"response_format": SCHEMA, "temperature": 0.1, "messages": [{"role": "user", "content": "json"}]},
        {
            "max_tokens": 5,
            "stop": ["x"],
            "messages": [{"role": "user", "content": "refused [[400]] [[error]]"}],
        },
    ]
    lines = [
        {"custom_id": f"r{i}", "method": "POST", "url": CHAT, "body": {"model": model, **body}}
        for i, body in enumerate(bodies, start=1)
        if i not in skip
    ]
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


@pytest.fixture
def servers(monkeypatch):
    monkeypatch.setenv("MISTRAL_API_KEY", MISTRAL_KEY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with (
        MistralServer() as mistral,
        GeminiServer() as gemini,
        AnthropicServer(processing_seconds=0.2) as anthropic,
        BedrockServer(min_records=1) as bedrock,
    ):
        bedrock.s3().create_bucket(Bucket="lb-bucket")
        yield {"mistral": mistral, "gemini": gemini, "anthropic": anthropic, "bedrock": bedrock}


def bedrock_connection(server):
    # Bedrock runs no job under 100 records (its default quota): this account's quota is set to 1
    return Connection.bedrock(
        region="us-east-1", bucket="lb-bucket", role_arn=ROLE, base_url=server.base_url
    ).with_limits(Limits(min_requests=1))


def run(path, connection):
    batch = OpenAIChatCompletionBatch(path, connection=connection)
    batch.start()
    assert batch.wait(poll_interval=0.05) == "completed", connection.kind
    table = load_results(batch.get_results_file(), requests=path)
    return table.sort_values("custom_id", ignore_index=True)  # results come back in any order


def test_one_file_runs_on_every_provider_with_the_same_table_shape(tmp_path, servers, engine):
    runs = {
        "engine": (to_engine(engine), "gpt-4o-mini"),
        "anthropic": (Connection.anthropic(base_url=servers["anthropic"].base_url), "claude-haiku-4-5"),
        "mistral": (Connection.mistral(base_url=servers["mistral"].url), "pixtral-12b"),
        "gemini": (Connection.gemini(base_url=servers["gemini"].url), "gemini-2.5-flash"),
    }
    tables = {
        name: run(request_file(tmp_path / f"{name}.jsonl", model), c) for name, (c, model) in runs.items()
    }
    for name, table in tables.items():
        assert list(table["custom_id"]) == ["r1", "r2", "r3", "r4", "r5"], name
        assert list(table["status"]) == ["succeeded"] * 4 + ["failed"], name

    # Bedrock refuses tools and structured output by design: reported by line at validation, nothing sent
    bedrock = bedrock_connection(servers["bedrock"])
    path = request_file(tmp_path / "bedrock.jsonl", "anthropic.claude-haiku-4-5-20251001-v1:0")
    provider = provider_for(bedrock)
    report = validate_file(path, limits=provider.limits, capabilities=provider.capabilities)
    refused = {(issue.line, issue.param) for issue in report.issues}
    assert refused == {(3, "body.tools"), (4, "body.response_format")}
    assert all("Bedrock's batch inference takes no" in issue.message for issue in report.issues)
    with pytest.raises(InvalidRequestsError, match="line 3"):
        OpenAIChatCompletionBatch(path, connection=bedrock).start()
    assert servers["bedrock"].creates == []
    # ... and the rest of the file runs
    rest = request_file(
        tmp_path / "bedrock-rest.jsonl", "anthropic.claude-haiku-4-5-20251001-v1:0", skip=(3, 4)
    )
    tables["bedrock"] = run(rest, bedrock)
    assert list(tables["bedrock"]["custom_id"]) == ["r1", "r2", "r5"]
    assert list(tables["bedrock"]["status"]) == ["succeeded", "succeeded", "failed"]

    shapes = {name: list(table.columns) for name, table in tables.items()}
    assert all(shape == shapes["engine"] for shape in shapes.values()), shapes
