"""What a valid chat completions body is: the one description that the validator's typed fast path
(``requests.fast``), its detailed rules (``requests.rules``, ``requests.params``) and the local engine's
bundled model (``local.model.chat_request``) all read.

    BOUNDS["temperature"]            # (0, 2): the range OpenAI's API takes
    PART_TYPES["user"]               # the content part types a user message may send
    msgspec.json.Decoder(ChatBody)   # the typed form of a body (the fast path's decode)

The typed form is never more lenient than the rules: a body it accepts passes them; a body it refuses goes
to the rules, which name the problem. A new bound goes into ``BOUNDS`` and reaches all three readers.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

import msgspec

INT64_MAX = 2**63 - 1
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}\Z")  # tool, function and json_schema names
MAX_STOP = 4  # stop sequences a request may give
ToolChoiceName = Literal["none", "auto", "required"]
TOOL_CHOICES: tuple[str, ...] = get_args(ToolChoiceName)
# the numeric parameters of a chat body and the inclusive range OpenAI's API takes
BOUNDS: dict[str, tuple[float, float]] = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "presence_penalty": (-2, 2),
    "frequency_penalty": (-2, 2),
    "seed": (-INT64_MAX - 1, INT64_MAX),
    "max_tokens": (1, INT64_MAX),
    "max_completion_tokens": (1, INT64_MAX),
    "n": (1, 128),
    "top_logprobs": (0, 20),
}
INTEGERS = frozenset({"seed", "max_tokens", "max_completion_tokens", "n", "top_logprobs"})
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
# which typed content parts each role may send
PART_TYPES: dict[str, frozenset[str]] = {
    "system": frozenset({"text"}),
    "developer": frozenset({"text"}),
    "user": frozenset({"text", "image_url", "input_audio", "file"}),
    "assistant": frozenset({"text", "refusal"}),
    "tool": frozenset({"text"}),
    "function": frozenset({"text"}),
}
# the field that carries each part's payload, and the JSON type it must have
PART_PAYLOAD: dict[str, type[str] | type[dict[str, Any]]] = {
    "text": str,
    "refusal": str,
    "image_url": dict,
    "input_audio": dict,
    "file": dict,
}
IMAGE_TOKENS = 765  # a 1024x1024 image at high detail; low detail costs 85


# -- the typed form (msgspec) --------------------------------------------------------------------------

NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]
Name = Annotated[str, msgspec.Meta(pattern=NAME.pattern)]


def _within(name: str) -> msgspec.Meta:
    """The constraint of a ``BOUNDS`` parameter (its type, int for ``INTEGERS``, is on the field)."""
    low, high = BOUNDS[name]
    return msgspec.Meta(ge=low, le=high)


# Every struct forbids unknown fields: msgspec skips their values without the checks of ``read_json`` (it
# takes 1e999 there), so a line with a field not declared here goes to the detailed checker. Raw values
# (opaque JSON: schemas, tool calls, files) are read by ``read_json`` in ``chat_facts`` for the same reason.
# The options are spelled out on each root struct (not spread from a dict) so that a type checker sees them.


class Part(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, gc=False, kw_only=True):
    pass


class Text(Part, tag="text"):
    text: msgspec.Raw  # measured, not built, like a string content: must be a string (checked on use)


class Refusal(Part, tag="refusal"):
    refusal: str


class ImageURL(msgspec.Struct, forbid_unknown_fields=True, gc=False, kw_only=True):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class Image(Part, tag="image_url"):
    image_url: ImageURL


class Audio(Part, tag="input_audio"):
    input_audio: msgspec.Raw


class File(Part, tag="file"):
    file: msgspec.Raw


class NoPart(Part, tag="\x00"):
    """Never matches: a one-member tagged union would not require its tag."""


def _parts(*kinds: type) -> Any:
    union: Any = kinds[0]
    for kind in (*kinds[1:], NoPart):
        union = union | kind
    return Annotated[list[union], msgspec.Meta(min_length=1)]


# per role: the type of a content given as a list of parts (roles not here take only a string or null)
PART_UNIONS = {
    "system": _parts(Text),
    "developer": _parts(Text),
    "user": _parts(Text, Image, Audio, File),
    "assistant": _parts(Text, Refusal),
    "tool": _parts(Text),
}
ABSENT = msgspec.Raw()


class Message(msgspec.Struct, tag_field="role", forbid_unknown_fields=True, gc=False, kw_only=True):
    """Content stays raw JSON: strings are only measured, never built (most of a file's bytes)."""

    name: str | None = None


class System(Message, tag="system"):
    content: msgspec.Raw


class Developer(Message, tag="developer"):
    content: msgspec.Raw


class User(Message, tag="user"):
    content: msgspec.Raw


class Assistant(Message, tag="assistant"):
    content: msgspec.Raw = ABSENT
    tool_calls: list[msgspec.Raw] | None = None
    function_call: msgspec.Raw = ABSENT


class Tool(Message, tag="tool"):
    content: msgspec.Raw
    tool_call_id: str


AnyMessage = System | Developer | User | Assistant | Tool
ROLE_OF: dict[type[Message], str] = {
    System: "system",
    Developer: "developer",
    User: "user",
    Assistant: "assistant",
    Tool: "tool",
}


class FunctionSpec(msgspec.Struct, forbid_unknown_fields=True, gc=False, kw_only=True):
    name: Name
    description: str | None = None
    parameters: msgspec.Raw = ABSENT  # an object: read in chat_facts
    strict: bool | None = None


class ToolSpec(
    msgspec.Struct, tag_field="type", tag="function", forbid_unknown_fields=True, gc=False, kw_only=True
):
    function: FunctionSpec


class SchemaSpec(msgspec.Struct, forbid_unknown_fields=True, gc=False, kw_only=True):
    name: Name
    schema: msgspec.Raw = ABSENT  # an object: read in chat_facts
    description: str | None = None
    strict: bool | None = None


class Format(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, gc=False, kw_only=True):
    pass


class TextFormat(Format, tag="text"):
    pass


class JsonObject(Format, tag="json_object"):
    pass


class JsonSchema(Format, tag="json_schema"):
    json_schema: SchemaSpec


class ChosenFunction(msgspec.Struct, forbid_unknown_fields=True, gc=False, kw_only=True):
    name: str


class ToolChoice(
    msgspec.Struct, tag_field="type", tag="function", forbid_unknown_fields=True, gc=False, kw_only=True
):
    function: ChosenFunction


class ChatBody(msgspec.Struct, forbid_unknown_fields=True, gc=False, kw_only=True):
    """The parameters a request commonly sets, with their ``BOUNDS``; any other parameter is for the rules."""

    model: NonEmptyStr
    messages: Annotated[list[AnyMessage], msgspec.Meta(min_length=1)]
    # the usual order first: msgspec tries the next field first
    max_tokens: Annotated[int, _within("max_tokens")] | None = None
    temperature: Annotated[float, _within("temperature")] | None = None
    stream: Literal[False] | None = None
    max_completion_tokens: Annotated[int, _within("max_completion_tokens")] | None = None
    n: Annotated[int, _within("n")] | None = None
    top_p: Annotated[float, _within("top_p")] | None = None
    presence_penalty: Annotated[float, _within("presence_penalty")] | None = None
    frequency_penalty: Annotated[float, _within("frequency_penalty")] | None = None
    seed: Annotated[int, _within("seed")] | None = None
    stop: str | Annotated[list[str], msgspec.Meta(max_length=MAX_STOP)] | None = None
    logprobs: bool | None = None  # top_logprobs (which needs logprobs true) goes to the detailed checker
    response_format: TextFormat | JsonObject | JsonSchema | None = None
    tools: list[ToolSpec] | None = None
    tool_choice: ToolChoiceName | ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None
