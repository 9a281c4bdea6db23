"""Benchmark: loading a result file into the flat table, against pandas.read_json + json_normalize.

    .venv/bin/python bench/bench_results.py            # 50,000 result lines (~180 MB)
    .venv/bin/python bench/bench_results.py --quick    # 5,000 lines

Each variant runs in its own child process (so peak RSS is its own); the best of the runs counts. Also
times what ``retry()`` and the batch counts read (``read_outcomes``) against a dict per line, as before.
The file is generated into a temporary directory: long chat answers (paragraphs, unicode), 400s, expired
and cancelled requests in shuffled order, and fields (refusal, tool_calls, cached tokens) that first
appear near the end.
Targets (issue 3): ``load_results`` >= 5x faster than the baseline, peak memory <= 1.5x the file size;
filtering, sorting and searching the loaded table feel instant.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from _measure import machine, measure, report, run_child, timed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENGLISH = [
    "Thank you for your patience. I checked order 4471: it left the warehouse on Monday and the carrier "
    "reports a delay at the regional hub. You should receive it by Thursday.",
    "Here is a summary of the complaint: the customer received the wrong colour and asks for an exchange "
    "or a full refund, whichever is faster.",
    'Sentiment: negative. The reviewer mentions "slow delivery" twice and rates the packaging 2/5.',
    "1. Currency risk\n2. Supplier concentration\n3. Seasonal demand. Each is rated 3/5 for now.",
    '{"order": "A-1234", "date": "2024-03-18", "total": 129.90, "currency": "EUR"}',
    "The invoice lists two items, but only one was shipped; the second is back-ordered until May.",
]
TYPOGRAPHIC = "The parcel was delayed — again — and the customer’s “express” upgrade was not refunded."
FOREIGN = [
    "Voici la traduction : « Le colis est arrivé en retard, mais le produit est conforme à la commande. »",
    "荷物は月曜日に発送されました。到着まであと二日ほどかかります。ご迷惑をおかけして申し訳ありません。",
]


def answer(rng: random.Random, chars: int, unicode_heavy: bool = False) -> str:
    """English prose (a third of answers with typographic dashes/quotes, 5% in French or Japanese), or with
    ``unicode_heavy`` every paragraph drawn from all of them."""
    pool = ENGLISH
    if unicode_heavy:
        pool = [*ENGLISH, TYPOGRAPHIC, *FOREIGN]
    elif rng.random() < 0.05:
        pool = FOREIGN
    parts: list[str] = []
    size = 0
    while size < chars:
        text = rng.choice(pool)
        parts.append(text)
        size += len(text) + 2
    if not unicode_heavy and rng.random() < 0.33:
        parts.insert(rng.randrange(len(parts)), TYPOGRAPHIC)
    return "\n\n".join(parts)


def result_line(index: int, late: bool, rng: random.Random, chars: int, unicode_heavy: bool) -> dict:
    """One result line shaped like OpenAI's today (usage details, refusal/annotations, service_tier);
    ``late`` lines carry a refusal, a tool call or cached tokens, which earlier lines never have."""
    custom_id = f"request-{index}"
    if index % 199 == 0:
        return _never_run(custom_id, "batch_cancelled")
    if index % 97 == 0:
        return _never_run(custom_id, "batch_expired")
    if index % 50 == 0:
        error = {
            "message": "Unrecognized request argument supplied: max_tokenz",
            "type": "invalid_request_error",
        }
        return {
            "id": f"b_{index}",
            "custom_id": custom_id,
            "response": {"status_code": 400, "body": {"error": error}},
            "error": None,
        }
    completion = rng.randint(50, 900)
    usage: dict = {"prompt_tokens": rng.randint(80, 900), "completion_tokens": completion}
    usage["total_tokens"] = usage["prompt_tokens"] + completion
    usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
    usage["completion_tokens_details"] = {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    }
    content = answer(rng, chars, unicode_heavy)
    message: dict = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
    finish = "stop"
    if late and index % 3 == 0:
        message.update(content=None, refusal="I can't help with that.")
    elif late and index % 3 == 1:
        call = {"id": f"call_{index}", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
        message.update(content=None, tool_calls=[call])
        finish = "tool_calls"
    elif late:
        usage["prompt_tokens_details"]["cached_tokens"] = 1024
    body = {
        "id": f"chatcmpl-{index}",
        "object": "chat.completion",
        "created": 1711652795,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": "fp_44709d6fcb",
    }
    response = {"status_code": 200, "request_id": f"req_{index}", "body": body}
    return {"id": f"batch_req_{index}", "custom_id": custom_id, "response": response, "error": None}


def _never_run(custom_id: str, code: str) -> dict:
    error = {
        "code": code,
        "message": "This request could not be executed before the completion window expired.",
    }
    return {"id": f"b_{custom_id}", "custom_id": custom_id, "response": None, "error": error}


def write_files(directory: Path, count: int, chars: int, unicode_heavy: bool = False) -> tuple[Path, Path]:
    rng = random.Random(5)
    order = list(range(1, count + 1))
    rng.shuffle(order)
    results = directory / ("results-unicode.jsonl" if unicode_heavy else "results.jsonl")
    with results.open("w", encoding="utf-8") as handle:
        for position, index in enumerate(order):
            late = position >= count * 0.99  # the last 1% of the file
            handle.write(json.dumps(result_line(index, late, rng, chars, unicode_heavy)) + "\n")
    requests = directory / "requests.jsonl"
    with requests.open("w", encoding="utf-8") as handle:
        for index in range(1, count + 2):  # one more request than results: a "missing" row
            body = {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": f"Question {index}: {answer(rng, 300)}"}],
            }
            handle.write(
                json.dumps(
                    {
                        "custom_id": f"request-{index}",
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": body,
                    }
                )
                + "\n"
            )
    return results, requests


# -------------------------------------------------------------------------------------------- children


def child(variant: str, results: str, requests: str) -> None:
    """Runs one variant once (after its imports) and reports its figures."""
    import pandas as pd

    from langbatch_core.results import iter_results, load_results, read_outcomes

    detail = ""
    if variant == "baseline":
        with timed() as found:
            raw = pd.read_json(results, lines=True, dtype=False)
            table = pd.json_normalize(raw.to_dict(orient="records"))
    elif variant == "outcomes_as_dicts":  # what retry() and the counts did before: a dict per line
        with timed() as found:
            table = {result.get("custom_id"): result for _, result in iter_results(results)}
    elif variant == "outcomes":  # what they do now: the typed outcome of each line
        with timed() as found:
            table = read_outcomes(results)
    elif variant == "floor":  # what runs in C alone: reading the blocks and msgspec's typed decode
        from langbatch_core.results.lines import result_blocks
        from langbatch_core.results.rows import _decode_lines

        with timed() as found:
            table = [row for _, block in result_blocks(results) for row in _decode_lines(block)]
        detail = "read + typed decode only (no rows, no Arrow arrays)"
    else:
        with timed() as found:
            table = load_results(results, requests=requests if variant == "load_with_requests" else None)
        detail = _interactions(table)
    report({**found, "rows": len(table), "detail": detail})


def _interactions(table) -> str:  # type: ignore[no-untyped-def]
    """Times what the Results page does: filter, sort, search; checks the late fields are there."""
    timings = {}
    start = time.perf_counter()
    failed = table[table["status"] != "succeeded"]
    timings["filter"] = time.perf_counter() - start
    start = time.perf_counter()
    table.sort_values("completion_tokens", ascending=False)
    timings["sort"] = time.perf_counter() - start
    start = time.perf_counter()
    found = table[table["answer"].str.contains("warehouse", case=False, regex=False, na=False)]
    timings["search"] = time.perf_counter() - start
    late = (
        int((table["cached_tokens"] > 0).sum()),
        int(table["refusal"].notna().sum()),
        int(table["tool_calls"].notna().sum()),
    )
    shown = ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in timings.items())
    counts = f"{len(failed)} not succeeded, {len(found)} found"
    return f"{shown}; {counts}; late values kept: cached {late[0]}, refusal {late[1]}, tool_calls {late[2]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 lines, one run each")
    parser.add_argument("--repeat", type=int, help="runs of each variant (default 3; --quick: 1)")
    parser.add_argument(
        "--child", nargs=3, metavar=("VARIANT", "RESULTS", "REQUESTS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    count, repeat = (5_000, 1) if args.quick else (50_000, 3)
    repeat = args.repeat or repeat
    print(machine())
    with tempfile.TemporaryDirectory(prefix="bench-results-") as tmp:
        results, requests = write_files(Path(tmp), count, chars=3300)
        compare("Chat results, English answers", results, requests, repeat, VARIANTS)
        heavy, _ = write_files(Path(tmp), count, chars=3000, unicode_heavy=True)
        compare("Unicode-heavy answers (every answer escaped non-ASCII)", heavy, requests, repeat, UNICODE)
        compare("What retry() and the counts read: outcomes", results, requests, repeat, OUTCOMES)
    print("\nbest of the runs, variants taking turns, each run in a new process timed after its imports;")
    print("cpu = process time (steadier on a busy machine). peak RSS is the whole child process (Python,")
    print("pandas, pyarrow included); 'added / file' is the peak growth over the process after imports,")
    print("divided by the result file's size. outcomes: speed-up over the dict-per-line read.")


VARIANTS = ("baseline", "load_results", "load_with_requests", "floor")
UNICODE = ("baseline", "load_results", "floor")
OUTCOMES = ("outcomes_as_dicts", "outcomes")


def compare(title: str, results: Path, requests: Path, repeat: int, variants: tuple[str, ...]) -> None:
    size = results.stat().st_size / 1e6
    print(f"\n{title}: {results.name}, {size:.1f} MB")
    header = f"{'variant':<20} {'wall s':>7} {'speed-up':>8} {'cpu s':>7} {'speed-up':>8} {'peak RSS MB':>12}"
    print(f"{header} {'after imports':>14} {'added / file':>13}")

    def run(variant: str) -> dict:
        return run_child(__file__, variant, str(results), str(requests))

    found = measure(list(variants), run, repeat)
    baseline = found[variants[0]]
    for variant in variants:
        run_ = found[variant]
        added = (run_["peak_mb"] - run_["base_mb"]) * 1.048576 / size  # MiB -> MB
        print(
            f"{variant:<20} {run_['seconds']:>7.2f} {baseline['seconds'] / run_['seconds']:>7.1f}x "
            f"{run_['cpu']:>7.2f} {baseline['cpu'] / run_['cpu']:>7.1f}x {run_['peak_mb']:>12.0f} "
            f"{run_['base_mb']:>14.0f} {added:>12.2f}x  {run_['rows']:,} rows {run_['detail']}"
        )


if __name__ == "__main__":
    main()
