"""Token choice for the bundled model: greedy, seeded sampling, top_p, biases and penalties."""

from __future__ import annotations

import numpy as np

from langbatch_core.local.model.sampling import SamplingParams, choose_token


def logits_favouring(best: int, size: int = 50) -> np.ndarray:
    values = np.linspace(0.0, 1.0, size, dtype=np.float32)
    values[best] = 5.0
    return values


def test_temperature_zero_takes_the_most_likely_token():
    params = SamplingParams(max_tokens=1, temperature=0.0)
    assert choose_token(logits_favouring(7), params, params.rng()) == 7


def test_the_same_seed_gives_the_same_tokens_and_another_seed_differs():
    logits = np.zeros(1000, dtype=np.float32)  # uniform: every draw is up to the generator

    def draws(seed: int) -> list[int]:
        params = SamplingParams(max_tokens=1, temperature=1.0, seed=seed)
        rng = params.rng()
        return [choose_token(logits, params, rng) for _ in range(20)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)


def test_each_choice_of_a_seeded_request_has_its_own_reproducible_stream():
    params = SamplingParams(max_tokens=1, temperature=1.0, seed=9)
    logits = np.zeros(1000, dtype=np.float32)

    def draws(choice: int) -> list[int]:
        rng = params.rng(choice)
        return [choose_token(logits, params, rng) for _ in range(10)]

    assert draws(0) == draws(0)
    assert draws(0) != draws(1)


def test_small_top_p_keeps_only_the_most_likely_token():
    params = SamplingParams(max_tokens=1, temperature=2.0, top_p=0.01, seed=1)
    rng = params.rng()
    assert {choose_token(logits_favouring(3), params, rng) for _ in range(50)} == {3}


def test_top_p_samples_within_the_nucleus_only():
    logits = np.full(2000, -20.0, dtype=np.float32)
    logits[[10, 11, 12]] = 0.0  # three equally likely tokens hold ~all the mass
    params = SamplingParams(max_tokens=1, temperature=1.0, top_p=0.9, seed=2)
    rng = params.rng()
    assert {choose_token(logits, params, rng) for _ in range(200)} == {10, 11, 12}


def test_sampling_without_top_p_can_reach_any_token():
    params = SamplingParams(max_tokens=1, temperature=1.0, seed=5)
    rng = params.rng()
    seen = {choose_token(np.zeros(8, dtype=np.float32), params, rng) for _ in range(200)}
    assert seen == set(range(8))


def test_logit_bias_can_force_and_forbid_tokens():
    forced = SamplingParams(max_tokens=1, temperature=0.0, logit_bias={2: 100.0})
    assert choose_token(logits_favouring(7), forced, forced.rng()) == 2
    forbidden = SamplingParams(max_tokens=1, temperature=0.0, logit_bias={7: -100.0})
    assert choose_token(logits_favouring(7), forbidden, forbidden.rng()) != 7


def test_frequency_and_presence_penalties_push_away_from_repeated_tokens():
    logits = logits_favouring(7)  # 7 scores 5.0, the runner-up (49) 1.0
    plain = SamplingParams(max_tokens=1, temperature=0.0)
    assert choose_token(logits, plain, plain.rng(), generated=[7, 7, 7]) == 7
    frequency = SamplingParams(max_tokens=1, temperature=0.0, frequency_penalty=2.0)
    assert choose_token(logits, frequency, frequency.rng(), generated=[7]) == 7  # 5 - 2 > 1
    assert choose_token(logits, frequency, frequency.rng(), generated=[7, 7, 7]) == 49  # 5 - 6 < 1
    presence = SamplingParams(max_tokens=1, temperature=0.0, presence_penalty=2.0)
    assert (
        choose_token(logits, presence, presence.rng(), generated=[7, 7, 7]) == 7
    )  # once, whatever the count
    near = logits.copy()
    near[7] = 2.0
    assert choose_token(near, presence, presence.rng(), generated=[7]) == 49  # 2 - 2 < 1


def test_choose_token_leaves_the_logits_untouched():
    logits = logits_favouring(4)
    before = logits.copy()
    params = SamplingParams(max_tokens=1, temperature=0.7, frequency_penalty=1.0, logit_bias={1: 3.0}, seed=0)
    choose_token(logits, params, params.rng(), generated=[4])
    np.testing.assert_array_equal(logits, before)
