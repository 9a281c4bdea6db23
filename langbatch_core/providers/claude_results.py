"""Claude's answers in OpenAI's words (shared by Anthropic and Bedrock): a Messages answer as a
``chat.completion`` body, Claude's usage and error types; ``result_lines`` makes result lines of them.

    chat_completion(message)          # {"object": "chat.completion", "choices": [...], "usage": {...}}
    ERROR_STATUS["overloaded_error"]  # 529, the HTTP status the Messages API answers it with
"""

from __future__ import annotations

from typing import Any

import orjson

# Claude's stop_reason -> OpenAI's finish_reason
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# Claude's error types -> the HTTP status its Messages API answers them with
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def chat_completion(message: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` body for a Claude ``message`` (text joined, tool_use as tool_calls)."""
    texts, calls = [], []
    for block in message.get("content") or []:
        if block.get("type") == "text":
            texts.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": arguments},
                }
            )
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if calls:
        reply["tool_calls"] = calls
    stop_reason = message.get("stop_reason")
    return {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model"),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "finish_reason": FINISH_REASONS.get(stop_reason or "", stop_reason),
                "logprobs": None,
            }
        ],
        "usage": usage(message.get("usage") or {}),
    }


def usage(native: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's usage from Claude's: the prompt counts every input token, cache reads included."""
    cached = native.get("cache_read_input_tokens") or 0
    prompt = (native.get("input_tokens") or 0) + (native.get("cache_creation_input_tokens") or 0) + cached
    completion = native.get("output_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
