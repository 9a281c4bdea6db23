"""The fast path for chat request lines: one typed msgspec decode per line.

A line the typed decode accepts, and whose few remaining rules hold, is valid; any other line goes to the
detailed checker in ``requests.rules`` for precise codes. The types here are never more lenient than those
rules (a line accepted here has no problem there), only sometimes stricter, which costs speed, not truth.

    decode, decode_lines = chat_decoder("/v1/chat/completions")
    facts = chat_facts(decode(line))   # a LineFacts tuple, or None: ask the detailed checker
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from langbatch_core.jsonl import JSONError, read_json
from langbatch_core.requests.chat_body import (
    IMAGE_TOKENS,
    PART_UNIONS,
    ROLE_OF,
    Assistant,
    Audio,
    ChatBody,
    Image,
    JsonSchema,
    NonEmptyStr,
    Refusal,
    Text,
    ToolSpec,
)

if TYPE_CHECKING:
    from langbatch_core.requests.rules import FactsTuple

_PART_DECODERS = {role: msgspec.json.Decoder(kind).decode for role, kind in PART_UNIONS.items()}
_QUOTE, _BRACKET, _N = ord('"'), ord("["), ord("n")


@functools.cache
def chat_decoder(endpoint: str) -> tuple[Callable[[Any], Any], Callable[[Any], list[Any]]]:
    """``(decode, decode_lines)`` of whole chat request lines for a batch whose endpoint is ``endpoint``."""
    request = msgspec.defstruct(
        "ChatRequest",
        [
            ("custom_id", NonEmptyStr),
            ("method", Literal["POST"]),
            ("url", Literal[endpoint]),
            ("body", ChatBody),
        ],
        forbid_unknown_fields=True,
        gc=False,
    )
    decoder = msgspec.json.Decoder(request)
    return decoder.decode, decoder.decode_lines


_FIRST_BYTE = struct.Struct("B").unpack_from  # (byte,) of a buffer: cheaper than memoryview(raw)[0]


def chat_facts(request: Any, first_byte: Any = _FIRST_BYTE) -> FactsTuple | None:
    """The facts of a decoded chat request (a plain ``LineFacts`` tuple: this runs once per line), or None
    when a rule the types cannot express fails.

    Text units here are bytes of JSON-encoded text (escapes included), measured on the raw content."""
    body = request.body  # its types hold stream false, and every bound of requests.params
    messages = body.messages
    chars = extra = 0
    for message in messages:
        content = message.content
        try:
            first = first_byte(content)[0]
        except (TypeError, struct.error):  # a function message's str or None, or an absent content
            first = 0
        if first == 34:  # '"': a string
            chars += len(content) - 2
        else:
            units = _other_content(message, content, first)
            if units is None:
                return None
            chars += units[0]
            extra += units[1]
    tools = body.tools
    if tools is not None:
        tool_units = _tools_units(tools)
        if tool_units is None:
            return None
        chars += tool_units
    if body.response_format is not None and not _schema_ok(body.response_format):
        return None
    ceiling = body.max_completion_tokens
    if ceiling is None:
        ceiling = body.max_tokens
    if ceiling is not None and body.n is not None and body.n > 0:
        ceiling *= body.n
    return (request.custom_id, request.url, body.model, chars, extra + 3 * len(messages) + 3, ceiling, 0)


def _other_content(message: Any, content: Any, first: int) -> tuple[int, int] | None:
    """(units, extra tokens) of a content that is not a plain string, or None when it is not allowed."""
    if first == _BRACKET:
        return _parts_units(_PART_DECODERS[ROLE_OF[type(message)]], content)
    if type(message) is Assistant and (first == _N or not content):
        if message.tool_calls is not None:
            return (sum(map(len, message.tool_calls)), 0) if all(map(_readable, message.tool_calls)) else None
        return (0, 0) if message.function_call and _readable(message.function_call) else None
    return None


def _readable(raw: msgspec.Raw, kind: type = object) -> bool:
    """Whether opaque JSON (which msgspec only skipped) is read by ``read_json``, as a ``kind``."""
    try:
        return isinstance(read_json(memoryview(raw)), kind)
    except JSONError:
        return False


_OBJECTS: dict[bytes, bool] = {}  # JSON text -> whether it is an object: a file's lines repeat their tools


def _is_object(raw: msgspec.Raw) -> bool:
    """``_readable(raw, dict)``, remembered for the JSON texts seen last (tool parameters, schemas)."""
    if len(raw) > 4096:
        return _readable(raw, dict)
    text = bytes(raw)
    known = _OBJECTS.get(text)
    if known is None:
        if len(_OBJECTS) >= 64:
            _OBJECTS.clear()
        known = _OBJECTS[text] = _readable(raw, dict)
    return known


def _tools_units(tools: list[ToolSpec]) -> int | None:
    """About the JSON bytes of the tool definitions, or None when a tool's parameters are no object."""
    units = 0
    for tool in tools:
        function = tool.function
        parameters = function.parameters
        if parameters and not _is_object(parameters):
            return None
        units += len(parameters) + len(function.name) + len(function.description or "") + 60
    return units


def _schema_ok(response_format: Any) -> bool:
    schema = response_format.json_schema.schema if type(response_format) is JsonSchema else None
    return not schema or _is_object(schema)


def _parts_units(decode: Callable[[Any], list[Any]], raw: msgspec.Raw) -> tuple[int, int] | None:
    try:
        parts = decode(raw)
    except (msgspec.ValidationError, RecursionError):
        return None
    chars = extra = 0
    for part in parts:
        kind = type(part)
        if kind is Text:
            text = part.text
            if _FIRST_BYTE(text)[0] != _QUOTE:  # only a JSON string starts with a quote
                return None
            chars += len(text) - 2
        elif kind is Image:
            extra += IMAGE_TOKENS
        elif kind is Refusal:
            chars += len(part.refusal)
        elif not _readable(part.input_audio if kind is Audio else part.file, dict):
            return None
    return chars, extra
