"""The local engine: an OpenAI-compatible Files + Batches server that runs batches offline.

from langbatch_core.local import LocalEngine

with LocalEngine(backend="upstream:http://127.0.0.1:8000/v1") as engine:
    client = openai.OpenAI(base_url=engine.base_url, api_key="local")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langbatch_core.local.backends import Backend, BackendResponse, UpstreamBackend, make_backend

if TYPE_CHECKING:  # imported when first used (below); named here for type checkers
    from langbatch_core.local.engine import LocalEngine, ensure_local_engine

_LAZY = {"LocalEngine": "langbatch_core.local.engine", "ensure_local_engine": "langbatch_core.local.engine"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'langbatch_core.local' has no attribute {name!r}")


__all__ = [
    "Backend",
    "BackendResponse",
    "LocalEngine",
    "UpstreamBackend",
    "ensure_local_engine",
    "make_backend",
]
