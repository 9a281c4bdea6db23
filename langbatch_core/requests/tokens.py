"""Input-token estimates for request files, offline.

Validation measures each prompt in *text units* while it decodes the line (no tokenizer in the hot loop):
the bytes of its text as the file encodes it (JSON escapes included), plus the JSON of tool definitions.
About 4 units make one token with OpenAI's ``o200k_base`` and ``cl100k_base`` encodings for English; text
in other scripts is estimated less well (within about a factor of 1.5). Each chat message adds 3 tokens
of framing, each request 3 more, each image 765.

With ``validate_file(..., token_sample=N)`` the first N requests are counted exactly with the model's
encoding (``bpe-openai`` ships the o200k/cl100k tables, so it works offline; ``tiktoken`` downloads them and
fails without network), and the units of the whole file are scaled by the ratio measured on that sample.
Loading an encoding takes about a second and 150 MB once per process, which is why it is optional.

    count_tokens("Hello world!", model="gpt-4o-mini")     # 3 (exact, or None without bpe-openai)
    TokenEstimate(units=4000, extra=30).tokens()          # 1030
"""

from __future__ import annotations

import functools
import importlib.util
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import orjson

from langbatch_core.requests.rules import text_units

UNITS_PER_TOKEN = 4.0
DEFAULT_ENCODING = "o200k_base"
# model name prefix -> encoding (the first match wins)
_ENCODINGS = (
    ("gpt-3.5", "cl100k_base"),
    ("gpt-4-", "cl100k_base"),
    ("gpt-4", "cl100k_base"),
    ("text-embedding", "cl100k_base"),
)
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-")


def encoding_name(model: str | None) -> str:
    """The tiktoken encoding name OpenAI uses for ``model`` (``o200k_base`` for unknown models)."""
    name = (model or "").lower()
    if name.startswith(_O200K_PREFIXES):
        return "o200k_base"
    for prefix, encoding in _ENCODINGS:
        if name.startswith(prefix):
            return encoding
    return DEFAULT_ENCODING


@functools.cache
def _encoding(name: str) -> Any:
    if not tokenizer_available():
        return None
    with warnings.catch_warnings():  # bpe-openai reads its tables with a deprecated importlib call
        warnings.simplefilter("ignore", DeprecationWarning)
        import bpe_openai

        return bpe_openai.get_encoding(name)


def tokenizer_available() -> bool:
    """Whether exact counting works here (the ``bpe-openai`` package is installed; nothing is loaded)."""
    return importlib.util.find_spec("bpe_openai") is not None


def count_tokens(text: str, model: str | None = None) -> int | None:
    """Exact token count of ``text`` with the model's encoding, or None when no tokenizer is installed."""
    encoding = _encoding(encoding_name(model))
    if encoding is None:
        return None
    total = 0
    step = 200_000  # bpe-openai refuses to encode more than 200,000 tokens in one call
    for start in range(0, len(text), step):
        total += len(encoding.encode(text[start : start + step], disallowed_special=()))
    return total


@dataclass
class TokenEstimate:
    """Accumulates the text units of a file and turns them into a token estimate.

    ``sample`` pairs (units, exact tokens) of requests counted with a real tokenizer; with any, the ratio
    they show replaces ``UNITS_PER_TOKEN``.
    """

    units: int = 0
    extra: int = 0
    sample_units: int = 0
    sample_tokens: int = 0
    sampled: int = 0
    encoding: str | None = field(default=None)

    def units_per_token(self) -> float:
        if self.sample_units and self.sample_tokens:
            return self.sample_units / self.sample_tokens
        return UNITS_PER_TOKEN

    def tokens_for(self, units: int, extra: int) -> int:
        return math.ceil(units / self.units_per_token()) + extra

    def tokens(self) -> int:
        return self.tokens_for(self.units, self.extra)

    def add_sample(self, text: str, model: str | None, units: int | None = None) -> bool:
        """Counts ``text`` exactly (False when no tokenizer is installed); ``units`` as validation measured
        them (default: ``text_units(text)``)."""
        exact = count_tokens(text, model)
        if exact is None:
            return False
        self.encoding = encoding_name(model)
        self.sample_units += text_units(text) if units is None else units
        self.sample_tokens += exact
        self.sampled += 1
        return True

    def method(self) -> str:
        """How the estimate was made, in words (shown in reports)."""
        if self.sampled and self.sample_tokens:
            return (
                f"{self.encoding} counted exactly on {self.sampled} requests; the rest scaled by text length "
                f"({self.units_per_token():.2f} bytes of text per token)"
            )
        return (
            "estimated from text length (about 4 bytes of text per token, plus 3 per message and 765 per "
            "image); pass token_sample=N to count N requests exactly and scale the rest"
        )


def request_text(body: dict[str, Any]) -> str:
    """The prompt text of a request body (chat messages, tools, embedding or completion input), joined."""
    parts: list[str] = []
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text") or p.get("refusal") or "") for p in content if isinstance(p, dict))
    for key in ("tools", "functions"):
        if isinstance(body.get(key), list):
            parts.extend(orjson.dumps(item).decode() for item in body[key])
    for key in ("input", "prompt", "instructions"):
        value = body.get(key)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts.extend(v for v in value if isinstance(v, str))
    return "\n".join(parts)
