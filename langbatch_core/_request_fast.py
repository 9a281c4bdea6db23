"""The fast path for chat request lines: one typed msgspec decode per line.

A line the typed decode accepts, and whose few remaining rules hold, is valid; any other line goes to the
detailed checker in ``_request_rules`` for precise codes. The types here are never more lenient than those
rules (a line accepted here has no problem there), only sometimes stricter, which costs speed, not truth.

    decode, decode_lines = chat_decoder("/v1/chat/completions")
    facts = chat_facts(decode(line))   # a LineFacts tuple, or None: ask the detailed checker
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec

from langbatch_core._request_params import INT64_MAX, NAME
from langbatch_core._request_reader import JSONError, read_json
from langbatch_core._request_rules import IMAGE_TOKENS

NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]
Name = Annotated[str, msgspec.Meta(pattern=NAME.pattern)]
Int64 = Annotated[int, msgspec.Meta(ge=-INT64_MAX - 1, le=INT64_MAX)]
Positive = Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]


def _number(low: float, high: float) -> Any:
    return Annotated[float, msgspec.Meta(ge=low, le=high)]


# Every struct forbids unknown fields: msgspec skips their values without the checks of ``read_json`` (it
# takes 1e999 there), so a line with a field not declared here goes to the detailed checker. Raw values
# (opaque JSON: schemas, tool calls, files) are read by ``read_json`` in ``chat_facts`` for the same reason.
_STRICT = {"forbid_unknown_fields": True, "gc": False, "kw_only": True}


class _Part(msgspec.Struct, tag_field="type", **_STRICT):
    pass


class _Text(_Part, tag="text"):
    text: msgspec.Raw  # measured, not built, like a string content: must be a string (checked on use)


class _Refusal(_Part, tag="refusal"):
    refusal: str


class _ImageURL(msgspec.Struct, **_STRICT):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class _Image(_Part, tag="image_url"):
    image_url: _ImageURL


class _Audio(_Part, tag="input_audio"):
    input_audio: msgspec.Raw


class _File(_Part, tag="file"):
    file: msgspec.Raw


class _NoPart(_Part, tag="\x00"):
    """Never matches: a one-member tagged union would not require its tag."""


def _parts(*kinds: type) -> Any:
    union = kinds[0]
    for kind in (*kinds[1:], _NoPart):
        union = union | kind
    return Annotated[list[union], msgspec.Meta(min_length=1)]  # type: ignore[valid-type]


# per role: the decoder of a content given as a list of parts (None: the role takes only a string or null)
_PART_DECODERS = {
    "system": _parts(_Text),
    "developer": _parts(_Text),
    "user": _parts(_Text, _Image, _Audio, _File),
    "assistant": _parts(_Text, _Refusal),
    "tool": _parts(_Text),
}
_PART_DECODERS = {role: msgspec.json.Decoder(kind).decode for role, kind in _PART_DECODERS.items()}
_ABSENT = msgspec.Raw()
_QUOTE, _BRACKET, _N = ord('"'), ord("["), ord("n")


class _Message(msgspec.Struct, tag_field="role", **_STRICT):
    """Content stays raw JSON: strings are only measured, never built (most of a file's bytes)."""

    name: str | None = None


class _System(_Message, tag="system"):
    content: msgspec.Raw


class _Developer(_Message, tag="developer"):
    content: msgspec.Raw


class _User(_Message, tag="user"):
    content: msgspec.Raw


class _Assistant(_Message, tag="assistant"):
    content: msgspec.Raw = _ABSENT
    tool_calls: list[msgspec.Raw] | None = None
    function_call: msgspec.Raw = _ABSENT


class _Tool(_Message, tag="tool"):
    content: msgspec.Raw
    tool_call_id: str


_AnyMessage = _System | _Developer | _User | _Assistant | _Tool
_ROLE = {_System: "system", _Developer: "developer", _User: "user", _Assistant: "assistant", _Tool: "tool"}


class _FunctionSpec(msgspec.Struct, **_STRICT):
    name: Name
    description: str | None = None
    parameters: msgspec.Raw = _ABSENT  # an object: read in chat_facts
    strict: bool | None = None


class _ToolSpec(msgspec.Struct, tag_field="type", tag="function", **_STRICT):
    function: _FunctionSpec


class _SchemaSpec(msgspec.Struct, **_STRICT):
    name: Name
    schema: msgspec.Raw = _ABSENT  # an object: read in chat_facts
    description: str | None = None
    strict: bool | None = None


class _Format(msgspec.Struct, tag_field="type", **_STRICT):
    pass


class _TextFormat(_Format, tag="text"):
    pass


class _JsonObject(_Format, tag="json_object"):
    pass


class _JsonSchema(_Format, tag="json_schema"):
    json_schema: _SchemaSpec


class _ChosenFunction(msgspec.Struct, **_STRICT):
    name: str


class _ToolChoice(msgspec.Struct, tag_field="type", tag="function", **_STRICT):
    function: _ChosenFunction


class _ChatBody(msgspec.Struct, **_STRICT):
    """The parameters a request commonly sets, with OpenAI's bounds (see ``_request_params``)."""

    model: NonEmptyStr
    messages: Annotated[list[_AnyMessage], msgspec.Meta(min_length=1)]  # type: ignore[valid-type]
    max_tokens: Positive | None = None  # the usual order first: msgspec tries the next field first
    temperature: _number(0, 2) | None = None
    stream: Literal[False] | None = None
    max_completion_tokens: Positive | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=128)] | None = None
    top_p: _number(0, 1) | None = None
    presence_penalty: _number(-2, 2) | None = None
    frequency_penalty: _number(-2, 2) | None = None
    seed: Int64 | None = None
    stop: str | Annotated[list[str], msgspec.Meta(max_length=4)] | None = None
    logprobs: bool | None = None  # top_logprobs (which needs logprobs true) goes to the detailed checker
    response_format: _TextFormat | _JsonObject | _JsonSchema | None = None
    tools: list[_ToolSpec] | None = None
    tool_choice: Literal["none", "auto", "required"] | _ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None


@functools.cache
def chat_decoder(endpoint: str) -> tuple[Callable[[Any], Any], Callable[[Any], list[Any]]]:
    """``(decode, decode_lines)`` of whole chat request lines for a batch whose endpoint is ``endpoint``."""
    request = msgspec.defstruct(
        "ChatRequest",
        [
            ("custom_id", NonEmptyStr),
            ("method", Literal["POST"]),
            ("url", Literal[endpoint]),  # type: ignore[valid-type]
            ("body", _ChatBody),
        ],
        forbid_unknown_fields=True,
        gc=False,
    )
    decoder = msgspec.json.Decoder(request)
    return decoder.decode, decoder.decode_lines


_FIRST_BYTE = struct.Struct("B").unpack_from  # (byte,) of a buffer: cheaper than memoryview(raw)[0]


def chat_facts(request: Any, first_byte: Any = _FIRST_BYTE) -> tuple | None:
    """The facts of a decoded chat request (a plain ``LineFacts`` tuple: this runs once per line), or None
    when a rule the types cannot express fails.

    Text units here are bytes of JSON-encoded text (escapes included), measured on the raw content."""
    body = request.body  # its types hold stream false, and every bound of _request_params
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
        units = _tools_units(tools)
        if units is None:
            return None
        chars += units
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
        return _parts_units(_PART_DECODERS[_ROLE[type(message)]], content)
    if type(message) is _Assistant and (first == _N or not content):
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


def _tools_units(tools: list[_ToolSpec]) -> int | None:
    """About the JSON bytes of the tool definitions, or None when a tool's parameters are no object."""
    units = 0
    for tool in tools:
        function = tool.function
        parameters = function.parameters
        if parameters and not _readable(parameters, dict):
            return None
        units += len(parameters) + len(function.name) + len(function.description or "") + 60
    return units


def _schema_ok(response_format: Any) -> bool:
    schema = response_format.json_schema.schema if type(response_format) is _JsonSchema else None
    return not schema or _readable(schema, dict)


def _parts_units(decode: Callable[[Any], list[Any]], raw: msgspec.Raw) -> tuple[int, int] | None:
    try:
        parts = decode(raw)
    except (msgspec.ValidationError, RecursionError):
        return None
    chars = extra = 0
    for part in parts:
        kind = type(part)
        if kind is _Text:
            text = part.text
            if _FIRST_BYTE(text)[0] != _QUOTE:  # only a JSON string starts with a quote
                return None
            chars += len(text) - 2
        elif kind is _Image:
            extra += IMAGE_TOKENS
        elif kind is _Refusal:
            chars += len(part.refusal)
        elif not _readable(part.input_audio if kind is _Audio else part.file, dict):
            return None
    return chars, extra
