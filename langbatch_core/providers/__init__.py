"""Providers: one module per batch API behind ``Provider``; ``Connection`` says which one a batch uses.

from langbatch_core.providers import Connection, provider_for
provider = provider_for(Connection.local())
[kind.label for kind in connection_kinds()]     # the one registry of kinds (providers/kinds.py)

The ``openai`` SDK is imported only when ``OpenAIProvider`` (or a provider) is first needed, so the local
engine can use ``connection`` and ``retry`` without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

_LAZY = {"OpenAIProvider", "translate_error"}
_NATIVE = {"MistralProvider": "mistral", "GeminiProvider": "gemini"}  # their SDKs load when first used

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


def __getattr__(name: str) -> Any:
    if name in _NATIVE:
        import importlib

        return getattr(importlib.import_module(f"langbatch_core.providers.{_NATIVE[name]}"), name)
    if name in _LAZY:
        from langbatch_core.providers import openai as _openai

        return getattr(_openai, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
