"""The generation parameters of a request body, checked for type and range as OpenAI's API checks them.

    problems: list[Problem] = []
    check_parameters(body, "/v1/chat/completions", problems)
    # [("invalid_parameter", 'temperature must be a number between 0 and 2, got "hot".', "body.temperature")]

Only parameters present in the body are checked (``null`` counts as absent); names this table does not know
are left alone. The bounds of a chat body are ``chat_body.BOUNDS``, which the fast path's types declare too:
a value they accept passes here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langbatch_core.requests.chat_body import BOUNDS, INT64_MAX, INTEGERS, MAX_STOP, NAME, TOOL_CHOICES

EMBEDDING_ENCODINGS = ("float", "base64")
Problem = tuple[str, str, str | None]
Check = Callable[[str, Any], str | None]  # (name, value) -> what is wrong, or None


def check_parameters(body: dict[str, Any], endpoint: str, problems: list[Problem]) -> None:
    """Appends an ``invalid_parameter`` problem for each parameter of ``body`` that ``endpoint`` refuses."""
    for name, check in RULES.get(endpoint, {}).items():
        value = body.get(name)
        if value is not None:
            wrong = check(name, value)
            if wrong is not None:
                problems.append(("invalid_parameter", wrong, f"body.{name}"))
    chat = endpoint == "/v1/chat/completions"
    if chat and body.get("top_logprobs") is not None and not body.get("logprobs"):
        problems.append(
            (
                "invalid_parameter",
                "top_logprobs needs logprobs: set logprobs to true, or remove top_logprobs.",
                "body.logprobs",
            )
        )


_CONTAINERS: dict[type, str] = {dict: "an object", list: "a list"}


def shown(value: Any) -> str:
    """A short, safe rendering of a JSON value for a message (never recursive: values may nest deeply)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "…"
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int | float):
        return repr(value)
    return _CONTAINERS.get(type(value), "null")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def number(low: float, high: float) -> Check:
    def check(name: str, value: Any) -> str | None:
        if isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high:
            return None
        return f"{name} must be a number between {low:g} and {high:g}, got {shown(value)}."

    return check


def integer(low: int, high: int = INT64_MAX) -> Check:
    def check(name: str, value: Any) -> str | None:
        if _is_int(value) and low <= value <= high:
            return None
        bounds = f"at least {low}" if high == INT64_MAX else f"from {low} to {high}"
        return f"{name} must be a whole number {bounds}, got {shown(value)}."

    return check


def boolean(name: str, value: Any) -> str | None:
    return None if isinstance(value, bool) else f"{name} must be true or false, got {shown(value)}."


def one_of(*choices: str) -> Check:
    def check(name: str, value: Any) -> str | None:
        if value in choices and isinstance(value, str):
            return None
        return f"{name} must be {' or '.join(map(shown, choices))}, got {shown(value)}."

    return check


def stop(name: str, value: Any) -> str | None:
    if isinstance(value, str):
        return None
    if isinstance(value, list) and len(value) <= MAX_STOP and all(isinstance(item, str) for item in value):
        return None
    return f"{name} must be a string or a list of up to {MAX_STOP} strings, got {shown(value)}."


def response_format(name: str, value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("text", "json_object"):
        return None
    if kind != "json_schema":
        return (
            f'{name} must be {{"type": "text"}}, {{"type": "json_object"}} or {{"type": "json_schema", '
            f'"json_schema": {{"name": …, "schema": {{…}}}}}}, got type {shown(kind)}.'
        )
    spec = value.get("json_schema")
    if not isinstance(spec, dict):
        return f"{name}.json_schema must be an object with name and schema, got {shown(spec)}."
    return _named(f"{name}.json_schema", spec) or _schema_parts(f"{name}.json_schema", spec, "schema")


def _named(where: str, spec: dict[str, Any]) -> str | None:
    value = spec.get("name")
    if isinstance(value, str) and NAME.match(value):
        return None
    return f"{where}.name must be 1 to 64 letters, digits, _ or -, got {shown(value)}."


def _schema_parts(where: str, spec: dict[str, Any], schema_key: str) -> str | None:
    schema, strict = spec.get(schema_key), spec.get("strict")
    if schema is not None and not isinstance(schema, dict):
        return f"{where}.{schema_key} must be a JSON Schema object, got {shown(schema)}."
    if strict is not None and not isinstance(strict, bool):
        return f"{where}.strict must be true or false, got {shown(strict)}."
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        return f"{where}.description must be a string, got {shown(description)}."
    return None


def tools(name: str, value: Any) -> str | None:
    if not isinstance(value, list):
        return f"{name} must be a list of tools, got {shown(value)}."
    for index, tool in enumerate(value):
        wrong = _tool(f"{name}[{index}]", tool)
        if wrong is not None:
            return wrong
    return None


def _tool(where: str, tool: Any) -> str | None:
    kind = tool.get("type") if isinstance(tool, dict) else None
    if kind not in ("function", "custom"):
        return f'{where} must be {{"type": "function", "function": {{"name": …}}}}, got {shown(tool)}.'
    spec = tool.get(kind)
    if not isinstance(spec, dict):
        return f"{where}.{kind} must be an object with a name, got {shown(spec)}."
    return _named(f"{where}.{kind}", spec) or (
        _schema_parts(f"{where}.function", spec, "parameters") if kind == "function" else None
    )


def tool_choice(name: str, value: Any) -> str | None:
    if isinstance(value, str):
        return None if value in TOOL_CHOICES else one_of(*TOOL_CHOICES)(name, value)
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("function", "custom"):
        spec = value.get(kind)
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            return None
        return f"{name}.{kind} must be an object naming the tool, got {shown(spec)}."
    if kind == "allowed_tools" and isinstance(value.get("allowed_tools"), dict):
        return None
    return (
        f'{name} must be "none", "auto", "required" or {{"type": "function", "function": {{"name": …}}}}, '
        f"got {shown(value)}."
    )


def bounded(name: str) -> Check:
    """The check of a parameter of ``chat_body.BOUNDS``."""
    low, high = BOUNDS[name]
    return integer(int(low), int(high)) if name in INTEGERS else number(low, high)


_SAMPLING: dict[str, Check] = {
    **{name: bounded(name) for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty")},
    "seed": bounded("seed"),
    "stop": stop,
}
RULES: dict[str, dict[str, Check]] = {
    "/v1/chat/completions": {
        **_SAMPLING,
        **{name: bounded(name) for name in ("max_tokens", "max_completion_tokens", "n", "top_logprobs")},
        "logprobs": boolean,
        "response_format": response_format,
        "tools": tools,
        "tool_choice": tool_choice,
        "parallel_tool_calls": boolean,
    },
    "/v1/completions": {
        **_SAMPLING,
        "max_tokens": integer(1),
        "n": integer(1, 128),
        "logprobs": integer(0, 5),
    },
    "/v1/responses": {
        "temperature": number(0, 2),
        "top_p": number(0, 1),
        "max_output_tokens": integer(1),
        "top_logprobs": integer(0, 20),
    },
    "/v1/embeddings": {"dimensions": integer(1), "encoding_format": one_of(*EMBEDDING_ENCODINGS)},
}
