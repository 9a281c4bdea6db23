"""Providers: one module per batch API behind ``Provider``; ``Connection`` says which one a batch uses.

from langbatch_core.providers import Connection, provider_for
provider = provider_for(Connection.local())
[kind.label for kind in connection_kinds()]     # the one registry of kinds (providers/kinds.py)

The ``openai`` SDK is imported only when ``OpenAIProvider`` (or a provider) is first needed, so the local
engine can use ``connection`` and ``retry`` without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langbatch_core._lazy import lazy_names
from langbatch_core.providers.base import Job, Provider, get_provider, provider_for
from langbatch_core.providers.connection import Connection
from langbatch_core.providers.kinds import (
    ConnectionKind,
    connection_kind,
    connection_kinds,
    find_kind,
    register_provider,
)
from langbatch_core.providers.retry import Retrying

if TYPE_CHECKING:  # imported when first used (below); named here for type checkers
    from langbatch_core.providers.gemini import GeminiProvider
    from langbatch_core.providers.mistral import MistralProvider
    from langbatch_core.providers.openai import OpenAIProvider, translate_error

_EXPORTS = {  # their SDKs load when first used
    "OpenAIProvider": ".openai",
    "translate_error": ".openai",
    "MistralProvider": ".mistral",
    "GeminiProvider": ".gemini",
}

__all__ = [
    "Connection",
    "ConnectionKind",
    "GeminiProvider",
    "Job",
    "MistralProvider",
    "OpenAIProvider",
    "Provider",
    "Retrying",
    "connection_kind",
    "connection_kinds",
    "find_kind",
    "get_provider",
    "provider_for",
    "register_provider",
    "translate_error",
]


__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
