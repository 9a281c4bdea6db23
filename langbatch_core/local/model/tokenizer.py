"""The bundled model's tokenizer and chat template, both built from the GGUF file's metadata.

    tokenizer = ChatTokenizer.from_metadata(load_weights().metadata)
    ids = tokenizer.encode(tokenizer.render_chat([{"role": "user", "content": "Hi"}]))
    tokenizer.decode(ids)

The vocabulary and merges (``tokenizer.ggml.tokens`` / ``.merges``) feed a byte-level BPE from the
``tokenizers`` package; control tokens (``<|im_start|>`` ...) become special tokens so that the chat
template's markers encode as single ids; the Jinja chat template (``tokenizer.chat_template``) renders the
messages in a sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langbatch_core.errors import ConfigurationError

CONTROL_TOKEN_TYPE = 3  # llama.cpp's token type for special tokens (USER_DEFINED is 4)
USER_DEFINED_TOKEN_TYPE = 4
# Control tokens that end an answer besides the declared end-of-sequence token (llama.cpp stops on them too).
END_OF_TURN_TOKENS = frozenset({"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>"})
# SmolLM2's ChatML template, used only when a GGUF file carries no template of its own.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass
class ChatTokenizer:
    """Encode/decode text and render chat messages the way the model was trained to read them."""

    tokenizer: Any  # tokenizers.Tokenizer
    template: Any  # a compiled jinja2 template
    bos_token: str
    eos_token: str
    stop_token_ids: frozenset[int]
    special_ids: frozenset[int]

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> ChatTokenizer:
        """Build from GGUF metadata (``ModelWeights.metadata``)."""
        if metadata.get("tokenizer.ggml.model") != "gpt2":
            raise ConfigurationError(
                f"The model's tokenizer type {metadata.get('tokenizer.ggml.model')!r} is not supported; "
                "the bundled model runner reads byte-level BPE ('gpt2') tokenizers only."
            )
        tokens: list[str] = list(metadata["tokenizer.ggml.tokens"])
        types: list[int] = list(metadata.get("tokenizer.ggml.token_type", [1] * len(tokens)))
        special = [i for i, kind in enumerate(types) if kind in (CONTROL_TOKEN_TYPE, USER_DEFINED_TOKEN_TYPE)]
        tokenizer = _build_bpe(tokens, list(metadata["tokenizer.ggml.merges"]), [tokens[i] for i in special])
        bos = tokens[int(metadata.get("tokenizer.ggml.bos_token_id", 1))]
        eos_id = int(metadata.get("tokenizer.ggml.eos_token_id", 2))
        stop_ids = {eos_id} | {i for i in special if tokens[i] in END_OF_TURN_TOKENS}
        if "tokenizer.ggml.eot_token_id" in metadata:
            stop_ids.add(int(metadata["tokenizer.ggml.eot_token_id"]))
        template_text = metadata.get("tokenizer.chat_template") or FALLBACK_TEMPLATE
        return cls(
            tokenizer=tokenizer,
            template=_compile_template(template_text),
            bos_token=bos,
            eos_token=tokens[eos_id],
            stop_token_ids=frozenset(stop_ids),
            special_ids=frozenset(special),
        )

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special-token markers in it (``<|im_start|>``) become their single id."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """``encode`` for many texts at once (in parallel, in Rust)."""
        return [item.ids for item in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        """Text of ``ids`` (special tokens dropped unless asked)."""
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    def render_chat(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The prompt text for ``messages`` (``[{"role": ..., "content": str}]``) per the model's template."""
        return self.template.render(
            messages=messages,
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
        )


def _build_bpe(tokens: list[str], merges: list[str], special_tokens: list[str]) -> Any:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    vocab = {token: index for index, token in enumerate(tokens)}
    pairs = [(left, right) for left, _, right in (merge.partition(" ") for merge in merges)]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False))
    # SmolLM2's pre-tokenizer (GGUF "smollm"): every digit alone, then GPT-2's byte-level split.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(
        [AddedToken(token, special=True, normalized=False) for token in special_tokens]
    )
    return tokenizer


def _compile_template(text: str) -> Any:
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.globals["raise_exception"] = raise_exception
    return environment.from_string(text)
