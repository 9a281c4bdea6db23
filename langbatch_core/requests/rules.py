"""The detailed checker for one request line: every problem, with a precise code and param.

It is the authority on what a valid request is. ``requests.validate_file`` runs a fast typed decoder first and
calls this checker only for the lines the fast path does not accept, so the two must agree: a rule added here
that the fast path does not know simply sends more lines down this slower road.

    issues, facts = check_request(obj, batch_endpoint="/v1/chat/completions")
"""

from __future__ import annotations

from typing import Any, NamedTuple

from langbatch_core.requests.chat_body import IMAGE_TOKENS, PART_PAYLOAD, PART_TYPES, ROLES
from langbatch_core.requests.params import check_parameters, shown

ENDPOINTS: frozenset[str] = frozenset(
    {"/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/responses"}
)
TOP_LEVEL_KEYS = ("custom_id", "method", "url", "body")


def text_units(text: str) -> int:
    """The UTF-8 bytes of ``text``: about 4 make one token (OpenAI's o200k and cl100k encodings)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class LineFacts(NamedTuple):
    """What one request contributes to the report (any field may be None when the line is broken)."""

    custom_id: str | None
    url: str | None
    model: str | None
    chars: int  # text units of the prompt (see text_units; ~4 make one token)
    extra_tokens: int  # tokens known without text: images, token-id inputs, per-message framing
    max_output: int | None  # the request's output-token ceiling, None when it sets none
    inputs: int  # embedding inputs (0 for other endpoints)


# the fast path's plain form of LineFacts (a tuple is cheaper to build, once per line); a LineFacts is one too
FactsTuple = tuple[str | None, str | None, str | None, int, int, int | None, int]
Problem = tuple[str, str, str | None]  # (code, message, param)


def check_request(obj: Any, batch_endpoint: str | None) -> tuple[list[Problem], LineFacts]:
    """Every problem of one parsed request line, and the facts it contributes."""
    if not isinstance(obj, dict):
        kind = type(obj).__name__ if obj is not None else "null"
        msg = f"Each line must be a JSON object with custom_id, method, url and body, not a {kind}."
        return [("not_object", msg, None)], LineFacts(None, None, None, 0, 0, None, 0)
    problems: list[Problem] = []
    custom_id = _check_custom_id(obj, problems)
    _check_method(obj, problems)
    url = _check_url(obj, batch_endpoint, problems)
    for key in obj:
        if key not in TOP_LEVEL_KEYS:
            problems.append(
                (
                    "unknown_field",
                    f"Unknown top-level field {key!r}: a request has only custom_id, method, url and body. "
                    "Move request parameters into body, or remove the field.",
                    key,
                )
            )
    body = obj.get("body")
    if not isinstance(body, dict):
        what = "missing" if "body" not in obj else f"a {_json_type(body)}"
        problems.append(
            ("invalid_body", f"body is {what}; it must be an object with the request parameters.", "body")
        )
        return problems, LineFacts(custom_id, url, None, 0, 0, None, 0)
    model = _check_model(body, problems)
    if body.get("stream") is True:
        problems.append(
            (
                "stream_not_supported",
                "Batch requests cannot stream: remove body.stream or set it to false.",
                "body.stream",
            )
        )
    endpoint = batch_endpoint if url is None or url not in ENDPOINTS else url
    body_checker = BODY_CHECKERS.get(endpoint or "")
    chars, extra, max_out, inputs = body_checker(body, problems) if body_checker else (0, 0, None, 0)
    if endpoint in ENDPOINTS:
        check_parameters(body, endpoint, problems)
    return problems, LineFacts(custom_id, url, model, chars, extra, max_out, inputs)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "list", str: "string", bool: "boolean"}.get(type(value), "number")


def _check_custom_id(obj: dict[str, Any], problems: list[Problem]) -> str | None:
    if "custom_id" not in obj:
        problems.append(
            ("missing_custom_id", "custom_id is missing: give each request a unique string id.", "custom_id")
        )
        return None
    value = obj["custom_id"]
    if not isinstance(value, str):
        problems.append(
            (
                "invalid_custom_id",
                f"custom_id must be a string, not a {_json_type(value)}: quote it (e.g. {shown(str(value))})."
                if isinstance(value, int | float)
                else f"custom_id must be a string, not a {_json_type(value)}.",
                "custom_id",
            )
        )
        return None
    if not value:
        problems.append(
            ("empty_custom_id", "custom_id is empty: give each request a unique id.", "custom_id")
        )
        return None
    return value


def _check_method(obj: dict[str, Any], problems: list[Problem]) -> None:
    if obj.get("method") != "POST":
        got = "missing" if "method" not in obj else shown(obj["method"])
        problems.append(("invalid_method", f'method is {got}; batch requests use "POST".', "method"))


def _check_url(obj: dict[str, Any], batch_endpoint: str | None, problems: list[Problem]) -> str | None:
    if "url" not in obj:
        problems.append(
            ("missing_url", 'url is missing: set it to the endpoint, e.g. "/v1/chat/completions".', "url")
        )
        return None
    url = obj["url"]
    if not isinstance(url, str) or url not in ENDPOINTS:
        supported = ", ".join(sorted(ENDPOINTS))
        problems.append(
            ("unsupported_url", f"url {shown(url)} is not a batch endpoint; use one of {supported}.", "url")
        )
        return url if isinstance(url, str) else None
    if batch_endpoint is not None and url != batch_endpoint:
        problems.append(
            (
                "mismatched_url",
                f"url {url!r} differs from the batch's endpoint {batch_endpoint!r}: one batch file "
                "serves one endpoint; move this request to its own file.",
                "url",
            )
        )
    return url


def _check_model(body: dict[str, Any], problems: list[Problem]) -> str | None:
    model = body.get("model")
    if isinstance(model, str) and model:
        return model
    what = "missing" if "model" not in body else f"{shown(model)}, not a model name"
    problems.append(
        ("missing_model", f'body.model is {what}: name the model, e.g. "gpt-4o-mini".', "body.model")
    )
    return None


def _max_output(body: dict[str, Any]) -> int | None:
    ceiling = body.get("max_completion_tokens", body.get("max_output_tokens", body.get("max_tokens")))
    if not isinstance(ceiling, int) or isinstance(ceiling, bool):
        return None
    n = body.get("n")
    return ceiling * (n if isinstance(n, int) and n > 0 else 1)


def check_chat_body(body: dict[str, Any], problems: list[Problem]) -> tuple[int, int, int | None, int]:
    """Checks body.messages; returns (chars, extra_tokens, max_output, inputs)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        what = (
            "an empty list" if messages == [] else ("missing" if messages is None else _json_type(messages))
        )
        problems.append(
            (
                "invalid_messages",
                f"body.messages is {what}; it must be a non-empty list of messages "
                '(e.g. [{"role": "user", "content": "Hi"}]).',
                "body.messages",
            )
        )
        return 0, 0, _max_output(body), 0
    chars = extra = 0
    for index, message in enumerate(messages):
        c, e = _check_message(message, f"body.messages[{index}]", problems)
        chars += c
        extra += e
    chars += _extras_chars(body)
    return chars, extra + 3 * len(messages) + 3, _max_output(body), 0


def _extras_chars(body: dict[str, Any]) -> int:
    """Characters of tool definitions, which also count as input tokens."""
    total = 0
    for key in ("tools", "functions"):
        value = body.get(key)
        if value is not None:
            total += json_size(value)
    return total


def json_size(value: Any) -> int:
    """About the length of ``value`` written as JSON; without recursion (a value may nest 1,024 deep)."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += text_units(item) + 2
        elif isinstance(item, dict):
            total += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += len(str(item))
    return total


def _check_message(message: Any, param: str, problems: list[Problem]) -> tuple[int, int]:
    if not isinstance(message, dict):
        problems.append(
            (
                "invalid_message",
                f"{param} is a {_json_type(message)}; each message must be an object with role and content.",
                param,
            )
        )
        return 0, 0
    role = message.get("role")
    if role not in ROLES:
        got = "missing" if "role" not in message else shown(role)
        problems.append(
            ("invalid_role", f"{param}.role is {got}; use one of {', '.join(ROLES)}.", f"{param}.role")
        )
        return 0, 0
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        problems.append(
            (
                "missing_tool_call_id",
                f"{param} is a tool message without tool_call_id: set it to the id of the assistant's "
                "tool call it answers.",
                f"{param}.tool_call_id",
            )
        )
    if role == "function" and not isinstance(message.get("name"), str):
        problems.append(
            ("invalid_message", f"{param} is a function message without name: set name.", f"{param}.name")
        )
    content = message.get("content")
    calls = message.get("tool_calls") is not None or message.get("function_call") is not None
    if content is None and (role == "function" or (role == "assistant" and calls)):
        return _extras_len(message), 0
    return _check_content(content, role, f"{param}.content", "content" in message, problems)


def _extras_len(message: dict[str, Any]) -> int:
    calls = message.get("tool_calls") or message.get("function_call")
    return json_size(calls) if calls else 0


def _check_content(
    content: Any, role: str, param: str, present: bool, problems: list[Problem]
) -> tuple[int, int]:
    if isinstance(content, str):
        return text_units(content), 0
    allowed = PART_TYPES[role]
    if not isinstance(content, list) or not content:
        what = (
            "missing" if not present else ("an empty list" if content == [] else f"a {_json_type(content)}")
        )
        hint = " (or tool_calls)" if role == "assistant" else ""
        problems.append(
            (
                "invalid_content",
                f"{param} is {what}; it must be a string or a non-empty list of parts of type "
                f"{', '.join(sorted(allowed))}{hint}.",
                param,
            )
        )
        return 0, 0
    chars = extra = 0
    for index, part in enumerate(content):
        c, e = _check_part(part, allowed, f"{param}[{index}]", problems)
        chars += c
        extra += e
    return chars, extra


def _check_part(part: Any, allowed: frozenset[str], param: str, problems: list[Problem]) -> tuple[int, int]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind not in allowed:
        got = f"type {shown(kind)}" if isinstance(part, dict) else f"a {_json_type(part)}"
        problems.append(
            (
                "invalid_content",
                f"{param} is {got}; parts here must be objects with type {', '.join(sorted(allowed))}.",
                f"{param}.type" if isinstance(part, dict) else param,
            )
        )
        return 0, 0
    payload = part.get(kind)
    expected = PART_PAYLOAD[kind]
    if not isinstance(payload, expected):
        problems.append(
            (
                "invalid_content",
                f"{param} has type {kind!r} but its {kind!r} field is not a "
                f"{'string' if expected is str else 'object'}.",
                f"{param}.{kind}",
            )
        )
        return 0, 0
    if isinstance(payload, str):
        return text_units(payload), 0
    if kind == "image_url" and not isinstance(payload.get("url"), str):
        problems.append(
            (
                "invalid_content",
                f"{param}.image_url.url must be a string (an https or data: URL).",
                f"{param}.image_url.url",
            )
        )
        return 0, 0
    return 0, IMAGE_TOKENS if kind == "image_url" else 0


def check_embeddings_body(body: dict[str, Any], problems: list[Problem]) -> tuple[int, int, int | None, int]:
    """Checks body.input: a non-empty string, or a non-empty list of strings, token ids or id lists."""
    value = body.get("input")
    chars, extra, inputs = _input_shape(value)
    if inputs == 0:
        what = "missing" if "input" not in body else _describe_bad_input(value)
        problems.append(
            (
                "invalid_input",
                f"body.input is {what}; it must be a non-empty string, a non-empty list of non-empty "
                "strings, a list of token ids, or a list of token-id lists.",
                "body.input",
            )
        )
    return chars, extra, 0, inputs


def _input_shape(value: Any) -> tuple[int, int, int]:
    """(chars, tokens, inputs) of an embeddings or completions input; inputs 0 means invalid."""
    if isinstance(value, str):
        return (text_units(value), 0, 1) if value else (0, 0, 0)
    if not isinstance(value, list) or not value:
        return 0, 0, 0
    first = type(value[0])
    if first is str and all(type(v) is str and v for v in value):
        return sum(map(text_units, value)), 0, len(value)
    if first is int and all(type(v) is int for v in value):
        return 0, len(value), 1
    if first is list and all(type(v) is list and v and all(type(t) is int for t in v) for v in value):
        return 0, sum(map(len, value)), len(value)
    return 0, 0, 0


def _describe_bad_input(value: Any) -> str:
    if value == "" or value == []:
        return "empty"
    if isinstance(value, list):
        return "a list mixing types or holding empty or non-string items"
    return f"a {_json_type(value)}"


def check_completions_body(body: dict[str, Any], problems: list[Problem]) -> tuple[int, int, int | None, int]:
    """Checks body.prompt (same shapes as an embeddings input)."""
    chars, extra, inputs = _input_shape(body.get("prompt"))
    if inputs == 0:
        problems.append(
            (
                "invalid_input",
                "body.prompt must be a non-empty string, a list of strings, or token ids.",
                "body.prompt",
            )
        )
    return chars, extra, _max_output(body), 0


def check_responses_body(body: dict[str, Any], problems: list[Problem]) -> tuple[int, int, int | None, int]:
    """Checks body.input: a non-empty string or a non-empty list of input items."""
    value = body.get("input")
    if isinstance(value, str) and value:
        return text_units(value + str(body.get("instructions") or "")), 0, _max_output(body), 0
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return json_size(value), 0, _max_output(body), 0
    problems.append(
        (
            "invalid_input",
            "body.input must be a non-empty string or a non-empty list of input items (objects).",
            "body.input",
        )
    )
    return 0, 0, _max_output(body), 0


BODY_CHECKERS = {
    "/v1/chat/completions": check_chat_body,
    "/v1/embeddings": check_embeddings_body,
    "/v1/completions": check_completions_body,
    "/v1/responses": check_responses_body,
}
