"""The Llama forward pass in numpy, with a key/value cache of several sequences ("slots").

    model = LlamaModel(load_weights())
    cache = KVCache(model.config)
    slot = cache.add_slot()
    logits = model.prefill(prompt_ids, cache, slot)            # (vocab,) for the next token
    logits = model.decode([next_id], cache, [slot])             # (1, vocab): one step for each slot

``decode`` advances many sequences at once: every weight matrix is read once per step for all of them, which
is where batching gains its throughput (a single sequence is bound by memory bandwidth).
Architecture: token embedding → N × (RMSNorm → grouped-query attention with RoPE → residual → RMSNorm →
SwiGLU MLP → residual) → RMSNorm → output projection (tied to the embedding when the file has none).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from langbatch_core.local.model.gguf_weights import LlamaConfig, ModelWeights

PREFILL_CHUNK = 512  # prompt tokens per prefill step: bounds the (heads, chunk, context) score matrix


class KVCache:
    """Keys and values of every layer for a number of sequences (slots), grown on demand.

    Arrays are (layers, slots, kv_heads, capacity, head_dim); ``lengths[slot]`` tokens are filled.
    """

    def __init__(self, config: LlamaConfig, slots: int = 1, capacity: int = 256) -> None:
        self.config = config
        self.keys = self._empty(slots, capacity)
        self.values = self._empty(slots, capacity)
        self.lengths = np.zeros(slots, dtype=np.int64)
        self.in_use = np.zeros(slots, dtype=bool)

    def _empty(self, slots: int, capacity: int) -> np.ndarray:
        c = self.config
        return np.zeros((c.n_layers, slots, c.n_kv_heads, capacity, c.head_dim), dtype=np.float32)

    @property
    def capacity(self) -> int:
        return self.keys.shape[3]

    @property
    def bytes_per_token(self) -> int:
        """Cache bytes one token of one slot takes (keys and values of every layer)."""
        c = self.config
        return 2 * c.n_layers * c.n_kv_heads * c.head_dim * self.keys.itemsize

    def add_slot(self) -> int:
        """A free slot (reset to length 0), adding one when all are taken."""
        free = np.flatnonzero(~self.in_use)
        if free.size:
            slot = int(free[0])
        else:
            slot = self.keys.shape[1]
            slots = 2 * slot  # doubling keeps reallocations rare as a batch fills up
            self._resize(slots, self.capacity)
            self.in_use = np.concatenate([self.in_use, np.zeros(slots - slot, dtype=bool)])
            self.lengths = np.concatenate([self.lengths, np.zeros(slots - slot, dtype=np.int64)])
        self.in_use[slot] = True
        self.lengths[slot] = 0
        return slot

    def free_slot(self, slot: int) -> None:
        self.in_use[slot] = False
        self.lengths[slot] = 0

    def copy_slot(self, source: int, target: int) -> None:
        """Make ``target`` continue from the same context as ``source`` (for ``n`` > 1 choices)."""
        length = int(self.lengths[source])
        self.keys[:, target, :, :length] = self.keys[:, source, :, :length]
        self.values[:, target, :, :length] = self.values[:, source, :, :length]
        self.lengths[target] = length

    def move_slot(self, source: int, target: int) -> None:
        """Move the sequence in ``source`` to the free ``target``, freeing ``source``."""
        self.copy_slot(source, target)
        self.in_use[target] = True
        self.free_slot(source)

    def reserve(self, length: int) -> None:
        """Make room for ``length`` positions in every slot."""
        if length > self.capacity:
            self._resize(self.keys.shape[1], self.capacity_for(length))

    def capacity_for(self, length: int) -> int:
        """The capacity ``reserve(length)`` leads to: doubling, to keep reallocations rare."""
        capacity = self.capacity
        while capacity < length:
            capacity *= 2
        return min(capacity, max(length, self.config.context_length))

    def _resize(self, slots: int, capacity: int) -> None:
        old_slots, old_capacity = self.keys.shape[1], self.capacity
        keys, values = self._empty(slots, capacity), self._empty(slots, capacity)
        keys[:, :old_slots, :, :old_capacity] = self.keys
        values[:, :old_slots, :, :old_capacity] = self.values
        self.keys, self.values = keys, values


class LlamaModel:
    """Stateless forward pass over ``ModelWeights``; all sequence state lives in a ``KVCache``."""

    def __init__(self, weights: ModelWeights) -> None:
        self.weights = weights
        self.config = c = weights.config
        self.scale = np.float32(1.0 / np.sqrt(c.head_dim))
        inverse_freq = c.rope_theta ** (-np.arange(0, c.head_dim, 2, dtype=np.float64) / c.head_dim)
        angles = np.outer(np.arange(c.context_length, dtype=np.float64), inverse_freq)
        self.rope_cos = np.cos(angles).astype(np.float32)  # (context, head_dim / 2)
        self.rope_sin = np.sin(angles).astype(np.float32)

    def prefill(self, token_ids: Sequence[int], cache: KVCache, slot: int) -> np.ndarray:
        """Feed ``token_ids`` after what ``slot`` holds; the logits (vocab,) for the token that follows."""
        ids = np.asarray(token_ids, dtype=np.int64)
        if not len(ids):
            raise ValueError("prefill needs at least one token")
        start = int(cache.lengths[slot])
        cache.reserve(start + len(ids))
        hidden = ids[:0]  # replaced by the last chunk's hidden states
        for offset in range(0, len(ids), PREFILL_CHUNK):
            chunk = ids[offset : offset + PREFILL_CHUNK]
            positions = np.arange(start + offset, start + offset + len(chunk))
            attend = self._prefill_attention(cache, slot, positions)
            hidden = self._layers(self.weights.token_embedding[chunk], positions, attend)
        cache.lengths[slot] = start + len(ids)
        return self._logits(hidden[-1:])[0]

    def decode(self, token_ids: Sequence[int], cache: KVCache, slots: Sequence[int]) -> np.ndarray:
        """One step for several sequences: token ``token_ids[i]`` appended to ``slots[i]``; (n, vocab)."""
        slot_index = np.asarray(slots, dtype=np.int64)
        positions = cache.lengths[slot_index].copy()
        cache.reserve(int(positions.max()) + 1)
        attend = self._decode_attention(cache, slot_index, positions)
        hidden = self._layers(self.weights.token_embedding[np.asarray(token_ids)], positions, attend)
        cache.lengths[slot_index] = positions + 1
        return self._logits(hidden)

    def _layers(self, x: np.ndarray, positions: np.ndarray, attend: Callable) -> np.ndarray:
        c = self.config
        q_size, kv_size = c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim
        cos, sin = self.rope_cos[positions][:, None, :], self.rope_sin[positions][:, None, :]
        for index, layer in enumerate(self.weights.layers):
            qkv = linear(rms_norm(x, layer.attn_norm, c.norm_eps), layer.wqkv)
            q = rotate(qkv[:, :q_size].reshape(-1, c.n_heads, c.head_dim), cos, sin)
            k = rotate(qkv[:, q_size : q_size + kv_size].reshape(-1, c.n_kv_heads, c.head_dim), cos, sin)
            v = qkv[:, q_size + kv_size :].reshape(-1, c.n_kv_heads, c.head_dim)
            x = x + linear(attend(index, q, k, v), layer.wo)
            gate_up = linear(rms_norm(x, layer.ffn_norm, c.norm_eps), layer.w_gate_up)
            gate, up = gate_up[:, : c.ffn_dim], gate_up[:, c.ffn_dim :]
            x = x + linear(silu(gate) * up, layer.w_down)
        return x

    def _logits(self, hidden: np.ndarray) -> np.ndarray:
        normed = rms_norm(hidden, self.weights.output_norm, self.config.norm_eps)
        return linear(normed, self.weights.output)

    def _prefill_attention(self, cache: KVCache, slot: int, positions: np.ndarray) -> Callable:
        """Causal attention of a run of one sequence's tokens over its cache and themselves."""
        c = self.config
        group = c.n_heads // c.n_kv_heads
        end = int(positions[-1]) + 1
        # query i (at positions[i]) may see cache positions 0..positions[i]
        mask = np.where(np.arange(end)[None, :] <= positions[:, None], 0.0, -np.inf).astype(np.float32)

        def attend(layer: int, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
            cache.keys[layer, slot, :, positions[0] : end] = k.transpose(1, 0, 2)
            cache.values[layer, slot, :, positions[0] : end] = v.transpose(1, 0, 2)
            keys, values = cache.keys[layer, slot, :, :end], cache.values[layer, slot, :, :end]
            # (kv_heads, group, n, head_dim): query head h reads kv head h // group
            queries = q.transpose(1, 0, 2).reshape(c.n_kv_heads, group, len(positions), c.head_dim)
            scores = queries @ keys[:, None].swapaxes(-1, -2) * self.scale + mask
            out = softmax(scores) @ values[:, None]
            return (
                out.reshape(c.n_heads, len(positions), c.head_dim)
                .transpose(1, 0, 2)
                .reshape(len(positions), -1)
            )

        return attend

    def _decode_attention(self, cache: KVCache, slots: np.ndarray, positions: np.ndarray) -> Callable:
        """Attention of one new token per sequence over that sequence's cache (padded to the longest)."""
        c = self.config
        group = c.n_heads // c.n_kv_heads
        end = int(positions.max()) + 1
        mask = np.where(np.arange(end)[None, :] <= positions[:, None], 0.0, -np.inf).astype(np.float32)
        mask = mask[:, None, None, :]  # (n, 1, 1, end)
        contiguous = bool(np.all(np.diff(slots) == 1))

        def attend(layer: int, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
            cache.keys[layer, slots, :, positions] = k
            cache.values[layer, slots, :, positions] = v
            if contiguous:  # a view, no copy
                keys = cache.keys[layer, slots[0] : slots[-1] + 1, :, :end]
                values = cache.values[layer, slots[0] : slots[-1] + 1, :, :end]
            else:
                keys, values = cache.keys[layer, slots, :, :end], cache.values[layer, slots, :, :end]
            queries = q.reshape(len(slots), c.n_kv_heads, group, c.head_dim)
            scores = queries @ keys.swapaxes(-1, -2) * self.scale + mask  # (n, kv_heads, group, end)
            return (softmax(scores) @ values).reshape(len(slots), -1)

        return attend


def linear(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``x @ weight.T`` for (n, in) x and (out, in) weight, computed as ``(weight @ x.T).T``.

    Same numbers; with OpenBLAS this operand order runs 20-40% faster for the few-row ``x`` of a decode step.
    """
    return (weight @ x.T).T


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    variance = np.mean(np.square(x), axis=-1, keepdims=True)
    return x * (1.0 / np.sqrt(variance + eps)).astype(np.float32) * weight


def rotate(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """RoPE on half-split pairs (x[i], x[i + head_dim/2]); x is (n, heads, head_dim), cos/sin (n, 1, half)."""
    half = x.shape[-1] // 2
    first, second = x[..., :half], x[..., half:]
    return np.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)


def silu(x: np.ndarray) -> np.ndarray:
    # sigmoid written with tanh: no overflow warning for large negative inputs, unlike 1 / (1 + exp(-x))
    return x * (0.5 + 0.5 * np.tanh(0.5 * x))


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
