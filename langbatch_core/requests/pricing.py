"""Batch prices of common OpenAI, Mistral and Gemini models, for cost estimates.

One table, in US dollars per 1 million tokens at the Batch API's price (half the realtime price). Update it by
editing ``BATCH_PRICES`` and ``PRICES_AS_OF``; a model is found by exact name first, then by the longest
listed name it starts with (so ``gpt-4o-mini-2024-07-18`` uses ``gpt-4o-mini``).

    estimate_cost("gpt-4o-mini", input_tokens=1_000_000, output_tokens=200_000)   # 0.135
    connection_cost("local", 0.135)   # 0.0: the local engine runs on this machine

Prices are each provider's own; a batch on the local engine costs nothing (``FREE_KINDS``).
"""

from __future__ import annotations

from typing import NamedTuple

PRICES_AS_OF = "2025-08"
FREE_KINDS = frozenset({"local"})  # connection kinds that run on this machine


class Price(NamedTuple):
    input: float  # USD per 1M input tokens, batch
    output: float  # USD per 1M output tokens, batch (0 for embeddings)


BATCH_PRICES: dict[str, Price] = {
    "gpt-5": Price(0.625, 5.00),
    "gpt-5-mini": Price(0.125, 1.00),
    "gpt-5-nano": Price(0.025, 0.20),
    "gpt-4.1": Price(1.00, 4.00),
    "gpt-4.1-mini": Price(0.20, 0.80),
    "gpt-4.1-nano": Price(0.05, 0.20),
    "gpt-4o": Price(1.25, 5.00),
    "gpt-4o-mini": Price(0.075, 0.30),
    "o1": Price(7.50, 30.00),
    "o3": Price(1.00, 4.00),
    "o3-mini": Price(0.55, 2.20),
    "o4-mini": Price(0.55, 2.20),
    "gpt-4-turbo": Price(5.00, 15.00),
    "gpt-4": Price(15.00, 30.00),
    "gpt-3.5-turbo": Price(0.25, 0.75),
    "text-embedding-3-small": Price(0.01, 0.0),
    "text-embedding-3-large": Price(0.065, 0.0),
    "text-embedding-ada-002": Price(0.05, 0.0),
    # Anthropic Message Batches, 2026-11 (platform.claude.com/docs/en/build-with-claude/batch-processing:
    # half the standard price); Bedrock batch inference bills Claude at the same half price.
    "claude-opus-4-1": Price(7.50, 37.50),
    "claude-opus-4": Price(7.50, 37.50),
    "claude-sonnet-4-5": Price(1.50, 7.50),
    "claude-sonnet-4": Price(1.50, 7.50),
    "claude-3-7-sonnet": Price(1.50, 7.50),
    "claude-haiku-4-5": Price(0.50, 2.50),
    "claude-3-5-haiku": Price(0.40, 2.00),
    "claude-3-haiku": Price(0.125, 0.625),
    "anthropic.claude-sonnet-4-5": Price(1.50, 7.50),
    "anthropic.claude-haiku-4-5": Price(0.50, 2.50),
    "anthropic.claude-3-5-haiku": Price(0.40, 2.00),
    "anthropic.claude-3-haiku": Price(0.125, 0.625),
    # Mistral and Gemini (as of 2025-08): their list prices halved, the batch discount both document
    "mistral-large": Price(1.00, 3.00),
    "mistral-medium": Price(0.20, 1.00),
    "mistral-small": Price(0.05, 0.15),
    "codestral": Price(0.15, 0.45),
    "mistral-embed": Price(0.05, 0.0),
    "gemini-2.5-pro": Price(0.625, 5.00),  # prompts up to 200k tokens
    "gemini-2.5-flash": Price(0.15, 1.25),
    "gemini-2.5-flash-lite": Price(0.05, 0.20),
    "gemini-2.0-flash": Price(0.05, 0.20),
}


def price_for(model: str | None) -> Price | None:
    """The batch price of ``model``, or None when it is not in the table."""
    if not model:
        return None
    if model in BATCH_PRICES:
        return BATCH_PRICES[model]
    matches = [name for name in BATCH_PRICES if model.startswith(name + "-")]
    return BATCH_PRICES[max(matches, key=len)] if matches else None


def estimate_cost(model: str | None, input_tokens: int, output_tokens: int = 0) -> float | None:
    """Dollars for these tokens at batch prices, or None for a model not in the table."""
    price = price_for(model)
    if price is None:
        return None
    return round((input_tokens * price.input + output_tokens * price.output) / 1_000_000, 6)


def connection_cost(kind: str | None, list_cost: float | None) -> float | None:
    """What a batch whose cost at OpenAI's batch prices is ``list_cost`` costs on a connection of ``kind``:
    nothing on the local engine, else ``list_cost`` (None when the model's price is unknown)."""
    return 0.0 if kind in FREE_KINDS else list_cost
