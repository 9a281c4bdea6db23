"""Embedding batches (``/v1/embeddings``).

from langbatch_core import OpenAIEmbeddingBatch
batch = OpenAIEmbeddingBatch.create(["first text", "second text"], model="text-embedding-3-small")
"""

from __future__ import annotations

from typing import Any, ClassVar

from langbatch_core.batch import Batch
from langbatch_core.tables._batch import TableBatch


class OpenAIEmbeddingBatch(TableBatch, Batch):
    """A batch of embeddings. ``create()`` takes strings (one request each) or bodies
    (``{"input": ...}``); the model defaults to ``text-embedding-3-small`` unless ``model=`` or the
    connection's model says otherwise.

    ``get_results()`` successes: ``custom_id``, ``embedding`` (the first vector), ``embeddings`` (every
    vector, in input order), ``usage``, ``model``.
    """

    endpoint: ClassVar[str] = "/v1/embeddings"
    default_model: ClassVar[str] = "text-embedding-3-small"

    @classmethod
    def _body_from_text(cls, text: str) -> dict[str, Any]:
        return {"input": text}

    def _success_entry(self, custom_id: str | None, body: dict[str, Any]) -> dict[str, Any]:
        data = sorted(body.get("data") or [], key=lambda item: item.get("index", 0))
        vectors = [item.get("embedding") for item in data]
        return {
            "custom_id": custom_id,
            "embedding": vectors[0] if vectors else None,
            "embeddings": vectors,
            "usage": body.get("usage"),
            "model": body.get("model"),
        }
