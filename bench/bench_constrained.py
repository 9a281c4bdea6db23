"""Constrained decoding: what the JSON grammar's token mask costs per generated token on the bundled model.

    .venv/bin/python bench/bench_constrained.py [--quick] [--repeat 3] [--batch 1 8]

Each prompt is first answered with a JSON schema (``response_format`` json_schema, greedy). The baseline,
in the same process, generates the same number of tokens for each prompt without a grammar (end-of-turn
tokens masked with logit_bias), so both sides run the same forward passes and differ only by the mask. The
ratio is constrained time over unconstrained time, in wall and CPU time; "mask alone" replays the
constrained answers' tokens through a fresh matcher (mask + advance, no model): CPU microseconds per token.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

from bench._measure import machine
from langbatch_core.local.model.chat_request import parse_chat_request
from langbatch_core.local.model.generation import Generator
from langbatch_core.local.model.gguf_weights import load_weights
from langbatch_core.local.model.llama import LlamaModel
from langbatch_core.local.model.sampling import SamplingParams
from langbatch_core.local.model.tokenizer import ChatTokenizer

PROMPTS = [
    "Tell me about Paris.",
    "Describe a good laptop.",
    "I loved this phone, the battery lasts for days.",
    "Describe Berlin in winter.",
    "Name a famous painter.",
    "The delivery was late and the box was damaged.",
    "Describe a fruit bowl.",
    "Tell me about the river Thames.",
]
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["subject", "sentiment", "score", "facts", "place"],
    "properties": {
        "subject": {"type": "string", "pattern": "^[A-Za-z ]{1,30}$"},
        "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
        "score": {"type": "number"},
        "facts": {
            "type": "array",
            "maxItems": 3,
            "items": {"type": "string", "pattern": "^[A-Za-z ,]{1,40}$"},
        },
        "place": {
            "type": "object",
            "additionalProperties": False,
            "required": ["city", "in_europe"],
            "properties": {
                "city": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "in_europe": {"type": "boolean"},
            },
        },
    },
}


def grammar() -> str:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "facts", "schema": SCHEMA, "strict": True},
    }
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": response_format}
    found = parse_chat_request(body).grammar
    assert found is not None
    return found


def run(generator: Generator, prompts: list[list[int]], params: list[SamplingParams]) -> tuple[list, dict]:
    """Submit every prompt at once; (the choices, wall and CPU seconds until the last one finished).

    CPU time is the whole process's (the worker thread and BLAS's threads): steadier than wall time when
    other processes share the cores."""
    wall, cpu = time.perf_counter(), time.process_time()
    futures = [generator.submit(ids, p) for ids, p in zip(prompts, params, strict=True)]
    choices = [future.result()[0] for future in futures]
    return choices, {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def compare(generator: Generator, prompts: list[list[int]], compiled: str, repeat: int) -> dict:
    first = [SamplingParams(max_tokens=200, temperature=0.0, grammar=compiled)] * len(prompts)
    choices, _ = run(generator, prompts, first)
    # both sides ask for exactly the tokens the answers took: the same key/value cache sizes, the same steps
    lengths = [len(c.token_ids) for c in choices]
    constrained = [SamplingParams(max_tokens=n, temperature=0.0, grammar=compiled) for n in lengths]
    never_stop = dict.fromkeys(generator.tokenizer.stop_token_ids, -100.0)
    plain = [SamplingParams(max_tokens=n, temperature=0.0, logit_bias=never_stop) for n in lengths]
    best = {(side, clock): float("inf") for side in ("constrained", "plain") for clock in ("wall", "cpu")}
    for _ in range(repeat):  # interleaved, best of each: other processes share these cores
        for side, params in (("constrained", constrained), ("plain", plain)):
            seconds = run(generator, prompts, params)[1]
            for clock in ("wall", "cpu"):
                best[side, clock] = min(best[side, clock], seconds[clock])
    tokens = sum(len(c.token_ids) for c in choices)
    complete = sum(c.finish_reason == "stop" for c in choices)
    return {"tokens": tokens, "complete": complete, "choices": choices, "best": best}


def mask_alone(generator: Generator, compiled: str, answers: list, repeat: int) -> float:
    """CPU microseconds per token to compute the mask, apply it to logits and advance the matcher."""
    logits = np.random.default_rng(0).standard_normal(generator.tokenizer.vocab_size).astype(np.float32)
    best = float("inf")
    tokens = sum(len(a.token_ids) for a in answers)
    for _ in range(repeat):
        start = time.process_time()
        for answer in answers:
            matcher = generator.grammars.matcher(compiled)
            for token in answer.token_ids:
                matcher.masked(logits)
                matcher.consume(token)
        best = min(best, time.process_time() - start)
    return best / tokens * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, batch of 8 only")
    parser.add_argument("--repeat", type=int, help="runs of each measurement, best kept (default 3, quick 1)")
    parser.add_argument("--batch", type=int, nargs="+", help="sequences decoded together (default 1 8)")
    args = parser.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    sizes = args.batch or ([8] if args.quick else [1, 8])
    print(machine())
    weights = load_weights()
    tokenizer = ChatTokenizer.from_metadata(weights.metadata)
    generator = Generator(LlamaModel(weights), tokenizer, max_batch=max(sizes))
    try:
        start = time.perf_counter()
        generator.grammars.ll_tokenizer()
        print(f"grammar vocabulary built once per process: {time.perf_counter() - start:.2f} s")
        start = time.perf_counter()
        compiled = grammar()
        print(f"schema compiled and checked: {(time.perf_counter() - start) * 1e3:.1f} ms")
        encoded = [tokenizer.encode(tokenizer.render_chat([{"role": "user", "content": p}])) for p in PROMPTS]
        for size in sizes:
            found = compare(generator, encoded[:size], compiled, repeat)
            best, tokens = found["best"], found["tokens"]
            complete = f"{found['complete']}/{size} answers complete"
            print(f"batch of {size}: {tokens} tokens, {complete} (best of {repeat})")
            for clock in ("wall", "cpu"):
                plain, constrained = best["plain", clock], best["constrained", clock]
                print(
                    f"  {clock}: unconstrained {plain / tokens * 1e3:.1f} ms/token (baseline), constrained "
                    f"{constrained / tokens * 1e3:.1f} ms/token = x{constrained / plain:.3f}"
                )
            if size == max(sizes):
                mask = mask_alone(generator, compiled, found["choices"], repeat)
                share = mask / 1e3 / (best["plain", "cpu"] / tokens * 1e3)
                print(f"mask alone: {mask:.0f} µs/token = {share:.2%} of an unconstrained token's CPU time")
                print(f"an answer: {found['choices'][0].text}")
    finally:
        generator.close()


if __name__ == "__main__":
    main()
