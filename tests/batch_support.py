"""Helpers for the batch lifecycle tests: request files, connections to the test engine, what it received."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import orjson

from langbatch_core import Connection

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"


def chat_line(custom_id: str, prompt: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    return {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body}


def write_chat_file(path: Path, prompts: list[str], prefix: str = "request-") -> Path:
    """A chat request file with custom_ids ``<prefix>1``, ``<prefix>2``, ... asking ``prompts``."""
    lines = [chat_line(f"{prefix}{i}", prompt) for i, prompt in enumerate(prompts, start=1)]
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def to_engine(engine: Any, **kw: Any) -> Connection:
    """A connection to the test engine (an OpenAI-compatible API that needs no key)."""
    return Connection.compatible(engine.base_url, **kw)


def prompts_received(upstream: Any) -> collections.Counter[str]:
    """How many times the upstream was asked each prompt (the last user message)."""
    counts: collections.Counter[str] = collections.Counter()
    for item in upstream.received:
        body = item["body"]
        if "messages" in body:
            counts[body["messages"][-1]["content"]] += 1
        else:
            counts[str(body.get("input"))] += 1
    return counts
