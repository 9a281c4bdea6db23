"""Connections, the provider registry, and SDK errors translated into the LangBatchError tree."""

from __future__ import annotations

import socket

import httpx2
import openai
import pytest
from batch_support import write_chat_file

from langbatch_core import (
    AuthenticationError,
    ConfigurationError,
    Connection,
    Limits,
    MissingAPIKeyError,
    OpenAIChatCompletionBatch,
    ProviderError,
    ProviderNotFoundError,
    ProviderUnavailableError,
    RateLimitError,
)
from langbatch_core.providers import OpenAIProvider, get_provider, provider_for, translate_error
from langbatch_core.providers.openai import make_client

REQUEST = httpx2.Request("GET", "http://127.0.0.1/v1/batches")


def status_error(cls, code):
    body = {"error": {"message": f"said {code}", "type": "x", "code": None}}
    return cls(f"Error code: {code}", response=httpx2.Response(code, request=REQUEST), body=body)


@pytest.mark.parametrize(
    ("cls", "code", "expected"),
    [
        (openai.AuthenticationError, 401, AuthenticationError),
        (openai.PermissionDeniedError, 403, AuthenticationError),
        (openai.RateLimitError, 429, RateLimitError),
        (openai.NotFoundError, 404, ProviderNotFoundError),
        (openai.InternalServerError, 500, ProviderUnavailableError),
        (openai.BadRequestError, 400, ProviderError),
        (openai.ConflictError, 409, ProviderError),
        (openai.UnprocessableEntityError, 422, ProviderError),
    ],
)
def test_status_errors_are_translated(cls, code, expected):
    error = translate_error(status_error(cls, code), Connection.openai(), "create the batch job")
    assert type(error) is expected
    assert error.status_code == code and f"said {code}" in str(error) and "create the batch job" in str(error)


def test_no_sdk_error_is_left_unmapped():
    connection = Connection.openai()
    for name in dir(openai):
        cls = getattr(openai, name)
        if not (isinstance(cls, type) and issubclass(cls, openai.OpenAIError)) or name.startswith("_"):
            continue
        try:
            exc = status_error(cls, 418) if issubclass(cls, openai.APIStatusError) else cls(request=REQUEST)
        except TypeError:  # constructors of their own: an instance without arguments will do
            exc = cls.__new__(cls)
        assert isinstance(translate_error(exc, connection, "act"), ProviderError), name


def test_rate_limit_message_says_what_to_do():
    error = translate_error(
        status_error(openai.RateLimitError, 429), Connection.openai(), "create the batch job"
    )
    assert "try again" in str(error)


def test_missing_openai_key_names_the_variable(tmp_path):
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", ["a"])
    )  # validating needs no key
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        batch.start()
    assert batch.record.jobs == [] or all(j.provider_job_id is None for j in batch.record.jobs)


def test_missing_azure_key_names_the_variable(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com")
    with pytest.raises(MissingAPIKeyError, match="AZURE_OPENAI_API_KEY"):
        make_client(Connection.azure())


def test_compatible_key_variable_is_named_when_missing():
    with pytest.raises(MissingAPIKeyError, match="GROQ_API_KEY"):
        make_client(Connection.compatible("https://api.groq.com/openai/v1", api_key_env="GROQ_API_KEY"))


def test_azure_uses_its_v1_api_by_default(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "dummy")
    client = make_client(Connection.azure("https://example.openai.azure.com/"))
    assert str(client.base_url) == "https://example.openai.azure.com/openai/v1/"
    assert client.api_key == "dummy"


def test_azure_with_an_api_version_uses_the_azure_client(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "dummy")
    client = make_client(Connection.azure("https://example.openai.azure.com", api_version="2024-10-21"))
    assert isinstance(client, openai.AzureOpenAI)
    assert str(client.base_url).startswith("https://example.openai.azure.com/openai")


def test_azure_without_endpoint_is_a_configuration_error(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "dummy")
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_ENDPOINT"):
        make_client(Connection.azure())


def test_default_connection_follows_openai_base_url(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "dummy")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert str(make_client(Connection.openai()).base_url) == "http://127.0.0.1:9/v1/"


def test_a_key_given_as_api_key_env_is_refused():
    with pytest.raises(ConfigurationError, match="NAME of the environment variable"):
        Connection.compatible("http://x/v1", api_key_env="sk-proj-abc123")


def test_connection_round_trips_through_a_dict():
    connection = Connection.compatible("http://h/v1", api_key_env="K", model="m", name="n", limits=Limits(7))
    data = connection.to_dict()
    assert data["limits"]["max_requests"] == 7 and data["api_key_env"] == "K"
    assert Connection.from_dict(data) == connection


def test_unknown_kind_names_the_known_ones():
    with pytest.raises(ConfigurationError, match="compatible"):
        get_provider("carrier-pigeon")
    assert isinstance(provider_for(Connection.local(base_url="http://127.0.0.1:9/v1")), OpenAIProvider)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_local_engine_says_how_to_start_it():
    provider = provider_for(Connection.local(base_url=f"http://127.0.0.1:{free_port()}/v1"))
    with pytest.raises(ProviderUnavailableError, match="langbatch serve"):
        provider.poll("batch_x")


def test_provider_round_trip_against_the_engine(tmp_path, engine):
    provider = provider_for(Connection.compatible(engine.base_url))
    path = write_chat_file(tmp_path / "in.jsonl", ["hello"])
    job = provider.submit(
        path, "/v1/chat/completions", {"langbatch_batch_id": "lb_x", "langbatch_job": "a1-j1"}
    )
    assert job.metadata["langbatch_batch_id"] == "lb_x"
    while not job.terminal:
        job = provider.poll(job.id)
    assert job.status == "completed" and job.request_counts["completed"] == 1
    output, errors = provider.download(job, tmp_path / "out")
    assert b"echo: hello" in output.read_bytes() and errors is None
    assert [j.id for j in provider.find({"langbatch_batch_id": "lb_x"})] == [job.id]
    assert provider.find({"langbatch_batch_id": "lb_other"}) == []


def test_unknown_job_is_not_found(engine):
    with pytest.raises(ProviderNotFoundError, match="does not know"):
        provider_for(Connection.compatible(engine.base_url)).poll("batch_nope")


def test_a_provider_side_validation_failure_carries_errors_data(tmp_path, engine):
    provider = provider_for(Connection.compatible(engine.base_url))
    path = tmp_path / "bad.jsonl"
    path.write_text('{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions"}\nnot json\n')
    job = provider.submit(path, "/v1/chat/completions", {})
    while not job.terminal:
        job = provider.poll(job.id)
    assert job.status == "failed"
    failure = job.failure()
    assert failure.errors and any(e.get("line") for e in failure.errors)
    assert "line" in str(failure) and "retry" in str(failure)


def test_a_base_url_without_a_batch_api_says_to_check_it(tmp_path, upstream, monkeypatch):
    # the upstream speaks realtime chat only: no /files, like a base URL missing its /v1 or a wrong host
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", upstream.base_url)
    path = tmp_path / "in.jsonl"
    path.write_text("{}\n")
    with pytest.raises(ConfigurationError, match="Check the base URL") as caught:
        provider_for(Connection.openai()).submit(path, "/v1/chat/completions", {})
    assert upstream.base_url in str(caught.value)  # where it looked, though the connection names no URL


@pytest.mark.parametrize("url", ["127.0.0.1:8765/v1", "file:///etc/passwd", "localhost/v1"])
def test_a_base_url_must_be_http(url):
    with pytest.raises(ConfigurationError, match="not an http\\(s\\) URL"):
        Connection.compatible(url)


GROQ_LIKE_KEY = "gsk_" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"


@pytest.mark.parametrize(
    "kw",
    [{"api_key_env": GROQ_LIKE_KEY}, {"base_url": f"https://user:{GROQ_LIKE_KEY}@api.example.com/v1"}],
)
def test_a_key_that_fits_a_variable_name_or_sits_in_the_url_is_refused_unrepeated(kw):
    with pytest.raises(ConfigurationError) as caught:
        Connection.compatible(**{"base_url": "https://api.example.com/v1", **kw})
    assert GROQ_LIKE_KEY not in str(caught.value)


def test_ordinary_variable_names_are_accepted():
    for name in ("OPENAI_API_KEY", "GROQ_API_KEY_2", "my_key"):
        assert Connection.compatible("http://x/v1", api_key_env=name).api_key_env == name


def test_the_local_connection_follows_langbatch_engine_url(engine, monkeypatch):
    monkeypatch.setenv("LANGBATCH_ENGINE_URL", engine.base_url)  # as README "Configuration" says
    import langbatch_core.local as local

    def no_second_engine(*args, **kw):
        raise AssertionError("started an engine instead of using LANGBATCH_ENGINE_URL")

    monkeypatch.setattr(local, "ensure_local_engine", no_second_engine)
    assert provider_for(Connection.local()).find({"langbatch_batch_id": "lb_none"}) == []
    assert str(make_client(Connection.local()).base_url).rstrip("/") == engine.base_url.rstrip("/")
