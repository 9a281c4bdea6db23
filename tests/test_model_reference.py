"""The numpy forward pass against a reference implementation: Hugging Face ``transformers`` on PyTorch.

``fixtures/model/smollm2_reference.npz`` was recorded by ``fixtures/model/make_reference.py`` (run by hand,
outside this project's environment) from the same GGUF file: prompt token ids, top logits at every position,
whole logits vectors and greedy continuations. Both sides dequantize the same weights to float32, so they
differ only by float32 rounding: logits (which span about ±35) must agree within ``LOGIT_TOLERANCE``
absolute — measured differences are below 1e-4 — and the greedy tokens must be identical. The smallest gap
between the best and second-best logit in the fixture is 0.036, so equal argmaxes are meaningful.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from langbatch_core.local.model.generation import Generator
from langbatch_core.local.model.gguf_weights import load_weights
from langbatch_core.local.model.llama import KVCache, LlamaModel
from langbatch_core.local.model.sampling import SamplingParams
from langbatch_core.local.model.tokenizer import ChatTokenizer

pytestmark = pytest.mark.model

FIXTURE = Path(__file__).parent / "fixtures" / "model" / "smollm2_reference.npz"
LOGIT_TOLERANCE = 1e-3
PROMPT_NAMES = ["capital", "system", "haiku", "raw"]  # as make_reference.py records them


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURE) as stored:
        arrays = {key: stored[key] for key in stored.files}
    prompts = {prompt["name"]: prompt for prompt in json.loads(str(arrays.pop("prompts")))}
    assert sorted(prompts) == sorted(PROMPT_NAMES)
    return {
        name: {key.split(".", 1)[1]: value for key, value in arrays.items() if key.startswith(name + ".")}
        | prompts[name]
        for name in prompts
    }


@pytest.fixture(scope="module")
def tokenizer():
    return ChatTokenizer.from_metadata(load_weights().metadata)


@pytest.fixture(scope="module")
def model():
    return LlamaModel(load_weights())


def assert_top_logits_match(logits: np.ndarray, top_ids: np.ndarray, top_values: np.ndarray, where: str):
    """``logits`` (vocab,) agree with the reference's top values at its top ids, and pick the same best."""
    difference = np.abs(logits[top_ids] - top_values).max()
    assert difference <= LOGIT_TOLERANCE, f"{where}: top logits differ by {difference:.2e}"
    assert int(np.argmax(logits)) == int(top_ids[0]), f"{where}: a different most likely token"


@pytest.mark.parametrize("name", PROMPT_NAMES)
def test_prompts_render_and_encode_to_the_reference_token_ids(reference, tokenizer, name):
    prompt = reference[name]
    if prompt["messages"] is not None:
        assert tokenizer.render_chat(prompt["messages"]) == prompt["text"]
    assert tokenizer.encode(prompt["text"]) == prompt["ids"].tolist()


@pytest.mark.parametrize("name", ["capital", "system"])  # the prompts whose whole vector is stored
def test_prefill_gives_the_reference_logits_over_the_whole_vocabulary(reference, model, name):
    expected = reference[name]["last_prompt_logits"]
    cache = KVCache(model.config)
    logits = model.prefill(reference[name]["ids"].tolist(), cache, cache.add_slot())
    assert logits.shape == expected.shape == (model.config.vocab_size,)
    np.testing.assert_allclose(logits, expected, rtol=0, atol=LOGIT_TOLERANCE)


def test_greedy_decoding_of_every_prompt_in_one_batch_follows_the_reference(reference, model):
    """All prompts prefilled into one cache (different lengths), then decoded together, argmax each step."""
    prompts = [reference[name] for name in PROMPT_NAMES]
    cache = KVCache(model.config)
    slots = [cache.add_slot() for _ in prompts]
    logits = np.stack(
        [model.prefill(p["ids"].tolist(), cache, s) for p, s in zip(prompts, slots, strict=True)]
    )
    produced: list[list[int]] = [[] for _ in prompts]
    steps = len(prompts[0]["continuation"])
    for step in range(steps):
        for row, prompt in enumerate(prompts):
            position = len(prompt["ids"]) - 1 + step
            where = f"{prompt['name']}, position {position}"
            assert_top_logits_match(
                logits[row], prompt["top_ids"][position], prompt["top_values"][position], where
            )
            produced[row].append(int(np.argmax(logits[row])))
        if step + 1 < steps:
            logits = model.decode([tokens[-1] for tokens in produced], cache, slots)
    assert produced == [p["continuation"].tolist() for p in prompts]


def test_every_position_fed_one_token_at_a_time_matches_the_reference(reference, model):
    prompt = reference["raw"]
    sequence = prompt["ids"].tolist() + prompt["continuation"].tolist()
    cache = KVCache(model.config)
    slot = cache.add_slot()
    logits = model.prefill(sequence[:1], cache, slot)
    for position in range(len(sequence)):
        if position:
            logits = model.decode([sequence[position]], cache, [slot])[0]
        where = f"raw, position {position}"
        assert_top_logits_match(logits, prompt["top_ids"][position], prompt["top_values"][position], where)


def test_the_generator_answers_the_reference_greedy_continuation(reference, model, tokenizer):
    prompt = reference["raw"]  # its continuation holds no end-of-turn token
    generator = Generator(model, tokenizer, max_batch=2)
    try:
        params = SamplingParams(max_tokens=len(prompt["continuation"]), temperature=0.0)
        [choice] = generator.submit(prompt["ids"].tolist(), params).result(timeout=120)
    finally:
        generator.close()
    assert list(choice.token_ids) == prompt["continuation"].tolist()
    assert choice.text == tokenizer.decode(prompt["continuation"].tolist())
