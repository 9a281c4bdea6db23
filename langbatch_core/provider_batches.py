"""The class names the original LangBatch package uses for batches on other providers, on this package's
one ``Batch``: the same lifecycle, the same OpenAI-format request file, a different default connection.

    from langbatch_core import AnthropicChatCompletionBatch
    batch = AnthropicChatCompletionBatch("data.jsonl")
    # the same as OpenAIChatCompletionBatch("data.jsonl", connection=Connection.anthropic())
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from langbatch_core.chat import OpenAIChatCompletionBatch
from langbatch_core.providers.connection import Connection


class _OnProvider(OpenAIChatCompletionBatch):
    """A chat batch whose connection defaults to ``default_connection()`` (not OpenAI's)."""

    default_connection: ClassVar[Callable[[], Connection]]

    def __init__(
        self, file: Any, *, connection: Connection | None = None, client: Any = None, **kw: Any
    ) -> None:
        if connection is None and client is None:
            connection = type(self).default_connection()
        super().__init__(file, connection=connection, client=client, **kw)

    @classmethod
    def create(cls, requests: Any, **kw: Any) -> Any:
        if kw.get("connection") is None and kw.get("client") is None:
            kw["connection"] = cls.default_connection()
        return super().create(requests, **kw)


class AnthropicChatCompletionBatch(_OnProvider):
    """Chat completions on Anthropic's Message Batches API (``Connection.anthropic()`` unless given)."""

    default_model: ClassVar[str] = "claude-haiku-4-5"
    default_connection = staticmethod(Connection.anthropic)


class BedrockClaudeChatCompletionBatch(_OnProvider):
    """Chat completions with Claude on AWS Bedrock batch inference (``Connection.bedrock()`` unless given:
    region, bucket and role from ``AWS_REGION``, ``LANGBATCH_BEDROCK_BUCKET``,
    ``LANGBATCH_BEDROCK_ROLE_ARN``)."""

    default_model: ClassVar[str] = "anthropic.claude-haiku-4-5-20251001-v1:0"
    default_connection = staticmethod(Connection.bedrock)
