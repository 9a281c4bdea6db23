"""Benchmark: validating a request file, against a bare ``json.loads`` loop over the same file.

    .venv/bin/python bench/bench_requests.py            # 50,000 chat requests (~79 MB)
    .venv/bin/python bench/bench_requests.py --quick    # 5,000 requests
    .venv/bin/python bench/bench_requests.py --langbatch-0-1-2 /tmp/lb012/bin/python   # + the 0.1.2 baseline

Each variant runs in its own child process (so peak RSS is its own), several times; the best time counts.
The file is generated into a temporary directory: realistic prompts (paragraphs, quotes, some non-ASCII and
CJK text), multi-turn chats, tools, images, response formats. Target (issue 3): ``validate_file`` in under
half the time of the ``json.loads`` loop, in bounded memory; issue 13: the batch constructor (validation and
the batch's copy) too, >= 10x faster than LangBatch 0.1.2's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

from _measure import machine, measure, report, run_child, timed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SENTENCES = [
    "Summarise the customer's complaint about the delayed shipment and propose a fair remedy.",
    'The client wrote: "I ordered the blue model, but the invoice says red — please check."',
    "Classify the sentiment of the review as positive, negative or neutral, and explain why.",
    "Translate the following paragraph into French, keeping the product names unchanged.",
    "Le café était délicieux, mais le service a été très lent ce matin-là.",
    "List three risks in the quarterly report and rate each from 1 to 5.",
    "Extract the order number, the date and the total amount as JSON.",
    "It's the third time this month that the parcel didn't arrive on time…",
]
OTHER_SCRIPTS = [
    "東京の倉庫から発送された荷物が三日遅れて到着しました。返金の手続きを教えてください。",
    "Посылка пришла с опозданием на три дня, и коробка была повреждена.",
]


def prompt(rng: random.Random, chars: int) -> str:
    parts: list[str] = []
    size = 0
    while size < chars:
        text = rng.choice(OTHER_SCRIPTS if rng.random() < 0.05 else SENTENCES)
        parts.append(text)
        size += len(text) + 1
        if rng.random() < 0.15:
            parts.append("\n\n")
    return " ".join(parts)


def request(index: int, rng: random.Random, chars: int) -> dict:
    messages = [
        {"role": "system", "content": "You are a careful assistant for an online shop."},
        {"role": "user", "content": prompt(rng, chars)},
    ]
    body: dict = {"model": "gpt-4o-mini", "messages": messages, "max_tokens": 256, "temperature": 0.2}
    kind = index % 6
    if kind == 1:
        messages[1:1] = [
            {"role": "user", "content": "Earlier question about order 1234?"},
            {"role": "assistant", "content": "It shipped on Monday."},
        ]
    elif kind == 2:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": "lookup_order",
                    "description": "Find an order by number.",
                    "parameters": {"type": "object", "properties": {"number": {"type": "string"}}},
                },
            }
        ]
    elif kind == 3:
        messages[1]["content"] = [
            {"type": "text", "text": messages[1]["content"]},
            {"type": "image_url", "image_url": {"url": "https://example.com/p/1234.jpg", "detail": "low"}},
        ]
    elif kind == 4:
        body["response_format"] = {"type": "json_object"}
    return {"custom_id": f"request-{index}", "method": "POST", "url": "/v1/chat/completions", "body": body}


def write_file(
    path: Path, count: int, chars: int, ascii_only: bool = False, ensure_ascii: bool = True
) -> Path:
    rng = random.Random(3)
    with path.open("w", encoding="utf-8") as handle:
        for index in range(1, count + 1):
            if ascii_only:
                words = " ".join(
                    rng.choice(["order", "refund", "parcel", "late", "invoice"]) for _ in range(chars // 6)
                )
                line = request(index, rng, 10)
                line["body"]["messages"][-1]["content"] = words
            else:
                line = request(index, rng, chars)
            handle.write(json.dumps(line, ensure_ascii=ensure_ascii) + "\n")
    return path


# -------------------------------------------------------------------------------------------- children


def child(variant: str, path: str) -> None:
    """Runs one variant once (after its imports) and reports its figures."""
    if variant.startswith("json_loads"):
        with timed() as found, _open(path, variant) as handle:
            for line in handle:
                json.loads(line)
        report({**found, "detail": ""})
    elif variant == "langbatch_0_1_2":  # run by that release's own Python (--langbatch-0-1-2)
        with tempfile.TemporaryDirectory() as data:
            os.environ.update(OPENAI_API_KEY="sk-not-used", LANGBATCH_DATA_PATH=data)
            from langbatch.openai import OpenAIChatCompletionBatch as OldBatch

            with timed() as found:
                OldBatch(path)
        report({**found, "detail": "LangBatch 0.1.2's constructor (pydantic, a line at a time)"})
    elif variant == "floor":  # what no per-line Python runs in: the read, the copy and the typed decode
        from langbatch_core.jsonl import BlockReader, CopyingReader
        from langbatch_core.requests.fast import chat_decoder

        decode_lines = chat_decoder("/v1/chat/completions")[1]
        with timed() as found, open(path, "rb", buffering=0) as handle, tempfile.TemporaryFile() as out:
            for block in BlockReader(CopyingReader(handle, out)):
                decode_lines(block.data)
        report({**found, "detail": "read + copy + typed decode only (no facts, no tally)"})
    elif variant == "constructor":
        with tempfile.TemporaryDirectory() as data:
            os.environ["OPENAI_API_KEY"] = "sk-not-used"
            import openai  # noqa: F401 (imported by the first batch of a process: not timed, as for 0.1.2)

            from langbatch_core import FileBatchStorage, OpenAIChatCompletionBatch

            storage = FileBatchStorage(data)
            with timed() as found:
                batch = OpenAIChatCompletionBatch(path, storage=storage)
            assert batch.requests_path.stat().st_size == Path(path).stat().st_size
        report({**found, "detail": f"{batch.record.request_count} requests validated and copied"})
    else:
        from langbatch_core.requests import validate_file

        with timed() as found:
            result = validate_file(path, token_sample=64 if variant == "validate_sampled" else 0)
        detail = (
            f"{result.request_count} requests, {result.error_count} errors, "
            f"{result.input_tokens:,} input tokens, {len(result.jobs)} job(s)"
        )
        report({**found, "detail": detail})


def _open(path: str, variant: str):  # type: ignore[no-untyped-def]
    return open(path, "rb") if variant == "json_loads_bytes" else open(path, encoding="utf-8")


BASELINES = ["json_loads_text", "json_loads_bytes"]


def compare(title: str, path: Path, variants: list[str], repeat: int, old_python: str | None = None) -> None:
    """Prints each variant's best wall and CPU time as a ratio to each json.loads loop."""
    size_mb = path.stat().st_size / 1e6
    print(f"\n{title}: {path.name}, {size_mb:.1f} MB")
    header = (
        f"{'variant':<18} {'wall s':>7} {'/text':>6} {'/bytes':>7} {'cpu s':>7} {'/text':>6} {'/bytes':>7}"
    )
    print(f"{header} {'peak RSS MB':>12} {'after imports':>14}")
    if old_python:
        variants = [*variants, "langbatch_0_1_2"]

    def run(variant: str) -> dict:
        python = old_python if variant == "langbatch_0_1_2" else None
        return run_child(__file__, variant, str(path), python=python)

    results = measure(BASELINES + variants, run, repeat)
    text, raw = results[BASELINES[0]], results[BASELINES[1]]
    for variant in BASELINES + variants:
        found = results[variant]
        wall, cpu = found["seconds"], found["cpu"]
        print(
            f"{variant:<18} {wall:>7.3f} {wall / text['seconds']:>6.2f} {wall / raw['seconds']:>7.2f} "
            f"{cpu:>7.3f} {cpu / text['cpu']:>6.2f} {cpu / raw['cpu']:>7.2f} {found['peak_mb']:>12.0f} "
            f"{found['base_mb']:>14.0f}  {found['detail']}"
        )
    if old_python:
        old, new = results["langbatch_0_1_2"]["seconds"], results["constructor"]["seconds"]
        print(f"constructor vs LangBatch 0.1.2's: {old / new:.1f}x faster (wall)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 requests, one run each")
    parser.add_argument("--repeat", type=int, help="runs of each variant (default 5; --quick: 1)")
    parser.add_argument(
        "--langbatch-0-1-2",
        metavar="PYTHON",
        help="the Python of a venv with langbatch==0.1.2 installed: adds its constructor as a baseline",
    )
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    count, repeat = (5_000, 1) if args.quick else (50_000, 5)
    repeat = args.repeat or repeat
    print(machine())
    with tempfile.TemporaryDirectory(prefix="bench-requests-") as tmp:
        realistic = write_file(Path(tmp) / "chat.jsonl", count, chars=1000)
        compare(
            "Realistic chat requests (json.dumps defaults)",
            realistic,
            ["validate", "constructor", "floor", "validate_sampled"],
            repeat,
            args.langbatch_0_1_2,
        )
        utf8 = write_file(Path(tmp) / "chat-utf8.jsonl", count, chars=1000, ensure_ascii=False)
        variants = ["validate", "constructor", "floor"]
        compare("The same, non-ASCII text written as UTF-8", utf8, variants, repeat)
        plain = write_file(Path(tmp) / "plain.jsonl", count, chars=1400, ascii_only=True)
        compare("Plain ASCII prompts", plain, variants, repeat)
    print("\nratios: time / the time of a json.loads loop over the file's lines read as text (/text) or")
    print("as bytes (/bytes); best of the runs, variants taking turns, each run in a new process timed after")
    print("its imports; cpu = process time (steadier on a busy machine). constructor: the batch constructor,")
    print("validation plus the batch's copy of the file in one read. validate_sampled also loads the o200k")
    print("tokenizer (~1 s, once per process) for 64 requests. floor: the part of the constructor that runs")
    print("in C (reading, copying, msgspec's typed decode of each block): what is left of 0.5 is for all the")
    print("per-line Python (facts, ids, models, jobs).")


if __name__ == "__main__":
    main()
