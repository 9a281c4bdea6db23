"""OpenAI chat bodies as Gemini ``GenerateContentRequest`` JSON, Gemini answers as OpenAI result lines.

    to_gemini_line({"custom_id": "r1", "body": {...}})   # {"key": "r1", "request": {"contents": [...], ...}}
    to_openai_result({"key": "r1", "response": {...}})   # an OpenAI batch result line (chat.completion)
    refusal("/v1/chat/completions", body)                # ("logit_bias", "Gemini has no ...") or None

The REST field names (camelCase) are those of the Gemini API reference (docs/providers.md lists each one).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson

from langbatch_core.providers._native import text_of
from langbatch_core.providers.result_lines import REFUSED, api_error_line, not_run_line, success_line

GEMINI_FILES = "https://generativelanguage.googleapis.com/"
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.*)$", re.DOTALL)
UNSUPPORTED = {
    "logit_bias": "Gemini has no logit_bias",
    "audio": "Gemini's batch answers here are text, not audio",
    "modalities": "Gemini's batch answers here are text only",
    "prediction": "Gemini has no predicted outputs",
    "web_search_options": "Gemini's web search is a tool of its own (google_search), not web_search_options",
    "reasoning_effort": "Gemini sets thinking with its own thinkingConfig, not reasoning_effort",
}
_GENERATION = {  # OpenAI body field -> Gemini generationConfig field
    "temperature": "temperature",
    "top_p": "topP",
    "max_tokens": "maxOutputTokens",
    "max_completion_tokens": "maxOutputTokens",
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "logprobs": "responseLogprobs",
    "top_logprobs": "logprobs",
}
FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length"}
_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def refusal(endpoint: str, body: dict[str, Any]) -> tuple[str | None, str] | None:
    """What Gemini's batch mode cannot run in an OpenAI request body, as (param, message); None if nothing."""
    if endpoint != "/v1/chat/completions":
        return None, f"Gemini batches from LangBatch serve /v1/chat/completions only, not {endpoint}."
    for name, why in UNSUPPORTED.items():
        if body.get(name) is not None:
            return name, f"{why}: remove {name} from this request."
    for tool_index, tool in enumerate(body.get("tools") or []):
        if tool.get("type") != "function":
            return f"tools[{tool_index}]", "Gemini takes function tools only (functionDeclarations)."
    for index, message in enumerate(body.get("messages") or []):
        content = message.get("content")
        for part_index, part in enumerate(content if isinstance(content, list) else []):
            wrong = _part_refusal(part)
            if wrong:
                return f"messages[{index}].content[{part_index}]", wrong
    return None


def _part_refusal(part: dict[str, Any]) -> str | None:
    kind = part.get("type")
    if kind == "text":
        return None
    if kind != "image_url":
        return f"Gemini batches from LangBatch take text and image_url parts, not {kind!r}."
    url = str((part.get("image_url") or {}).get("url", ""))
    if url.startswith("data:"):
        match = _DATA_URL.match(url)
        if match is None or not _is_base64(match.group(2)):
            return "Gemini takes an image as a base64 data URL (data:image/png;base64,...): this one is not."
        return None
    if url.startswith(GEMINI_FILES):
        return None
    return (
        "Gemini does not fetch images from web URLs in a batch: send the image inline as a base64 data URL, "
        f"or upload it to Gemini's Files API and use its URI ({GEMINI_FILES}...)."
    )


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text[:4096] + "=" * (-len(text[:4096]) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def to_gemini_line(request: dict[str, Any]) -> dict[str, Any]:
    """``{key, request}``: the custom_id and the body as a ``GenerateContentRequest``."""
    return {"key": request["custom_id"], "request": to_gemini_request(request["body"])}


def to_gemini_request(body: dict[str, Any]) -> dict[str, Any]:
    system = [m for m in body.get("messages") or [] if m.get("role") in ("system", "developer")]
    others = [m for m in body.get("messages") or [] if m.get("role") not in ("system", "developer")]
    request: dict[str, Any] = {"contents": _contents(others)}
    if system:
        request["systemInstruction"] = {"parts": [{"text": text_of(m.get("content")) or ""} for m in system]}
    config = _generation_config(body)
    if config:
        request["generationConfig"] = config
    if body.get("tools"):
        declarations = [_declaration(tool["function"]) for tool in body["tools"]]
        request["tools"] = [{"functionDeclarations": declarations}]
    choice = body.get("tool_choice")
    if choice is not None:
        request["toolConfig"] = {"functionCallingConfig": _calling_config(choice)}
    return request


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config = {gemini: body[name] for name, gemini in _GENERATION.items() if body.get(name) is not None}
    stop = body.get("stop")
    if stop is not None:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = body.get("response_format") or {}
    if response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
    schema = (response_format.get("json_schema") or {}).get("schema")
    if response_format.get("type") == "json_schema" and schema is not None:
        config["responseJsonSchema"] = schema
    return config


def _declaration(function: dict[str, Any]) -> dict[str, Any]:
    declared = {"name": function["name"]}
    if function.get("description"):
        declared["description"] = function["description"]
    if function.get("parameters") is not None:
        declared["parametersJsonSchema"] = function["parameters"]
    return declared


def _calling_config(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str):
        return {"mode": _TOOL_MODES.get(choice, "AUTO")}
    return {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}


def _contents(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gemini ``contents``: roles user/model, tool answers as functionResponse parts of a user turn;
    consecutive turns of one role joined (Gemini alternates user and model)."""
    names: dict[str, str] = {}  # tool call id -> function name, for the answers that follow
    contents: list[dict[str, Any]] = []
    for message in messages:
        role = "model" if message.get("role") == "assistant" else "user"
        parts = _parts(message, names)
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _parts(message: dict[str, Any], names: dict[str, str]) -> list[dict[str, Any]]:
    if message.get("role") == "tool":
        name = names.get(message.get("tool_call_id", ""), message.get("name") or "tool")
        return [{"functionResponse": {"name": name, "response": _tool_answer(message.get("content"))}}]
    content = message.get("content")
    parts = [_part(p) for p in content] if isinstance(content, list) else []
    if isinstance(content, str) and content:
        parts.append({"text": content})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        names[call.get("id", "")] = function.get("name", "")
        parts.append({"functionCall": {"name": function.get("name"), "args": _arguments(function)}})
    return parts or [{"text": ""}]


def _part(part: dict[str, Any]) -> dict[str, Any]:
    if part.get("type") == "text":
        return {"text": part.get("text", "")}
    url = str((part.get("image_url") or {}).get("url", ""))
    match = _DATA_URL.match(url)
    if match:
        return {"inlineData": {"mimeType": match.group(1), "data": match.group(2)}}
    return {"fileData": {"fileUri": url, "mimeType": _mime_of(url)}}


def _mime_of(url: str) -> str:
    suffix = url.rsplit(".", 1)[-1].lower() if "." in url.rsplit("/", 1)[-1] else ""
    return {"png": "image/png", "webp": "image/webp", "gif": "image/gif"}.get(suffix, "image/jpeg")


def _tool_answer(content: Any) -> dict[str, Any]:
    text = text_of(content) or ""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"content": text}
    return value if isinstance(value, dict) else {"content": value}


def _arguments(function: dict[str, Any]) -> Any:
    try:
        return orjson.loads(function.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        return {}


def to_openai_result(line: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI batch result line from a line of Gemini's results file."""
    custom_id = str(line.get("key"))
    response = line.get("response")
    if isinstance(response, dict):
        blocked = (response.get("promptFeedback") or {}).get("blockReason")
        if blocked and not response.get("candidates"):
            message = f"Gemini blocked the prompt ({blocked})."
            return api_error_line(custom_id, 400, message, code="prompt_blocked", kind=REFUSED)
        return success_line(custom_id, to_openai_body(response), request_id=response.get("responseId"))
    error = line.get("error")
    error = error if isinstance(error, dict) else {}
    status = error.get("code")
    code = str(error.get("status") or "").lower() or None
    message = str(error.get("message") or "no answer given")
    if isinstance(status, int):
        return api_error_line(custom_id, status, message, code=code, kind=REFUSED)
    return not_run_line(custom_id, code or "failed", message)


def to_openai_body(response: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's ``chat.completion`` from a ``GenerateContentResponse``."""
    choices = [_choice(index, c) for index, c in enumerate(response.get("candidates") or [])]
    usage = response.get("usageMetadata") or {}
    completion = int(usage.get("candidatesTokenCount", 0)) + int(usage.get("thoughtsTokenCount", 0))
    prompt = int(usage.get("promptTokenCount", 0))
    return {
        "id": response.get("responseId"),
        "object": "chat.completion",
        "created": None,
        "model": response.get("modelVersion"),
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": int(usage.get("totalTokenCount", prompt + completion)),
        },
    }


def _choice(index: int, candidate: dict[str, Any]) -> dict[str, Any]:
    parts = (candidate.get("content") or {}).get("parts") or []
    text = "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))
    calls = [
        {
            "id": f"call_{index}_{n}",
            "type": "function",
            "function": {
                "name": p["functionCall"].get("name"),
                "arguments": orjson.dumps(p["functionCall"].get("args") or {}).decode(),
            },
        }
        for n, p in enumerate(part for part in parts if "functionCall" in part)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    reason = candidate.get("finishReason")
    finish = "tool_calls" if calls else _finish_reason(reason)
    return {
        "index": candidate.get("index", index),
        "message": message,
        "finish_reason": finish,
        "logprobs": None,
    }


def _finish_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    if reason in _FILTERED:
        return "content_filter"
    return FINISH_REASONS.get(reason, reason.lower())
