"""OpenAI chat request bodies as Claude Messages requests: the one translation behind Anthropic's Message
Batches (``params``) and Bedrock's batch inference (``modelInput``), and the refusal check built on it.

    params = to_claude(body)              # {"model", "max_tokens", "messages", "system", "tools", ...}
    refusal = claude_refusal("/v1/chat/completions", body)   # ("temperature", "...") or None

What Claude's Messages API cannot express is never dropped silently: ``to_claude`` raises ``Untranslatable``
naming the field, and ``claude_refusal`` turns it into the validator's ``unsupported_parameter`` issue (see
``Capabilities``), so the line is refused before a batch starts. The contract points and their sources are
listed in docs/providers.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson

from langbatch_core.errors import InvalidRequestsError
from langbatch_core.requests import iter_requests

T = TypeVar("T")

CHAT = "/v1/chat/completions"
# Claude requires max_tokens; a request without a ceiling gets this one (docs/providers.md, README).
DEFAULT_MAX_TOKENS = 4096
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_DATA_URL = re.compile(r"^data:([a-z0-9.+/-]+);base64,(.*)\Z", re.IGNORECASE | re.DOTALL)
# parameters with a Claude form; the others are refused unless they hold OpenAI's default value
_TRANSLATED = frozenset(
    {
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "tools",
        "tool_choice", "parallel_tool_calls", "response_format", "user", "stream",
    }
)  # fmt: skip
_HARMLESS_DEFAULTS: dict[str, Any] = {
    "n": 1,
    "logprobs": False,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "store": False,
}
_WHY_NOT = {
    "n": "Claude gives one answer per request (n must be 1): write n requests with their own custom_id.",
    "logprobs": "Claude's Messages API returns no log probabilities: remove logprobs.",
    "seed": "Claude's Messages API has no seed (answers are not reproducible by seed): remove it.",
}


class Untranslatable(ValueError):
    """A request field Claude's Messages API has no form for: ``param`` (relative to the body) and why."""

    def __init__(self, param: str | None, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


def claude_refusal(endpoint: str, body: dict[str, Any]) -> tuple[str | None, str] | None:
    """``Capabilities.refusal`` for Claude: (param, message) for what ``to_claude`` cannot translate."""
    if endpoint != CHAT:
        return None, f"only chat completions ({CHAT}) can run on Claude, not {endpoint or 'this endpoint'}."
    try:
        to_claude(body)
    except Untranslatable as exc:
        return exc.param, exc.message
    return None


def translated(path: Path, translate: Callable[[dict[str, Any]], T]) -> Iterator[tuple[str, T]]:
    """(custom_id, translated body) for each request of a job file; a request the validator would have
    refused (the file was not validated for this connection) is an InvalidRequestsError naming it."""
    for request in iter_requests(path):
        try:
            yield request["custom_id"], translate(request["body"])
        except Untranslatable as exc:
            field = f"body.{exc.param}" if exc.param else "body"
            raise InvalidRequestsError(
                f"{path}: request {request['custom_id']!r}, {field}: {exc.message} Validate the file for "
                "this connection (langbatch validate FILE --connection KIND) to see every such line."
            ) from exc


def to_claude(body: dict[str, Any]) -> dict[str, Any]:
    """The Claude Messages request for an OpenAI chat completion ``body`` (already valid for OpenAI)."""
    for name, value in body.items():
        if name not in _TRANSLATED and value is not None and _HARMLESS_DEFAULTS.get(name, ...) != value:
            why = _WHY_NOT.get(name, f"Claude's Messages API has no {name}: remove it from the request.")
            raise Untranslatable(name, why)
    params: dict[str, Any] = {"model": body.get("model")}
    ceiling = body.get("max_completion_tokens") or body.get("max_tokens")
    params["max_tokens"] = ceiling or DEFAULT_MAX_TOKENS
    system, messages = _messages(body.get("messages") or [])
    if system:
        params["system"] = system
    params["messages"] = messages
    _sampling(body, params)
    _tools(body, params)
    _response_format(body.get("response_format"), params)
    if body.get("user") is not None:
        params["metadata"] = {"user_id": body["user"]}
    return params


def _sampling(body: dict[str, Any], params: dict[str, Any]) -> None:
    temperature = body.get("temperature")
    if temperature is not None:
        if temperature > 1:
            raise Untranslatable(
                "temperature", f"Claude takes a temperature from 0 to 1, got {temperature:g}: lower it."
            )
        params["temperature"] = temperature
    if body.get("top_p") is not None:
        params["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop is not None:
        params["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)


def _messages(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """System and developer messages become ``system``; the rest alternate user/assistant (consecutive
    messages of one role, such as several tool results, are merged into one turn)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role, where = message.get("role"), f"messages[{index}]"
        if role in ("system", "developer"):
            system.append(_text(message.get("content"), where))
            continue
        if role == "user":
            turn = {"role": "user", "content": _user_blocks(message.get("content"), where)}
        elif role == "assistant":
            turn = {"role": "assistant", "content": _assistant_blocks(message, where)}
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id"),
                "content": _text(message.get("content"), where),
            }
            turn = {"role": "user", "content": [result]}
        else:
            raise Untranslatable(f"{where}.role", f"Claude has no {role!r} messages: use tool messages.")
        if turns and turns[-1]["role"] == turn["role"]:
            turns[-1]["content"] = turns[-1]["content"] + turn["content"]
        else:
            turns.append(turn)
    return ("\n\n".join(system) if system else None), turns


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = []
    for index, part in enumerate(content or []):
        kind, at = part.get("type"), f"{where}.content[{index}]"
        if kind == "text":
            blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append({"type": "image", "source": _image_source(part["image_url"].get("url"), at)})
        elif kind == "file":
            blocks.append(_document(part["file"], at))
        else:
            raise Untranslatable(f"{at}.type", f"Claude's Messages API takes no {kind} parts: remove it.")
    return blocks


def _image_source(url: Any, where: str) -> dict[str, Any]:
    """A data URL becomes a base64 source, an https URL a url source (Claude fetches it)."""
    if isinstance(url, str) and url.lower().startswith("https://"):
        return {"type": "url", "url": url}
    found = _DATA_URL.match(url) if isinstance(url, str) else None
    if found is None:
        raise Untranslatable(
            f"{where}.image_url.url",
            "Claude takes images as https URLs or base64 data URLs (data:image/png;base64,...): change it.",
        )
    media_type = found.group(1).lower()
    if media_type not in IMAGE_TYPES:
        raise Untranslatable(
            f"{where}.image_url.url",
            f"Claude takes JPEG, PNG, GIF and WebP images, not {media_type}: convert the image.",
        )
    return {"type": "base64", "media_type": media_type, "data": found.group(2)}


def _document(spec: dict[str, Any], where: str) -> dict[str, Any]:
    found = _DATA_URL.match(spec.get("file_data") or "")
    if found is None or found.group(1).lower() != "application/pdf":
        raise Untranslatable(
            f"{where}.file",
            "Claude takes files inline as PDF data (file_data: data:application/pdf;base64,...), not by "
            "file_id: inline the PDF.",
        )
    source = {"type": "base64", "media_type": "application/pdf", "data": found.group(2)}
    block: dict[str, Any] = {"type": "document", "source": source}
    if spec.get("filename"):
        block["title"] = spec["filename"]
    return block


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    if message.get("function_call") is not None:
        raise Untranslatable(f"{where}.function_call", "Write function_call as tool_calls for Claude.")
    text = _text(message.get("content"), where)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            raise Untranslatable(
                f"{where}.tool_calls[{index}].function.arguments",
                "Claude needs a tool call's arguments as a JSON object: write them as one.",
            )
        blocks.append(
            {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": arguments}
        )
    if not blocks:
        raise Untranslatable(f"{where}.content", "Claude refuses an empty assistant message: remove it.")
    return blocks


def _tools(body: dict[str, Any], params: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools:
        converted = []
        for index, tool in enumerate(tools):
            if tool.get("type") != "function":
                raise Untranslatable(f"tools[{index}].type", "Claude takes function tools only.")
            function = tool["function"]
            entry: dict[str, Any] = {
                "name": function["name"],
                "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
            }
            if function.get("description"):
                entry["description"] = function["description"]
            if function.get("strict"):
                entry["strict"] = True
            converted.append(entry)
        params["tools"] = converted
    choice = _tool_choice(body.get("tool_choice"))
    if body.get("parallel_tool_calls") is False:
        if choice is None:
            choice = {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    if choice is not None:
        params["tool_choice"] = choice


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        return {"type": {"auto": "auto", "required": "any", "none": "none"}[choice]}
    if choice.get("type") == "function":
        return {"type": "tool", "name": choice["function"]["name"]}
    raise Untranslatable("tool_choice", "Claude's tool_choice names a function tool, auto, required or none.")


def _response_format(value: Any, params: dict[str, Any]) -> None:
    """json_schema becomes Claude's structured output (``output_config.format``); json_object has no Claude
    form (Claude has no schema-less JSON mode)."""
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in (None, "text"):
        return
    if kind == "json_object":
        raise Untranslatable(
            "response_format",
            'Claude has no JSON mode without a schema: use {"type": "json_schema", "json_schema": {...}}.',
        )
    schema = value["json_schema"].get("schema") or {"type": "object"}
    params["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
