"""Reusing the keys/values of prompt prefixes that many requests share (system prompts, few-shot examples).

    prefixes = PrefixCache(boundary_ids={2})          # 2 = <|im_end|>: prefixes end at a message end
    reused = prefixes.restore(prompt_ids, cache, slot) # slot now holds prompt_ids[:reused]
    model.prefill(prompt_ids[reused:], cache, slot)
    prefixes.remember(prompt_ids, cache, slot)

Batch jobs often send thousands of requests with the same instructions and a different last message. The
prefix up to the start of the last message is kept (least recently used out first, within a token budget),
so the next request with the same instructions prefills only its own last message. Attention is causal: a
prefix's keys and values do not depend on what follows, so reusing them gives the same answer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from langbatch_core.local.model.llama import KVCache

MIN_PREFIX_TOKENS = 16  # shorter prefixes cost less to recompute than to look up and copy


class PrefixCache:
    """Keys/values of recent shared prompt prefixes, at most ``max_tokens`` tokens in all."""

    def __init__(self, boundary_ids: frozenset[int] | set[int], max_tokens: int = 4096) -> None:
        self.boundary_ids = frozenset(boundary_ids)
        self.max_tokens = max_tokens
        self._entries: OrderedDict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.hits = 0

    @property
    def tokens(self) -> int:
        return sum(len(prefix) for prefix in self._entries)

    def boundaries(self, prompt_ids: Sequence[int]) -> list[int]:
        """Prefix lengths ending just after a message-end token, shortest first (never the whole prompt)."""
        return [i + 1 for i, token in enumerate(prompt_ids[:-1]) if token in self.boundary_ids]

    def restore(self, prompt_ids: Sequence[int], cache: KVCache, slot: int) -> int:
        """Load the longest cached prefix of ``prompt_ids`` into the empty ``slot``; its length (0: none)."""
        for length in reversed(self.boundaries(prompt_ids)):
            key = tuple(prompt_ids[:length])
            if key in self._entries:
                self._entries.move_to_end(key)
                keys, values = self._entries[key]
                cache.reserve(length)
                cache.keys[:, slot, :, :length] = keys
                cache.values[:, slot, :, :length] = values
                cache.lengths[slot] = length
                self.hits += 1
                return length
        return 0

    def remember(self, prompt_ids: Sequence[int], cache: KVCache, slot: int) -> None:
        """Keep the prefix before the last message of a prompt just prefilled into ``slot``."""
        ends = self.boundaries(prompt_ids)
        if len(ends) < 2 or ends[-2] < MIN_PREFIX_TOKENS or ends[-2] > self.max_tokens:
            return
        length = ends[-2]
        key = tuple(prompt_ids[:length])
        if key in self._entries:
            self._entries.move_to_end(key)
            return
        self._entries[key] = (
            cache.keys[:, slot, :, :length].copy(),
            cache.values[:, slot, :, :length].copy(),
        )
        while self.tokens > self.max_tokens:
            self._entries.popitem(last=False)
