"""The request file that ``Batch.create`` writes from request bodies, strings or full request lines.

check_create_arguments("OpenAIChatCompletionBatch", items, request_kwargs)
RequestLines("OpenAIChatCompletionBatch", "/v1/chat/completions", body_from_text, "gpt-4o-mini", {}).write(
    out, items
)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from langbatch_core.errors import ConfigurationError, InvalidRequestsError
from langbatch_core.requests import Issue


class RequestLines:
    """How one kind of batch turns ``create()`` items into request lines: bodies get ``custom_id``
    ``request-N``, ``model`` when they name none, and ``extra`` parameters they do not set."""

    def __init__(
        self,
        kind: str,
        endpoint: str | None,
        body_from_text: Callable[[str], dict[str, Any]],
        model: str | None,
        extra: dict[str, Any] | None,
    ) -> None:
        self.kind, self.endpoint, self.body_from_text = kind, endpoint, body_from_text
        self.model, self.extra = model, extra or {}

    def write(self, out: Any, items: Iterable[Any]) -> None:
        """Writes one JSON line per item to the binary file ``out``."""
        count = 0
        for count, item in enumerate(items, start=1):
            out.write(_dumps_item(count, self.line(count, item)))
        if not count:
            raise InvalidRequestsError(
                f"{self.kind}.create got no requests: pass a list with at least one request body."
            )

    def line(self, index: int, item: Any) -> dict[str, Any]:
        endpoint = self.endpoint
        if isinstance(item, dict) and "body" in item and "custom_id" in item:
            return {"method": "POST", "url": endpoint, **item} if endpoint else item
        if endpoint is None:
            raise ConfigurationError(
                "Batch.create needs full request lines (custom_id, method, url, body); for bodies use "
                "OpenAIChatCompletionBatch.create or OpenAIEmbeddingBatch.create."
            )
        if not isinstance(item, dict | str):
            kind = type(item).__name__
            raise _invalid_item(index, f"is a {kind}; each item must be a request body (dict) or a string")
        body = self.body_from_text(item) if isinstance(item, str) else dict(item)
        body = {**self.extra, **body}
        if self.model and "model" not in body:
            body["model"] = self.model
        return {"custom_id": f"request-{index}", "method": "POST", "url": endpoint, "body": body}


def check_create_arguments(kind: str, requests: Any, request_kwargs: Any) -> None:
    if isinstance(requests, str | bytes | dict):
        raise InvalidRequestsError(
            f"{kind}.create takes a list of requests, not a {type(requests).__name__}: wrap a single request "
            'in a list, e.g. create([{"messages": [...]}]); for a file use the constructor.'
        )
    if request_kwargs is not None and not isinstance(request_kwargs, dict):
        raise ConfigurationError(
            f"request_kwargs must be a dict of body parameters (like {{'max_tokens': 200}}), "
            f"not a {type(request_kwargs).__name__}."
        )


def _invalid_item(index: int, why: str) -> InvalidRequestsError:
    message = f"Item {index} given to create() {why}."
    return InvalidRequestsError(message, [Issue(index, "invalid_item", message)])


def _dumps_item(index: int, line: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(line) + b"\n"
    except TypeError as exc:  # orjson.JSONEncodeError: a value JSON cannot hold
        raise _invalid_item(
            index, f"holds a value that is not JSON ({exc}); use str, numbers, lists, dicts"
        ) from None
