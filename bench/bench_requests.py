"""Benchmark: validating a request file, against a bare ``json.loads`` loop over the same file.

    .venv/bin/python bench/bench_requests.py            # 50,000 chat requests (~79 MB)
    .venv/bin/python bench/bench_requests.py --quick    # 5,000 requests

Each variant runs in its own child process (so peak RSS is its own), several times; the best time counts.
The file is generated into a temporary directory: realistic prompts (paragraphs, quotes, some non-ASCII and
CJK text), multi-turn chats, tools, images, response formats. Target (issue 3): ``validate_file`` in under
half the time of the ``json.loads`` loop, in bounded memory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    """Runs one variant once and prints {seconds, peak_mb, base_mb, detail} as JSON."""
    if variant.startswith("json_loads"):
        base = _rss()
        start, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
        with open(path, "rb") if variant == "json_loads_bytes" else open(path, encoding="utf-8") as handle:
            for line in handle:
                json.loads(line)
        detail = ""
    else:
        from langbatch_core.requests import validate_file

        base = _rss()
        start, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
        report = validate_file(path, token_sample=64 if variant == "validate_sampled" else 0)
        detail = (
            f"{report.request_count} requests, {report.error_count} errors, "
            f"{report.input_tokens:,} input tokens, {len(report.jobs)} job(s)"
        )
    seconds, own = time.perf_counter() - start, time.process_time() - cpu
    helper = _children_cpu() - children
    if helper:
        detail += f"; cpu {own:.3f} s here + {helper:.3f} s in the forked helper"
    found = {"seconds": seconds, "cpu": own + helper, "peak_mb": _rss(), "base_mb": base, "detail": detail}
    print(json.dumps(found))


def _children_cpu() -> float:
    """CPU seconds of the waited-for child processes (validate_file forks one for big files)."""
    times = os.times()
    return times.children_user + times.children_system


def _rss() -> float:
    """Peak RSS in MB; with a forked child's peak added (a conservative sum: the two share pages)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (own + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def run_child(variant: str, path: Path) -> dict:
    command = [sys.executable, __file__, "--child", variant, str(path)]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(variants: list[str], path: Path, repeat: int) -> dict[str, dict]:
    """Best run of each variant; the variants take turns, so a busy spell of the machine hits them all."""
    runs: dict[str, list[dict]] = {variant: [] for variant in variants}
    for _ in range(repeat):
        for variant in variants:
            runs[variant].append(run_child(variant, path))
    return {variant: _best(results) for variant, results in runs.items()}


def _best(runs: list[dict]) -> dict:
    best = min(runs, key=lambda run: run["seconds"])
    return {**best, "cpu": min(run["cpu"] for run in runs), "peak_mb": max(run["peak_mb"] for run in runs)}


BASELINES = ["json_loads_text", "json_loads_bytes"]


def compare(title: str, path: Path, variants: list[str], repeat: int) -> None:
    """Prints each variant's best wall and CPU time as a ratio to each json.loads loop."""
    size_mb = path.stat().st_size / 1e6
    print(f"\n{title}: {path.name}, {size_mb:.1f} MB")
    header = (
        f"{'variant':<18} {'wall s':>7} {'/text':>6} {'/bytes':>7} {'cpu s':>7} {'/text':>6} {'/bytes':>7}"
    )
    print(f"{header} {'peak RSS MB':>12} {'after imports':>14}")
    results = measure(BASELINES + variants, path, repeat)
    text, raw = results[BASELINES[0]], results[BASELINES[1]]
    for variant in BASELINES + variants:
        run = results[variant]
        wall, cpu = run["seconds"], run["cpu"]
        print(
            f"{variant:<18} {wall:>7.3f} {wall / text['seconds']:>6.2f} {wall / raw['seconds']:>7.2f} "
            f"{cpu:>7.3f} {cpu / text['cpu']:>6.2f} {cpu / raw['cpu']:>7.2f} {run['peak_mb']:>12.0f} "
            f"{run['base_mb']:>14.0f}  {run['detail']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 requests, one run each")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    count, repeat = (5_000, 1) if args.quick else (50_000, 5)
    with tempfile.TemporaryDirectory(prefix="bench-requests-") as tmp:
        realistic = write_file(Path(tmp) / "chat.jsonl", count, chars=1000)
        compare(
            "Realistic chat requests (json.dumps defaults)",
            realistic,
            ["validate", "validate_sampled"],
            repeat,
        )
        utf8 = write_file(Path(tmp) / "chat-utf8.jsonl", count, chars=1000, ensure_ascii=False)
        compare("The same, non-ASCII text written as UTF-8", utf8, ["validate"], repeat)
        plain = write_file(Path(tmp) / "plain.jsonl", count, chars=1400, ascii_only=True)
        compare("Plain ASCII prompts", plain, ["validate"], repeat)
    print("\nratios: time / the time of a json.loads loop over the file's lines read as text (/text) or as")
    print("bytes (/bytes); best of the runs, variants taking turns; cpu = process time, a forked helper's")
    print("included (steadier on a busy machine). Files of 16 MB or more are validated in two processes")
    print("(wall time nears the larger share when the second core is free). validate_sampled also loads")
    print("the o200k tokenizer (~1 s, once per process) for 64 requests.")


if __name__ == "__main__":
    main()
