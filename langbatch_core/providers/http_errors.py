"""What an HTTP error answer of a provider's API means, as a LangBatchError class and words for a person:
one table for every provider (OpenAI, Anthropic, Mistral, Gemini; Bedrock's codes fall back to it).

    kind, meaning = status_meaning(429, "MISTRAL_API_KEY")
    raise kind(f"Could not create the job: {where} {meaning.format(message=message)}", status_code=429)

``{message}`` in the meaning stands for the API's own words.
"""

from __future__ import annotations

from langbatch_core import errors


def status_meaning(status: int, key_env: str | None) -> tuple[type[errors.ProviderError], str]:
    """The error class for HTTP ``status`` and what it means; ``key_env``: the API key's variable."""
    if status in (401, 403):
        return errors.AuthenticationError, (
            f"refused the API key ({{message}}). Check the key in {key_env or 'the API key variable'}."
        )
    if status == 429:
        return errors.RateLimitError, (
            "is rate limiting ({message}). Wait a little and try again, or split into smaller jobs "
            "(Limits(max_requests=...))."
        )
    if status == 404:
        return errors.ProviderNotFoundError, (
            "does not know it ({message}). Was it made with another connection or deleted?"
        )
    if status >= 500:
        return errors.ProviderUnavailableError, f"had a server error {status} ({{message}}). Try again later."
    return errors.ProviderError, f"answered {status} ({{message}})."
