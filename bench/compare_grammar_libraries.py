"""llguidance against outlines-core on the bundled model's own tokenizer: setup, schema compile time, coverage
and mask cost per token. Run once to choose the library (bench/README.md, "Constrained decoding"):

    pip install --target /tmp/outlines-core outlines-core==0.2.14
    PYTHONPATH=/tmp/outlines-core .venv/bin/python bench/compare_grammar_libraries.py

Both get the same vocabulary (the ``tokenizers`` BPE the project builds from the GGUF metadata) and the same
JSON style (", " and ": " separators, no other whitespace). The mask cost replays one valid answer's tokens.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_constrained import SCHEMA
from langbatch_core.local.model.gguf_file import read_gguf
from langbatch_core.local.model.gguf_weights import find_weights_file
from langbatch_core.local.model.json_output import JSON_STYLE
from langbatch_core.local.model.tokenizer import ChatTokenizer

ANSWER = {
    "subject": "Paris",
    "sentiment": "positive",
    "score": 9.5,
    "facts": ["It is the capital of France", "It has the Louvre"],
    "place": {"city": "Paris", "in_europe": True},
}
TWENTY_FIELDS = {
    "type": "object",
    "additionalProperties": False,
    "required": [f"f{i}" for i in range(20)],
    "properties": {
        f"f{i}": [
            {"type": "string", "enum": [f"v{j}" for j in range(8)]},
            {"type": "integer"},
            {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "boolean"}}}},
        ][i % 3]
        for i in range(20)
    },
}
RECURSIVE = {
    "$defs": {
        "node": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "children"],
            "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            },
        }
    },
    "$ref": "#/$defs/node",
}
SCHEMAS = {
    "5 fields, nested": SCHEMA,
    "20 fields": TWENTY_FIELDS,
    "json_object": {"type": "object"},
    "recursive": RECURSIVE,
}


def timed(action: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def with_llguidance(chat: ChatTokenizer, answer_ids: list[int]) -> None:
    import llguidance
    import llguidance.numpy as masks

    vocab, seconds = timed(
        lambda: llguidance.LLTokenizer(chat.tokenizer.to_str(), n_vocab=chat.vocab_size, eos_token=2)
    )
    print(f"llguidance {llguidance.__version__}: vocabulary {seconds:.2f} s")

    def matcher(schema: dict) -> llguidance.LLMatcher:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=JSON_STYLE)  # type: ignore[arg-type]
        found = llguidance.LLMatcher(vocab, grammar)
        found.compute_bitmask()  # the first mask: grammars are compiled lazily
        return found

    for name, schema in SCHEMAS.items():
        found, seconds = timed(lambda schema=schema: matcher(schema))
        print(f"  {name}: compile + first mask {seconds * 1e3:.1f} ms {found.get_error() or 'ok'}")
    found = matcher(SCHEMA)
    bits = masks.allocate_token_bitmask(1, chat.vocab_size)
    times = []
    for token in answer_ids:
        start = time.perf_counter()
        masks.fill_next_token_bitmask(found, bits)
        times.append(time.perf_counter() - start)
        assert found.consume_token(token), found.get_error()
    report(times)


def with_outlines_core(chat: ChatTokenizer, answer_ids: list[int]) -> None:
    from importlib.metadata import version

    from outlines_core import Guide, Index, Vocabulary
    from outlines_core.json_schema import build_regex_from_schema

    vocab, seconds = timed(lambda: Vocabulary(2, token_bytes(chat)))
    print(f"outlines-core {version('outlines-core')}: vocabulary {seconds:.2f} s")

    def index(schema: dict) -> Index:
        return Index(build_regex_from_schema(json.dumps(schema), r" ?"), vocab)

    for name, schema in SCHEMAS.items():
        try:
            _, seconds = timed(lambda schema=schema: index(schema))
            print(f"  {name}: index {seconds * 1e3:.1f} ms ok")
        except Exception as exc:
            print(f"  {name}: refused ({str(exc)[:80]})")
    guide = Guide(index(SCHEMA))
    bits = np.full((1, (chat.vocab_size + 31) // 32), -1, dtype=np.int32)
    times = []
    for token in answer_ids:
        start = time.perf_counter()
        guide.write_mask_into(bits.ctypes.data, bits.size, 4)
        times.append(time.perf_counter() - start)
        guide.advance(token, return_tokens=False)
    report(times)


def token_bytes(chat: ChatTokenizer) -> dict[bytes, list[int]]:
    """Every ordinary token's bytes (byte-level BPE spells bytes with printable stand-ins)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    stand_ins = {chr(b): b for b in printable}
    stand_ins.update({chr(256 + n): b for n, b in enumerate(b for b in range(256) if b not in printable)})
    found: dict[bytes, list[int]] = {}
    for token in range(chat.vocab_size):
        if token not in chat.special_ids:
            spelled = chat.tokenizer.id_to_token(token)
            found.setdefault(bytes(stand_ins[c] for c in spelled), []).append(token)
    return found


def report(times: list[float]) -> None:
    micro = np.array(times) * 1e6
    print(
        f"  mask per token over {len(micro)} tokens: mean {micro.mean():.0f} µs, "
        f"median {np.median(micro):.0f} µs, max {micro.max():.0f} µs"
    )


def main() -> None:
    chat = ChatTokenizer.from_metadata(read_gguf(find_weights_file()).metadata)
    answer_ids = chat.encode(json.dumps(ANSWER))
    with_llguidance(chat, answer_ids)
    try:
        with_outlines_core(chat, answer_ids)
    except ImportError:
        print("outlines-core: not installed (see this script's docstring)")


if __name__ == "__main__":
    main()
