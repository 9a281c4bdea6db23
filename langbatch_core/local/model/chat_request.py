"""Checking /v1/chat/completions and /v1/embeddings bodies for the bundled models, as OpenAI's API would.

    request = parse_chat_request({"model": "any", "messages": [{"role": "user", "content": "Hi"}]})
    request.messages, request.n, request.max_tokens
    parse_embedding_request({"model": "any", "input": ["a", "b"]}, dimensions=384).texts

A body the model cannot answer raises ``InvalidBodyError`` with OpenAI's ``param`` and ``code``; the backend
turns it into a 400 answer. Parameters that change nothing for a local model (``user``, ``store`` ...) are
accepted and ignored; those it cannot honour (``tools``, ``logprobs``, streaming ...) are refused by name.
``BUNDLED_MODEL`` offers these same checks to ``validate_file``, which reports them by line before a start:

    validate_file("requests.jsonl", capabilities=BUNDLED_MODEL)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langbatch_core.errors import InvalidRequestsError
from langbatch_core.local.model.json_output import ResponseFormatError, response_grammar
from langbatch_core.requests.chat_body import BOUNDS, MAX_STOP
from langbatch_core.requests.report import Capabilities

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
IGNORED = frozenset(
    {
        "user",
        "metadata",
        "store",
        "service_tier",
        "parallel_tool_calls",
        "stream_options",
        "reasoning_effort",
        "prompt_cache_key",
        "safety_identifier",
        "verbosity",
        "modalities",
        "tool_choice",
        "top_logprobs",
        "function_call",
    }
)
UNSUPPORTED = {
    "tools": "tool calls",
    "functions": "function calls",
    "audio": "audio output",
    "prediction": "predicted outputs",
    "web_search_options": "web search",
}
MAX_CHOICES = 16  # below OpenAI's bound (chat_body.BOUNDS["n"]): each choice is a generation here


class InvalidBodyError(InvalidRequestsError):
    """One request body is not valid for the bundled model; ``param``/``code`` as in OpenAI's errors."""

    def __init__(self, message: str, param: str | None = None, code: str | None = "invalid_value") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


@dataclass(frozen=True)
class ChatRequest:
    """A checked chat body: messages as ``{"role", "content": str}`` plus the generation parameters."""

    model: str
    messages: list[dict[str, str]]
    n: int = 1
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logit_bias: dict[int, float] | None = None
    grammar: str | None = None  # the JSON grammar ``response_format`` asks for (``json_output``)


# every parameter name a chat body may carry (honoured, ignored, or refused by name)
_KNOWN = frozenset(ChatRequest.__dataclass_fields__) - {"grammar"} | IGNORED | set(UNSUPPORTED)
_KNOWN |= {"max_completion_tokens", "stream", "logprobs", "response_format"}


def parse_chat_request(body: Any) -> ChatRequest:
    """Check ``body`` and return the ``ChatRequest`` it asks for; ``InvalidBodyError`` when it is wrong."""
    if not isinstance(body, dict):
        raise InvalidBodyError("The request body must be a JSON object.", None, "invalid_type")
    _check_parameters(body)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidBodyError(
            "You must provide a model parameter (any name: the engine has one model).",
            "model",
            "missing_required_parameter",
        )
    max_tokens = _optional_int(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _optional_int(body, "max_tokens", 1)
    messages = _messages(body.get("messages"))
    try:
        grammar = response_grammar(body.get("response_format"), messages)
    except ResponseFormatError as exc:
        raise InvalidBodyError(str(exc), exc.param, exc.code) from exc
    return ChatRequest(
        model=model,
        messages=messages,
        n=_optional_int(body, "n", 1, MAX_CHOICES) or 1,
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 1.0),
        top_p=_number(body, "top_p", 1.0),
        seed=_optional_int(body, "seed"),
        stop=_stop(body.get("stop")),
        frequency_penalty=_number(body, "frequency_penalty", 0.0),
        presence_penalty=_number(body, "presence_penalty", 0.0),
        logit_bias=_logit_bias(body.get("logit_bias")),
        grammar=grammar,
    )


def _check_parameters(body: dict[str, Any]) -> None:
    for name, value in body.items():
        if name in UNSUPPORTED and value not in (None, [], {}):
            raise InvalidBodyError(
                f"The bundled local model does not support {UNSUPPORTED[name]} ('{name}'); "
                "remove it, or run the engine with --upstream and a model that does.",
                name,
                "unsupported_parameter",
            )
        if name not in _KNOWN:
            raise InvalidBodyError(
                f"Unrecognized request argument supplied: {name}", name, "unknown_parameter"
            )
    if body.get("stream"):
        raise InvalidBodyError(
            "Streaming is not supported by the local engine: set 'stream' to false or leave it out.",
            "stream",
            "unsupported_parameter",
        )
    if body.get("logprobs"):
        raise InvalidBodyError(
            "The bundled local model does not return logprobs: set 'logprobs' to false or leave it out.",
            "logprobs",
            "unsupported_parameter",
        )


def _messages(messages: Any) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise InvalidBodyError(
            "'messages' must be a non-empty array of {role, content} objects.",
            "messages",
            "missing_required_parameter" if messages is None else "invalid_type",
        )
    return [_message(message, f"messages[{index}]") for index, message in enumerate(messages)]


def _message(message: Any, where: str) -> dict[str, str]:
    if not isinstance(message, dict):
        raise InvalidBodyError(f"{where} must be an object with 'role' and 'content'.", where, "invalid_type")
    role = message.get("role")
    if role not in ROLES:
        allowed = ", ".join(sorted(ROLES))
        raise InvalidBodyError(
            f"{where}.role is {role!r}; the bundled local model accepts {allowed}.", f"{where}.role"
        )
    return {"role": ROLES[role], "content": _content(message.get("content"), f"{where}.content")}


def _content(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        texts = []
        for index, part in enumerate(content):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise InvalidBodyError(
                    f'{where}[{index}] must be a text part {{"type": "text", "text": "..."}}: '
                    "the bundled local model reads text only.",
                    f"{where}[{index}]",
                )
            texts.append(part["text"])
        return "".join(texts)
    raise InvalidBodyError(f"{where} must be a string or an array of text parts.", where, "invalid_type")


def _optional_int(
    body: dict[str, Any], name: str, low: int | None = None, high: int | None = None
) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidBodyError(f"'{name}' must be an integer, not {value!r}.", name, "invalid_type")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise InvalidBodyError(f"'{name}' is {value}; it must be {bounds}.", name)
    return value


def _number(body: dict[str, Any], name: str, default: float) -> float:
    low, high = BOUNDS[name]
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidBodyError(f"'{name}' must be a number, not {value!r}.", name, "invalid_type")
    if not low <= value <= high:
        raise InvalidBodyError(f"'{name}' is {value}; it must be between {low:g} and {high:g}.", name)
    return float(value)


def _stop(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    values = [stop] if isinstance(stop, str) else stop
    if (
        not isinstance(values, list)
        or len(values) > MAX_STOP
        or not all(isinstance(s, str) and s for s in values)
    ):
        raise InvalidBodyError(
            f"'stop' must be a non-empty string or an array of up to {MAX_STOP} of them.", "stop"
        )
    return tuple(values)


def _logit_bias(bias: Any) -> dict[int, float] | None:
    if bias is None:
        return None
    if not isinstance(bias, dict):
        raise InvalidBodyError(
            "'logit_bias' must map token ids to numbers between -100 and 100.", "logit_bias", "invalid_type"
        )
    checked: dict[int, float] = {}
    for key, value in bias.items():
        token = int(key) if str(key).isdigit() else -1
        if token < 0:
            raise InvalidBodyError(f"'logit_bias' key {key!r} is not a token id.", f"logit_bias.{key}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not -100 <= value <= 100:
            raise InvalidBodyError(
                f"'logit_bias' value for {key!r} must be a number between -100 and 100.", f"logit_bias.{key}"
            )
        checked[token] = float(value)
    return checked


MAX_EMBEDDING_INPUTS = 2048  # OpenAI's limit per request
EMBEDDING_DIMENSIONS = 384  # all-MiniLM-L6-v2


@dataclass(frozen=True)
class EmbeddingRequest:
    """A checked /v1/embeddings body: the texts to embed and how to send the vectors back."""

    model: str
    texts: list[str]
    encoding_format: str = "float"


def parse_embedding_request(body: Any, dimensions: int) -> EmbeddingRequest:
    """Check an embeddings ``body`` for a model of ``dimensions``; ``InvalidBodyError`` when it is wrong."""
    if not isinstance(body, dict):
        raise InvalidBodyError("The request body must be a JSON object.", None, "invalid_type")
    for name in body:
        if name not in {"model", "input", "encoding_format", "dimensions", "user"}:
            raise InvalidBodyError(
                f"Unrecognized request argument supplied: {name}", name, "unknown_parameter"
            )
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        message = "You must provide a model parameter (any name: the engine has one embedding model)."
        raise InvalidBodyError(message, "model", "missing_required_parameter")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise InvalidBodyError("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    wanted = body.get("dimensions")
    if wanted is not None and wanted != dimensions:
        message = f"'dimensions' is {wanted!r}; the bundled embedding model only gives {dimensions}."
        raise InvalidBodyError(message, "dimensions", "unsupported_value")
    return EmbeddingRequest(model, _embedding_texts(body.get("input")), encoding)


def _embedding_texts(value: Any) -> list[str]:
    if value is None:
        message = "You must provide 'input': a string or an array of strings."
        raise InvalidBodyError(message, "input", "missing_required_parameter")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or len(texts) > MAX_EMBEDDING_INPUTS:
        message = f"'input' must be a string or an array of 1 to {MAX_EMBEDDING_INPUTS} strings."
        raise InvalidBodyError(message, "input", "invalid_value")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            message = (
                f"input[{index}] is not a string: the bundled embedding model reads text, not token ids "
                "(they belong to another model's tokenizer)."
            )
            raise InvalidBodyError(message, f"input[{index}]", "invalid_type")
        if not text:
            raise InvalidBodyError(f"input[{index}] is an empty string; send some text.", f"input[{index}]")
    return texts


def bundled_model_refusal(endpoint: str, body: dict[str, Any]) -> tuple[str | None, str] | None:
    """``(param, message)`` of the 400 the bundled models give ``body`` before running it, or None: the
    backend refuses with these very checks (``parse_chat_request``, ``parse_embedding_request``)."""
    try:
        if endpoint == "/v1/chat/completions":
            parse_chat_request(body)
        elif endpoint == "/v1/embeddings":
            parse_embedding_request(body, EMBEDDING_DIMENSIONS)
    except InvalidBodyError as exc:
        return exc.param, str(exc)
    return None


BUNDLED_MODEL = Capabilities("the bundled local model", bundled_model_refusal)
