"""Chat completion batches (``/v1/chat/completions``).

from langbatch_core import OpenAIChatCompletionBatch
batch = OpenAIChatCompletionBatch.create(
    [{"messages": [{"role": "user", "content": "What is the capital of the moon?"}]}],
    model="gpt-4o-mini", request_kwargs={"max_tokens": 100},
)
"""

from __future__ import annotations

from typing import Any, ClassVar

from langbatch_core.batch import Batch
from langbatch_core.tables._batch import TableBatch


class OpenAIChatCompletionBatch(TableBatch, Batch):
    """A batch of chat completions. ``create()`` bodies without ``model`` get ``default_model``
    (``gpt-4o-mini``) unless ``model=`` or the connection's model says otherwise; a plain string becomes
    one user message.

    ``get_results()`` successes: ``custom_id``, ``content`` (first choice's text), ``finish_reason``,
    ``choices``, ``usage``, ``model``.
    """

    endpoint: ClassVar[str] = "/v1/chat/completions"
    default_model: ClassVar[str] = "gpt-4o-mini"

    @classmethod
    def _body_from_text(cls, text: str) -> dict[str, Any]:
        return {"messages": [{"role": "user", "content": text}]}

    def _success_entry(self, custom_id: str | None, body: dict[str, Any]) -> dict[str, Any]:
        choices = body.get("choices") or []
        first = choices[0] if choices else {}
        return {
            "custom_id": custom_id,
            "content": (first.get("message") or {}).get("content"),
            "finish_reason": first.get("finish_reason"),
            "choices": choices,
            "usage": body.get("usage"),
            "model": body.get("model"),
        }
