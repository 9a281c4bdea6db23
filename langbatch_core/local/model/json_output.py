"""JSON answers from the bundled model: ``response_format`` turned into a grammar, and the grammar into a mask
over the vocabulary at every step (constrained decoding with ``llguidance``).

    grammar = response_grammar({"type": "json_schema", "json_schema": {"name": "x", "schema": {...}}})
    grammars = TokenGrammars(chat_tokenizer)           # builds llguidance's view of the vocabulary once
    matcher = grammars.matcher(grammar)
    logits = matcher.masked(logits)                   # tokens the grammar forbids get -inf
    matcher.consume(token)                            # after choosing it
    matcher.finished                                  # True: nothing but an end of turn may follow

Every token the model may pick keeps the answer a prefix of a JSON text matching the schema; end-of-turn
tokens are allowed only where the JSON is complete. An answer cut by ``max_tokens`` or a ``stop`` string is
not complete JSON (OpenAI behaves the same). ``llguidance`` was chosen over ``outlines-core`` for this
(bench/README.md, "Constrained decoding"): its grammars compile in milliseconds whatever the schema and cover
recursive schemas and ``json_object``, where outlines-core builds a whole index per schema first (0.5 s for a
20-field schema, 9.7 s for ``{"type": "object"}``).
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Any

import numpy as np

# Compact JSON with the spaces models are used to: {"a": 1, "b": [true, false]}; no free whitespace, which a
# small model can otherwise repeat until max_tokens.
JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
ANY_JSON_OBJECT: dict[str, Any] = {"type": "object"}


class ResponseFormatError(ValueError):
    """``response_format`` asks for something the bundled model cannot honour; ``param`` names where."""

    def __init__(self, message: str, param: str, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


def response_grammar(response_format: Any, messages: list[dict[str, str]]) -> str | None:
    """The llguidance grammar that ``response_format`` asks for, None for free text.

    ``{"type": "json_object"}`` gives any JSON object (the messages must mention JSON, as OpenAI requires),
    ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`` JSON matching the schema (strict
    or not: the answer always matches). A schema the grammar compiler refuses raises ``ResponseFormatError``
    naming the problem.
    """
    if response_format is None or response_format == {"type": "text"}:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        if not any("json" in message["content"].lower() for message in messages):
            raise ResponseFormatError(
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                "'json_object'.",
                "messages",
            )
        return _compiled(ANY_JSON_OBJECT, "response_format")
    if kind != "json_schema":
        raise ResponseFormatError(
            '\'response_format\' must be {"type": "text"}, {"type": "json_object"} or '
            '{"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}, '
            f"not type {kind!r}.",
            "response_format.type",
        )
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise ResponseFormatError(
            "'response_format.json_schema' must be an object with a 'name' and a 'schema'.",
            "response_format.json_schema",
            "missing_required_parameter" if spec is None else "invalid_value",
        )
    schema = spec.get("schema", {})
    if not isinstance(schema, dict):
        raise ResponseFormatError(
            "'response_format.json_schema.schema' must be a JSON Schema object.",
            "response_format.json_schema.schema",
            "invalid_type",
        )
    return _compiled(schema, "response_format.json_schema.schema")


def _compiled(schema: dict[str, Any], param: str) -> str:
    try:
        text = json.dumps(schema)  # keys in the schema's order: the answer's properties come in that order
    except (TypeError, ValueError) as exc:  # not JSON (a bad float, a cycle): say so, as the compiler would
        raise ResponseFormatError(f"'{param}' is not a JSON Schema: {exc}", param) from exc
    grammar, problem = _compile(text)
    if problem is not None:
        raise ResponseFormatError(
            f"'{param}' is not a JSON Schema the bundled model can follow: {problem}. "
            "Fix the schema, or leave out the keywords it names.",
            param,
        )
    return grammar


@functools.lru_cache(maxsize=256)
def _compile(schema_text: str) -> tuple[str, str | None]:
    """(grammar, None) or ("", the compiler's complaint); cached: a file's lines mostly share one schema."""
    try:
        from llguidance import LLMatcher
    except ImportError as exc:  # pragma: no cover - the [model] extra installs it
        return "", f"reading it needs the 'llguidance' package: pip install 'langbatch-core[model]' ({exc})"
    try:
        grammar = LLMatcher.grammar_from_json_schema(schema_text, defaults=JSON_STYLE)  # type: ignore[arg-type]
    except ValueError as exc:
        return "", str(exc)
    problem = LLMatcher.validate_grammar(grammar)
    return (grammar, None) if not problem else ("", problem.strip().splitlines()[0])


class ConstrainedDecodingError(RuntimeError):
    """The grammar matcher broke down (a bug in it, or a vocabulary it misread): that request fails."""


class TokenGrammars:
    """Matchers for grammars over one tokenizer's vocabulary; llguidance's copy of the vocabulary is built
    on first use (about half a second, once per process) and shared by every matcher."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer  # a ChatTokenizer
        self._ll_tokenizer: Any = None
        self._lock = threading.Lock()

    def ll_tokenizer(self) -> Any:
        """llguidance's tokenizer (built once, thread-safe); end-of-turn tokens end a finished answer."""
        with self._lock:
            if self._ll_tokenizer is None:
                from llguidance import LLTokenizer

                chat = self._tokenizer
                self._ll_tokenizer = LLTokenizer(
                    chat.tokenizer.to_str(),
                    n_vocab=chat.vocab_size,
                    eos_token=sorted(chat.stop_token_ids),
                )
            return self._ll_tokenizer

    def matcher(self, grammar: str) -> GrammarMatcher:
        return GrammarMatcher(self.ll_tokenizer(), grammar)


class GrammarMatcher:
    """Where one answer stands in its grammar: which tokens may come next, and whether it is finished."""

    def __init__(self, ll_tokenizer: Any, grammar: str) -> None:
        from llguidance import LLMatcher

        self._matcher = LLMatcher(ll_tokenizer, grammar, log_level=0)
        self._vocab = ll_tokenizer.vocab_size
        self._bits = np.zeros((self._vocab + 31) // 32, dtype=np.int32)
        self._check()

    def masked(self, logits: np.ndarray) -> np.ndarray:
        """A copy of ``logits`` (vocab,) with -inf for every token the grammar does not allow next."""
        self._matcher.unsafe_compute_mask_ptr(self._bits.ctypes.data, self._bits.nbytes)
        self._check()
        allowed = np.unpackbits(self._bits.view(np.uint8), bitorder="little")[: self._vocab].view(bool)
        scores = np.full(logits.shape, -np.inf, dtype=logits.dtype)
        width = min(len(logits), self._vocab)
        np.copyto(scores[:width], logits[:width], where=allowed[:width])
        return scores

    def consume(self, token: int) -> None:
        """Advance past the chosen ``token`` (one the last mask allowed)."""
        self._matcher.consume_token(token)
        self._check()

    @property
    def finished(self) -> bool:
        """True when the answer is complete and nothing but an end of turn may follow."""
        return bool(self._matcher.is_stopped())

    def _check(self) -> None:
        if self._matcher.is_error():
            raise ConstrainedDecodingError(f"constrained decoding failed: {self._matcher.get_error()}")
