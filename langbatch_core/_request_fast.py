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

from langbatch_core._request_rules import IMAGE_TOKENS

NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]


class _Part(msgspec.Struct, tag_field="type", gc=False):
    pass


class _Text(_Part, tag="text"):
    text: str


class _Refusal(_Part, tag="refusal"):
    refusal: str


class _ImageURL(msgspec.Struct, gc=False):
    url: str


class _Image(_Part, tag="image_url"):
    image_url: _ImageURL


class _Audio(_Part, tag="input_audio"):
    input_audio: dict[str, Any]


class _File(_Part, tag="file"):
    file: dict[str, Any]


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


class _Message(msgspec.Struct, tag_field="role", gc=False):
    """Content stays raw JSON: strings are only measured, never built (most of a file's bytes)."""


class _System(_Message, tag="system"):
    content: msgspec.Raw


class _Developer(_Message, tag="developer"):
    content: msgspec.Raw


class _User(_Message, tag="user"):
    content: msgspec.Raw


class _Assistant(_Message, tag="assistant"):
    content: msgspec.Raw = _ABSENT
    tool_calls: list[msgspec.Raw] | None = None
    function_call: dict[str, Any] | None = None


class _Tool(_Message, tag="tool"):
    content: msgspec.Raw
    tool_call_id: str


class _Function(_Message, tag="function"):
    name: str
    content: str | None = None


_AnyMessage = _System | _Developer | _User | _Assistant | _Tool | _Function
_ROLE = {_System: "system", _Developer: "developer", _User: "user", _Assistant: "assistant", _Tool: "tool"}


class _ChatBody(msgspec.Struct, gc=False):
    model: NonEmptyStr
    messages: Annotated[list[_AnyMessage], msgspec.Meta(min_length=1)]  # type: ignore[valid-type]
    stream: bool | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    n: int | None = None
    tools: list[msgspec.Raw] | None = None  # Raw: measured, not decoded
    functions: list[msgspec.Raw] | None = None


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
    body = request.body
    if body.stream:
        return None
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
    if body.tools is not None:
        chars += sum(map(len, body.tools))
    if body.functions is not None:
        chars += sum(map(len, body.functions))
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
            return sum(map(len, message.tool_calls)), 0
        return None if message.function_call is None else (0, 0)
    if type(message) is _Function:
        return len(content or ""), 0
    return None


def _parts_units(decode: Callable[[Any], list[Any]], raw: msgspec.Raw) -> tuple[int, int] | None:
    try:
        parts = decode(raw)
    except msgspec.ValidationError:
        return None
    chars = extra = 0
    for part in parts:
        kind = type(part)
        if kind is _Text:
            chars += len(part.text)
        elif kind is _Image:
            extra += IMAGE_TOKENS
        elif kind is _Refusal:
            chars += len(part.refusal)
    return chars, extra
