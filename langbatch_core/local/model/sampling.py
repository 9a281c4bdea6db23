"""Choosing the next token from logits, as OpenAI's chat parameters describe it.

    params = SamplingParams(temperature=0.7, top_p=0.9, seed=42)
    rng = params.rng(choice_index=0)
    token = choose_token(logits, params, rng, generated_ids)

Temperature 0 is greedy (argmax). Otherwise logits are penalised (``logit_bias``, ``frequency_penalty``,
``presence_penalty``), divided by the temperature, cut to the smallest set whose probability reaches
``top_p`` and sampled with a generator seeded from ``seed`` (the same seed gives the same answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SamplingParams:
    """How to pick tokens and when to stop (``max_tokens`` counts completion tokens per choice)."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    grammar: str | None = None  # an llguidance grammar the answer must follow (``json_output``)

    def rng(self, choice_index: int = 0) -> np.random.Generator:
        """The random generator of one choice: reproducible with a ``seed``, fresh otherwise."""
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng([abs(self.seed), int(self.seed < 0), choice_index])


def choose_token(
    logits: np.ndarray, params: SamplingParams, rng: np.random.Generator, generated: Sequence[int] = ()
) -> int:
    """The next token id for one sequence's ``logits`` (vocab,)."""
    scores = _adjusted(logits, params, generated)
    if params.temperature <= 0.0:
        return int(np.argmax(scores))
    scaled = scores.astype(np.float64) / params.temperature
    probabilities = np.exp(scaled - scaled.max())
    probabilities /= probabilities.sum()
    if params.top_p >= 1.0:
        return int(rng.choice(len(probabilities), p=probabilities))
    candidates = _nucleus(probabilities, params.top_p)
    kept = probabilities[candidates]
    return int(candidates[rng.choice(len(candidates), p=kept / kept.sum())])


def _nucleus(probabilities: np.ndarray, top_p: float, first_look: int = 256) -> np.ndarray:
    """Ids of the smallest most-probable set whose mass reaches ``top_p``, most probable first.

    Sorting the whole vocabulary costs milliseconds per token; the nucleus nearly always sits among the
    few hundred best tokens, so those are sorted first and the full sort is the fallback.
    """
    if first_look < len(probabilities):
        best = np.argpartition(-probabilities, first_look)[:first_look]
        order = best[np.argsort(-probabilities[best])]
        if probabilities[order].sum() < top_p:
            order = np.argsort(-probabilities)
    else:
        order = np.argsort(-probabilities)
    cumulative = np.cumsum(probabilities[order])
    keep = int(np.searchsorted(cumulative, top_p)) + 1
    return order[: min(keep, len(order))]


def _adjusted(logits: np.ndarray, params: SamplingParams, generated: Sequence[int]) -> np.ndarray:
    if not (params.logit_bias or params.frequency_penalty or params.presence_penalty):
        return logits
    scores = logits.astype(np.float32, copy=True)
    for token, bias in params.logit_bias.items():
        scores[token] += bias
    if generated and (params.frequency_penalty or params.presence_penalty):
        tokens, counts = np.unique(np.asarray(generated), return_counts=True)
        scores[tokens] -= counts * params.frequency_penalty + params.presence_penalty
    return scores
