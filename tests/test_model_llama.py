"""The bundled model's pieces on the real weights: tokenizer, forward pass, KV cache, generation."""

from __future__ import annotations

import time

import numpy as np
import pytest

from langbatch_core.errors import ProviderUnavailableError
from langbatch_core.local.model import gguf_weights, llama
from langbatch_core.local.model.generation import Generator
from langbatch_core.local.model.llama import KVCache, LlamaModel, rotate
from langbatch_core.local.model.sampling import SamplingParams
from langbatch_core.local.model.tokenizer import ChatTokenizer

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def weights():
    return gguf_weights.load_weights()  # once per process: later modules get the cached copy


@pytest.fixture(scope="module")
def tokenizer(weights):
    return ChatTokenizer.from_metadata(weights.metadata)


@pytest.fixture(scope="module")
def model(weights):
    return LlamaModel(weights)


@pytest.fixture(scope="module")
def generator(model, tokenizer):
    running = Generator(model, tokenizer, max_batch=4)
    yield running
    running.close()


def prompt(tokenizer, messages=FRANCE):
    return tokenizer.encode(tokenizer.render_chat(messages))


def greedy(max_tokens, **options):
    return SamplingParams(max_tokens=max_tokens, temperature=0.0, **options)


def test_rope_row_order_of_gguf_is_undone_so_half_split_rotation_matches_pair_rotation():
    heads, head_dim, dim, position = 3, 8, 5, 7
    rng = np.random.default_rng(0)
    hf_weight, x = rng.normal(size=(heads * head_dim, dim)), rng.normal(size=dim)
    # llama.cpp's converter interleaves each head's two halves; llama.cpp then rotates adjacent pairs
    gguf_weight = hf_weight.reshape(heads, 2, head_dim // 2, dim).swapaxes(1, 2).reshape(-1, dim)
    angles = position * 10000.0 ** (-np.arange(0, head_dim, 2) / head_dim)
    cos, sin = np.cos(angles), np.sin(angles)
    pairs = (gguf_weight @ x).reshape(heads, head_dim // 2, 2)
    pair_rotated = np.stack(
        [pairs[..., 0] * cos - pairs[..., 1] * sin, pairs[..., 1] * cos + pairs[..., 0] * sin], axis=-1
    )
    restored = gguf_weights._unpermute_rope_rows(gguf_weight, heads)
    np.testing.assert_allclose(restored, hf_weight)
    half_rotated = rotate((restored @ x).reshape(1, heads, head_dim), cos[None, None], sin[None, None])
    # same rotated vector, each head's values listed in the two layouts' orders
    np.testing.assert_allclose(half_rotated[0], pair_rotated.swapaxes(1, 2).reshape(heads, head_dim))


@pytest.mark.model
def test_the_config_comes_from_the_gguf_metadata(weights):
    config = weights.config
    assert (config.n_layers, config.dim, config.n_heads, config.n_kv_heads) == (30, 576, 9, 3)
    assert (config.context_length, config.rope_theta, config.head_dim) == (8192, 100000.0, 64)
    assert weights.output is weights.token_embedding  # SmolLM2 ties its output projection to the embedding
    assert weights.layers[0].wqkv.dtype == np.float32


@pytest.mark.model
def test_tokenizer_round_trips_text(tokenizer):
    text = "Hello, world! Prices: 1234 €, naïve café, 日本語\n\tindented   spaces."
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert tokenizer.encode("2024") == [tokenizer.encode(d)[0] for d in "2024"]  # digits one by one


@pytest.mark.model
def test_chat_template_markers_encode_as_single_special_tokens(tokenizer):
    rendered = tokenizer.render_chat(FRANCE)
    assert rendered.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert rendered.endswith(
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = tokenizer.encode(rendered)
    start, end = tokenizer.encode("<|im_start|>"), tokenizer.encode("<|im_end|>")
    assert len(start) == len(end) == 1
    assert ids.count(start[0]) == 3 and ids.count(end[0]) == 2
    assert end[0] in tokenizer.stop_token_ids


@pytest.mark.model
def test_a_system_message_replaces_the_default_one(tokenizer):
    rendered = tokenizer.render_chat([{"role": "system", "content": "Answer in French."}, *FRANCE])
    assert rendered.startswith("<|im_start|>system\nAnswer in French.<|im_end|>\n")
    assert "SmolLM" not in rendered


@pytest.mark.model
def test_prefill_gives_finite_logits_over_the_vocabulary(model, tokenizer):
    cache = KVCache(model.config)
    logits = model.prefill(prompt(tokenizer), cache, cache.add_slot())
    assert logits.shape == (model.config.vocab_size,)
    assert np.isfinite(logits).all()


@pytest.mark.model
def test_greedy_answer_to_the_capital_of_france_is_paris(generator, tokenizer):
    [choice] = generator.submit(prompt(tokenizer), greedy(20)).result(timeout=60)
    assert "Paris" in choice.text
    assert choice.finish_reason == "stop"


@pytest.mark.model
def test_batched_decode_matches_decoding_each_sequence_alone(model, tokenizer):
    prompts = [prompt(tokenizer), prompt(tokenizer, [{"role": "user", "content": "Name a colour."}])]
    alone = []
    for ids in prompts:
        cache = KVCache(model.config)
        slot = cache.add_slot()
        model.prefill(ids, cache, slot)
        alone.append(model.decode([42], cache, [slot])[0])
    cache = KVCache(model.config)
    slots = [cache.add_slot() for _ in prompts]
    for ids, slot in zip(prompts, slots, strict=True):
        model.prefill(ids, cache, slot)
    together = model.decode([42, 42], cache, slots)  # different lengths: the shorter one is masked
    np.testing.assert_allclose(together, np.stack(alone), atol=2e-3)


@pytest.mark.model
def test_chunked_prefill_matches_one_pass(model, tokenizer, monkeypatch):
    ids = prompt(tokenizer)
    cache = KVCache(model.config)
    whole = model.prefill(ids, cache, cache.add_slot())
    monkeypatch.setattr(llama, "PREFILL_CHUNK", 8)
    cache = KVCache(model.config, capacity=16)  # also grows the cache while filling it
    slot = cache.add_slot()
    model.prefill(ids[:5], cache, slot)
    chunked = model.prefill(ids[5:], cache, slot)
    assert cache.lengths[slot] == len(ids)
    np.testing.assert_allclose(chunked, whole, atol=2e-3)


@pytest.mark.model
def test_max_tokens_ends_an_answer_with_length(generator, tokenizer):
    [choice] = generator.submit(prompt(tokenizer), greedy(3)).result(timeout=60)
    assert (choice.finish_reason, len(choice.token_ids)) == ("length", 3)
    assert choice.text == tokenizer.decode(list(choice.token_ids))


@pytest.mark.model
def test_a_stop_sequence_cuts_the_answer_before_it(generator, tokenizer):
    [choice] = generator.submit(prompt(tokenizer), greedy(20, stop=("France",))).result(timeout=60)
    assert choice.finish_reason == "stop"
    assert "France" not in choice.text
    assert choice.text.startswith("The capital of")


@pytest.mark.model
def test_several_choices_share_the_prompt_and_seeded_sampling_repeats(generator, tokenizer):
    params = SamplingParams(max_tokens=6, temperature=1.0, seed=11)
    first = generator.submit(prompt(tokenizer), params, n=3).result(timeout=60)
    again = generator.submit(prompt(tokenizer), params, n=3).result(timeout=60)
    assert [c.token_ids for c in first] == [c.token_ids for c in again]
    assert len({c.token_ids for c in first}) > 1


@pytest.mark.model
def test_concurrent_requests_are_batched_and_give_the_same_greedy_answers(generator, tokenizer):
    alone = generator.submit(prompt(tokenizer), greedy(8)).result(timeout=60)
    futures = [generator.submit(prompt(tokenizer), greedy(8)) for _ in range(4)]
    assert [f.result(timeout=60)[0].text for f in futures] == [alone[0].text] * 4


@pytest.mark.model
def test_a_cancelled_request_leaves_the_batch(generator, tokenizer):
    endless = greedy(400, logit_bias=dict.fromkeys(tokenizer.stop_token_ids, -100.0))
    future = generator.submit(prompt(tokenizer), endless)
    deadline = time.monotonic() + 30
    while generator.active_sequences == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert future.cancel()
    while generator.active_sequences and time.monotonic() < deadline:
        time.sleep(0.01)
    assert generator.active_sequences == 0
    [choice] = generator.submit(prompt(tokenizer), greedy(3)).result(timeout=60)  # still serving
    assert len(choice.token_ids) == 3


@pytest.mark.model
def test_closing_the_generator_fails_unfinished_requests_as_unavailable(model, tokenizer):
    own = Generator(model, tokenizer, max_batch=1)
    endless = greedy(400, logit_bias=dict.fromkeys(tokenizer.stop_token_ids, -100.0))
    running = own.submit(prompt(tokenizer), endless)
    waiting = own.submit(prompt(tokenizer), endless)  # max_batch=1: queued behind the first
    deadline = time.monotonic() + 30
    while own.active_sequences == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    own.close()
    for future in (running, waiting):
        with pytest.raises(ProviderUnavailableError, match="stopped"):
            future.result(timeout=5)


@pytest.mark.model
def test_a_job_that_would_overflow_the_cache_budget_waits_for_the_batch_to_drain(model, tokenizer):
    one_sequence = KVCache(model.config).bytes_per_token * 256  # room for one short sequence only
    own = Generator(model, tokenizer, max_batch=4, cache_bytes=one_sequence)
    try:
        futures = [own.submit(prompt(tokenizer), greedy(4)) for _ in range(2)]
        answers = [future.result(timeout=60)[0].text for future in futures]
    finally:
        own.close()
    assert answers[0] == answers[1] != ""
    assert own.peak_batch == 1
