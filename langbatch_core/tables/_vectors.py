"""Embedding vectors from result files, by custom_id (the results table keeps only their dimension)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec


class _Item(msgspec.Struct, gc=False):
    embedding: list[float] | None = None
    index: int = 0


class _Body(msgspec.Struct, gc=False):
    data: list[_Item] | None = None


class _Response(msgspec.Struct, gc=False):
    status_code: int | None = None
    body: _Body | None = None


class _Line(msgspec.Struct, gc=False):
    custom_id: str | None = None
    response: _Response | None = None


_decode = msgspec.json.Decoder(_Line).decode


def read_embeddings(paths: Sequence[Path]) -> dict[str, list[float]]:
    """custom_id -> its first vector, for every successful embedding line of ``paths`` (later files win)."""
    vectors: dict[str, list[float]] = {}
    for path in paths:
        with Path(path).open("rb") as lines:
            for raw in lines:
                try:
                    line = _decode(raw)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue  # not an embedding answer: the results table names such lines
                body = line.response.body if line.response else None
                if line.custom_id and body and body.data:
                    first = min(body.data, key=lambda item: item.index)
                    if first.embedding is not None:
                        vectors[line.custom_id] = first.embedding
    return vectors
