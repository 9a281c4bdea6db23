"""Generators of realistic request files, for tests and benchmarks.

write_chat_file(path, 1000)              # 1,000 varied valid chat requests
chat_request("r-1", "Hello")             # one request dict
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

CHAT_URL = "/v1/chat/completions"
EMBEDDINGS_URL = "/v1/embeddings"
WORDS = (
    "batch",
    "request",
    "model",
    "token",
    "answer",
    "question",
    "review",
    "summary",
    "customer",
    "order",
    "invoice",
    "shipping",
    "delay",
    "refund",
    "product",
    "quality",
    "support",
    "language",
    "translate",
    "explain",
    "describe",
    "compare",
    "analyse",
    "classify",
    "sentiment",
    "positive",
    "negative",
    "neutral",
    "report",
    "data",
    "table",
    "column",
    "value",
    "average",
    "total",
    "number",
)


def chat_request(custom_id: str, prompt: str, model: str = "gpt-4o-mini", **body: Any) -> dict[str, Any]:
    """One chat completion request line as a dict."""
    messages = [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": prompt},
    ]
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": CHAT_URL,
        "body": {"model": model, "messages": messages, **body},
    }


def embedding_request(custom_id: str, text: str | list[str], model: str = "text-embedding-3-small") -> dict:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": EMBEDDINGS_URL,
        "body": {"model": model, "input": text},
    }


def _text(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    size = 0
    while size < chars:
        word = rng.choice(WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)


def varied_chat_request(index: int, rng: random.Random, prompt_chars: int = 1400) -> dict[str, Any]:
    """A valid chat request whose shape varies with ``index``: plain, multi-turn, tools, images, schema."""
    request = chat_request(f"request-{index}", _text(rng, prompt_chars), max_tokens=256)
    messages = request["body"]["messages"]
    kind = index % 5
    if kind == 1:
        messages[1:1] = [
            {"role": "user", "content": "Earlier question?"},
            {"role": "assistant", "content": "Earlier answer."},
        ]
    elif kind == 2:
        request["body"]["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
            }
        ]
    elif kind == 3:
        messages[1]["content"] = [
            {"type": "text", "text": messages[1]["content"]},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
        ]
    elif kind == 4:
        request["body"]["response_format"] = {"type": "json_object"}
        request["body"]["temperature"] = 0.2
    return request


def write_chat_file(path: Path, count: int, prompt_chars: int = 1400, seed: int = 7) -> Path:
    """Writes ``count`` varied valid chat requests; returns ``path``."""
    rng = random.Random(seed)
    with Path(path).open("w", encoding="utf-8") as handle:
        for index in range(1, count + 1):
            handle.write(json.dumps(varied_chat_request(index, rng, prompt_chars)) + "\n")
    return Path(path)


def write_lines(path: Path, lines: list[Any], newline: str = "\n", bom: bool = False) -> Path:
    """Writes dicts as JSON lines and strings as they are."""
    text = newline.join(line if isinstance(line, str) else json.dumps(line) for line in lines) + newline
    Path(path).write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return Path(path)
