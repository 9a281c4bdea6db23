"""Generators of OpenAI result lines and files, for tests and benchmarks.

success("r-1", "Hello")                  # one succeeded chat result (dict)
write_results_file(path, 1000)           # a mixed file: successes, 400s, expired, cancelled
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from support.data_requests import WORDS


def success(custom_id: str, answer: str | None = "ok", model: str = "gpt-4o-mini", **extra: Any) -> dict:
    """A succeeded chat completion result; ``extra`` goes into the message (refusal, tool_calls, …)."""
    usage = extra.pop("usage", {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25})
    finish = extra.pop("finish_reason", "stop")
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {
            "status_code": 200,
            "request_id": f"req_{custom_id}",
            "body": {
                "id": f"chatcmpl-{custom_id}",
                "object": "chat.completion",
                "created": 1711652795,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer, **extra},
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "usage": usage,
                "system_fingerprint": "fp_1",
            },
        },
        "error": None,
    }


def rejected(
    custom_id: str, status_code: int = 400, message: str = "Invalid request", code: str | None = None
):
    """A request the API refused: status_code >= 400, the reason in response.body.error."""
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {"status_code": status_code, "request_id": f"req_{custom_id}", "body": {"error": error}},
        "error": None,
    }


def never_run(custom_id: str, code: str = "batch_expired") -> dict:
    """A request never run: response null, error {code, message}."""
    message = {
        "batch_expired": "This request could not be executed before the completion window expired.",
        "batch_cancelled": "This request was not executed because the batch was cancelled.",
    }.get(code, "Failed.")
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }


def embedding_result(custom_id: str, dim: int = 8) -> dict:
    vector = [round(0.001 * i, 6) for i in range(dim)]
    body = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": vector}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    return {
        "id": f"b_{custom_id}",
        "custom_id": custom_id,
        "response": {"status_code": 200, "body": body},
        "error": None,
    }


def _answer(rng: random.Random, chars: int) -> str:
    words, size = [], 0
    while size < chars:
        word = rng.choice(WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words).capitalize() + ".\nThat is all."


def mixed_result(index: int, rng: random.Random, answer_chars: int = 2500) -> dict:
    """Mostly successes with long answers; every 50th a 400, every 97th expired, every 199th cancelled."""
    custom_id = f"request-{index}"
    if index % 199 == 0:
        return never_run(custom_id, "batch_cancelled")
    if index % 97 == 0:
        return never_run(custom_id)
    if index % 50 == 0:
        return rejected(custom_id, message="Unrecognized request argument supplied: max_tokenz")
    completion = rng.randint(50, 700)
    usage = {
        "prompt_tokens": rng.randint(100, 900),
        "completion_tokens": completion,
        "total_tokens": completion + 1000,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }
    return success(custom_id, _answer(rng, answer_chars), usage=usage, refusal=None)


def write_results_file(
    path: Path, count: int, answer_chars: int = 2500, seed: int = 11, shuffle: bool = True
) -> Path:
    """``count`` result lines (see ``mixed_result``), in shuffled order like a real output file."""
    rng = random.Random(seed)
    order = list(range(1, count + 1))
    if shuffle:
        rng.shuffle(order)
    with Path(path).open("w", encoding="utf-8") as handle:
        for index in order:
            handle.write(json.dumps(mixed_result(index, rng, answer_chars)) + "\n")
    return Path(path)


def write_jsonl(path: Path, items: list[Any]) -> Path:
    """Dicts as JSON lines, strings as they are."""
    text = "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items)
    Path(path).write_text(text, encoding="utf-8")
    return Path(path)
