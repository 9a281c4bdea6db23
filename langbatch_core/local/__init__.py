"""The local engine: an OpenAI-compatible Files + Batches server that runs batches offline.

from langbatch_core.local import LocalEngine

with LocalEngine(backend="upstream:http://127.0.0.1:8000/v1") as engine:
    client = openai.OpenAI(base_url=engine.base_url, api_key="local")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langbatch_core._lazy import lazy_names
from langbatch_core.local.backends import Backend, BackendResponse, UpstreamBackend, make_backend

if TYPE_CHECKING:  # imported when first used (below); named here for type checkers
    from langbatch_core.local.engine import LocalEngine, ensure_local_engine

_EXPORTS = {"LocalEngine": ".engine", "ensure_local_engine": ".engine"}


__all__ = [
    "Backend",
    "BackendResponse",
    "LocalEngine",
    "UpstreamBackend",
    "ensure_local_engine",
    "make_backend",
]

__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
