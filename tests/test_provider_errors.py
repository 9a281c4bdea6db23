"""An HTTP error means the same to a person whichever provider's API answered it: one class, one advice
(``providers/http_errors.py``), whether it came through the ``openai`` SDK or the ``anthropic`` one."""

from __future__ import annotations

import anthropic
import httpx2
import openai
import pytest

from langbatch_core.errors import (
    AuthenticationError,
    ProviderError,
    ProviderNotFoundError,
    ProviderUnavailableError,
    RateLimitError,
)
from langbatch_core.providers import Connection
from langbatch_core.providers.anthropic import translate_error as from_anthropic
from langbatch_core.providers.openai import translate_error as from_openai

REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/messages/batches")
ACTION = "create the batch job"


def answered(sdk, status: int):
    """The SDK's own error for an HTTP ``status`` answer whose body says ``said <status>``."""
    body = {"type": "error", "error": {"message": f"said {status}", "type": "x"}}
    response = httpx2.Response(status, request=REQUEST, json=body)
    client = sdk.OpenAI(api_key="k") if sdk is openai else sdk.Anthropic(api_key="k")
    return client._make_status_error(f"Error code: {status}", body=body, response=response)


@pytest.mark.parametrize(
    ("status", "kind", "advice"),
    [
        (401, AuthenticationError, "Check the key in"),
        (403, AuthenticationError, "Check the key in"),
        (404, ProviderNotFoundError, "Was it made with another connection or deleted?"),
        (429, RateLimitError, "split into smaller jobs"),
        (500, ProviderUnavailableError, "Try again later."),
        (400, ProviderError, "answered 400"),
    ],
)
def test_the_same_status_means_the_same_error_on_openai_and_anthropic(status, kind, advice):
    errors = {
        "openai": from_openai(answered(openai, status), Connection.openai(api_key_env="KEY"), ACTION),
        "anthropic": from_anthropic(
            answered(anthropic, status), Connection.anthropic(api_key_env="KEY"), ACTION
        ),
    }
    for name, error in errors.items():
        assert type(error) is kind, name
        assert error.status_code == status, name
        assert f"said {status}" in str(error) and advice in str(error), (name, str(error))
    advice_given = {name: str(error).split(f"(said {status})", 1)[1] for name, error in errors.items()}
    assert advice_given["openai"] == advice_given["anthropic"]
