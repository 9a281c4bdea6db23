"""Prefix reuse: shared instructions are prefilled once, and reusing them changes no answer."""

from __future__ import annotations

import numpy as np
import pytest

from langbatch_core.local.model.generation import Generator
from langbatch_core.local.model.gguf_weights import LlamaConfig, load_weights
from langbatch_core.local.model.llama import KVCache, LlamaModel
from langbatch_core.local.model.prefix_cache import PrefixCache
from langbatch_core.local.model.sampling import SamplingParams
from langbatch_core.local.model.tokenizer import ChatTokenizer

END = 2  # the message-end token of these synthetic prompts
TINY = LlamaConfig(
    n_layers=2, dim=8, ffn_dim=16, n_heads=2, n_kv_heads=1, context_length=256, rope_theta=1e4, norm_eps=1e-5,
    vocab_size=100,
)  # fmt: skip


def filled_slot(cache: KVCache, prompt: list[int]) -> int:
    """A slot whose keys/values encode each position's token id (stand-in for a prefill)."""
    slot = cache.add_slot()
    for position, token in enumerate(prompt):
        cache.keys[:, slot, :, position] = token
        cache.values[:, slot, :, position] = -token
    cache.lengths[slot] = len(prompt)
    return slot


def prompt(instructions: list[int], last: list[int]) -> list[int]:
    return [*instructions, END, *last, END, 7, 8]  # ... then the assistant header


def test_the_prefix_before_the_last_message_is_kept_and_restored():
    prefixes, cache = PrefixCache({END}), KVCache(TINY)
    instructions = list(range(10, 40))
    first = prompt(instructions, [50, 51])
    prefixes.remember(first, cache, filled_slot(cache, first))
    second = prompt(instructions, [60, 61, 62])
    slot = cache.add_slot()
    reused = prefixes.restore(second, cache, slot)
    assert reused == len(instructions) + 1 and cache.lengths[slot] == reused
    assert cache.keys[0, slot, 0, :reused, 0].tolist() == [*instructions, END]
    assert prefixes.restore(prompt([99] * 30, [50]), cache, cache.add_slot()) == 0  # other instructions


def test_short_prefixes_are_not_worth_keeping():
    prefixes, cache = PrefixCache({END}), KVCache(TINY)
    short = prompt([10, 11], [50])
    prefixes.remember(short, cache, filled_slot(cache, short))
    assert prefixes.tokens == 0


def test_the_least_recently_used_prefix_goes_when_over_budget():
    prefixes, cache = PrefixCache({END}, max_tokens=70), KVCache(TINY)
    a, b, c = (prompt(list(range(start, start + 30)), [5]) for start in (100, 200, 300))
    for p in (a, b):
        prefixes.remember(p, cache, filled_slot(cache, p))
    assert prefixes.restore(a, cache, cache.add_slot()) > 0  # a is now the most recently used
    prefixes.remember(c, cache, filled_slot(cache, c))
    assert prefixes.tokens <= 70
    assert prefixes.restore(b, cache, cache.add_slot()) == 0
    assert (
        prefixes.restore(a, cache, cache.add_slot()) > 0 and prefixes.restore(c, cache, cache.add_slot()) > 0
    )


@pytest.mark.model
def test_reusing_a_prefix_gives_the_logits_of_a_full_prefill():
    weights = load_weights()
    tokenizer, model = ChatTokenizer.from_metadata(weights.metadata), LlamaModel(weights)
    system = {
        "role": "system",
        "content": "You are a geography teacher. You answer every question about places in one sentence.",
    }

    def ids(question: str) -> list[int]:
        return tokenizer.encode(tokenizer.render_chat([system, {"role": "user", "content": question}]))

    prefixes, cache = PrefixCache(tokenizer.stop_token_ids), KVCache(model.config)
    first = ids("What is the capital of Italy?")
    slot = cache.add_slot()
    model.prefill(first, cache, slot)
    prefixes.remember(first, cache, slot)
    second = ids("What is the capital of France?")
    slot = cache.add_slot()
    reused = prefixes.restore(second, cache, slot)
    assert reused > 16
    with_prefix = model.prefill(second[reused:], cache, slot)
    fresh = KVCache(model.config)
    np.testing.assert_allclose(with_prefix, model.prefill(second, fresh, fresh.add_slot()), atol=2e-3)


@pytest.mark.model
def test_the_generator_reuses_the_default_system_prompt():
    weights = load_weights()
    tokenizer = ChatTokenizer.from_metadata(weights.metadata)
    generator = Generator(LlamaModel(weights), tokenizer, max_batch=2)
    try:
        params = SamplingParams(max_tokens=2, temperature=0.0)
        for question in ("Hi!", "Hello!"):
            ids = tokenizer.encode(tokenizer.render_chat([{"role": "user", "content": question}]))
            generator.submit(ids, params).result(timeout=60)
        assert generator.prefixes.hits == 1
    finally:
        generator.close()
