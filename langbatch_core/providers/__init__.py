"""Providers: one module per batch API behind ``Provider``; ``Connection`` says which one a batch uses.

from langbatch_core.providers import Connection, provider_for
provider = provider_for(Connection.local())
"""

from langbatch_core.providers.base import Job, Provider, get_provider, provider_for, register_provider
from langbatch_core.providers.connection import Connection
from langbatch_core.providers.openai import OpenAIProvider, translate_error

__all__ = [
    "Connection",
    "Job",
    "OpenAIProvider",
    "Provider",
    "get_provider",
    "provider_for",
    "register_provider",
    "translate_error",
]
