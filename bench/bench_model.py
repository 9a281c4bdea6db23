"""Bundled model speed: load time, prefill, generated tokens/s for one sequence vs a batch, prefix reuse,
and embeddings.

    .venv/bin/python bench/bench_model.py [--quick] [--tokens 64] [--batch 8 16]

Every sequence generates exactly ``--tokens`` tokens (end-of-turn tokens are masked with logit_bias), so the
figures measure the model, not how talkative the prompts make it. The baseline is one sequence, run in the
same process; ratios are batch tokens/s over single-sequence tokens/s. DESIGN.md reports llama.cpp
(llama-cpp-python) at ~77 tokens/s for one sequence on this machine. "Shared instructions" times requests
that share a long system prompt (a classification job) with and without prefix reuse.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from langbatch_core.local.model import embeddings
from langbatch_core.local.model.generation import Generator
from langbatch_core.local.model.gguf_weights import load_weights
from langbatch_core.local.model.llama import KVCache, LlamaModel
from langbatch_core.local.model.sampling import SamplingParams
from langbatch_core.local.model.tokenizer import ChatTokenizer

QUESTIONS = [
    "What is the capital of France?",
    "Write a sentence about cats.",
    "Name three colours.",
    "Why is the sky blue?",
    "Tell me about the sun.",
    "Who wrote Hamlet?",
    "Describe a tree.",
    "What is water made of?",
]


def memory() -> str:
    """Resident memory now (Linux) and the process's peak so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # kilobytes on Linux
    status = Path("/proc/self/status")
    if not status.exists():
        return f"peak RSS {peak} MB"
    resident = int(status.read_text().split("VmRSS:")[1].split()[0]) // 1024
    return f"RSS {resident} MB, peak {peak} MB"


def generate(generator: Generator, prompts: list[list[int]], params: SamplingParams) -> tuple[int, float]:
    """Submit every prompt at once; (generated tokens, seconds until the last one finished)."""
    start = time.perf_counter()
    futures = [generator.submit(ids, params) for ids in prompts]
    tokens = sum(len(future.result()[0].token_ids) for future in futures)
    return tokens, time.perf_counter() - start


def prefill_speed(model: LlamaModel, tokenizer: ChatTokenizer, length: int) -> float:
    """Prompt tokens/s for one prompt of about ``length`` tokens."""
    ids = tokenizer.encode("The quick brown fox jumps over the lazy dog. " * 200)[:length]
    cache = KVCache(model.config)
    start = time.perf_counter()
    model.prefill(ids, cache, cache.add_slot())
    return len(ids) / (time.perf_counter() - start)


def shared_instructions(model: LlamaModel, tokenizer: ChatTokenizer, requests: int) -> None:
    """Short answers to requests sharing a ~300-token system prompt, with and without prefix reuse."""
    rules = "Classify the sentiment of the user's review as positive, negative or neutral. " * 20
    prompts = [
        tokenizer.encode(
            tokenizer.render_chat([{"role": "system", "content": rules}, {"role": "user", "content": q}])
        )
        for q in QUESTIONS[:requests]
    ]
    params = SamplingParams(max_tokens=2, temperature=0.0)
    seconds = {}
    for reuse in (False, True):
        generator = Generator(model, tokenizer, max_batch=8)
        if not reuse:
            generator.prefixes.max_tokens = 0  # keeps nothing
        try:
            seconds[reuse] = generate(generator, prompts, params)[1]
        finally:
            generator.close()
    print(
        f"shared instructions ({len(prompts[0])}-token prompts, {requests} requests): "
        f"{seconds[False]:.2f} s without prefix reuse, {seconds[True]:.2f} s with it "
        f"(x{seconds[False] / seconds[True]:.2f})"
    )


def embedding_speed(count: int) -> None:
    embedder = embeddings.load_embedder()
    if embedder is None:
        print(f"embeddings: skipped ({embeddings.EMBEDDING_PACKAGE} not installed)")
        return
    texts = [f"Sentence number {i} says something about batch jobs." for i in range(count)]
    embedder.embed(texts[:8])  # warm-up
    start = time.perf_counter()
    embedder.embed(texts)
    seconds = time.perf_counter() - start
    print(f"embeddings: {count} sentences in {seconds:.2f} s = {count / seconds:.0f} texts/s")


def engine_batch(requests: int, max_tokens: int) -> None:
    """A chat batch through the local engine and the official client, as a user runs one."""
    import io
    import tempfile

    import openai
    import orjson

    from langbatch_core.local import LocalEngine
    from langbatch_core.local.model import BundledModelBackend

    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "any",
                "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
                "max_tokens": max_tokens,
                "temperature": 0,
            },
        }
        for i in range(requests)
    ]
    payload = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    with tempfile.TemporaryDirectory() as data, LocalEngine(data, backend=BundledModelBackend()) as engine:
        client = openai.OpenAI(base_url=engine.base_url, api_key="local", max_retries=0)
        upload = client.files.create(file=("requests.jsonl", io.BytesIO(payload)), purpose="batch")
        start = time.perf_counter()
        batch = client.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        while batch.status not in ("completed", "failed", "expired", "cancelled"):
            time.sleep(0.2)
            batch = client.batches.retrieve(batch.id)
        seconds = time.perf_counter() - start
        tokens = batch.usage.output_tokens if batch.usage else 0
        client.close()
    print(
        f"engine batch: {requests} chat requests ({batch.status}) in {seconds:.1f} s = "
        f"{requests / seconds:.2f} requests/s, {tokens / seconds:.1f} completion tokens/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tokens and batch sizes (~30 s)")
    parser.add_argument("--tokens", type=int, help="tokens generated per sequence (default 64, quick 16)")
    parser.add_argument("--batch", type=int, nargs="+", help="batch sizes to compare (default 8 16, quick 8)")
    parser.add_argument("--repeat", type=int, help="runs of each measurement, best kept (default 3, quick 2)")
    args = parser.parse_args()
    args.repeat = args.repeat or (2 if args.quick else 3)
    tokens = args.tokens or (16 if args.quick else 64)
    batches = args.batch or ([8] if args.quick else [8, 16])

    start = time.perf_counter()
    weights = load_weights()
    print(f"load + dequantize weights: {time.perf_counter() - start:.1f} s ({memory()})")
    tokenizer = ChatTokenizer.from_metadata(weights.metadata)
    model = LlamaModel(weights)
    prefill = max(prefill_speed(model, tokenizer, 128 if args.quick else 512) for _ in range(args.repeat))
    print(f"prefill: {prefill:.0f} prompt tokens/s")

    never_stop = dict.fromkeys(tokenizer.stop_token_ids, -100.0)
    params = SamplingParams(max_tokens=tokens, temperature=0.0, logit_bias=never_stop)
    prompts = [tokenizer.encode(tokenizer.render_chat([{"role": "user", "content": q}])) for q in QUESTIONS]
    generator = Generator(model, tokenizer, max_batch=max(batches))
    try:
        generate(generator, prompts[:1], SamplingParams(max_tokens=2, temperature=0.0))  # warm-up
        sizes = [1, *batches]
        best = dict.fromkeys(sizes, 0.0)
        for _ in range(args.repeat):  # interleaved, best of each: other processes share these cores
            for size in sizes:
                made, seconds = generate(generator, [prompts[i % len(prompts)] for i in range(size)], params)
                best[size] = max(best[size], made / seconds)
        print(f"1 sequence: {best[1]:.1f} tokens/s (baseline; best of {args.repeat})")
        for size in batches:
            print(
                f"batch of {size}: {best[size]:.1f} tokens/s = x{best[size] / best[1]:.2f} the single "
                "sequence (prefill included)"
            )
    finally:
        generator.close()
    print(f"memory after generating: {memory()}")
    shared_instructions(model, tokenizer, 4 if args.quick else 8)
    embedding_speed(64 if args.quick else 256)
    engine_batch(8 if args.quick else 32, tokens)
    print(f"memory at the end (embeddings and engine included): {memory()}")


if __name__ == "__main__":
    main()
