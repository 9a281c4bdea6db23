"""The executor: sends one request to the backend within the rate limits, retrying transient failures.

    executor = Executor(backend, ExecutorSettings(concurrency=64, rpm=3000))
    outcome = await executor.call("/v1/chat/completions", body)   # a BackendResponse or an Outcome error

Retries: a 429, a 5xx, a timeout or a broken connection is retried with exponential backoff and jitter
(``retry_base_delay * 2**attempt``, times 0.5-1.5, capped at ``retry_max_delay``); a ``Retry-After`` given by
the backend is honoured instead, and a 429 pauses every sender for that long (not only the one that got it).
Rate limits count sends in a sliding window (see ``RateLimiter``), so an upstream enforcing the same limit
never sees more than it allows.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from dataclasses import dataclass
from typing import Any

from langbatch_core.errors import ConfigurationError
from langbatch_core.local.backends import Backend, BackendResponse

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass
class ExecutorSettings:
    """How the engine sends requests: ``ExecutorSettings(concurrency=32, rpm=600, request_timeout=60)``."""

    concurrency: int = 64
    rpm: float | None = None
    tpm: float | None = None
    request_timeout: float = 600.0
    max_retries: int = 5
    retry_base_delay: float = 0.5
    retry_max_delay: float = 60.0

    def __post_init__(self) -> None:
        require_positive(concurrency=self.concurrency, rpm=self.rpm, tpm=self.tpm)
        require_positive(request_timeout=self.request_timeout, retry_max_delay=self.retry_max_delay)
        if self.max_retries < 0 or self.retry_base_delay < 0:
            raise ConfigurationError("max_retries and retry_base_delay must be zero or more.")


def require_positive(**settings: float | None) -> None:
    """ConfigurationError naming the first setting that is given (not None) but not above zero."""
    for name, value in settings.items():
        if value is not None and not value > 0:
            flag = "--" + name.replace("_", "-")
            raise ConfigurationError(f"{name} ({flag}) must be above zero, not {value!r}.")


@dataclass
class CallError:
    """A request that got no HTTP answer after every retry (a timeout, an unreachable backend)."""

    code: str
    message: str


class RateLimiter:
    """Requests and tokens per minute: ``await limiter.acquire(tokens)`` before each send.

    Requests: never more than ``rpm/60`` sends in any sliding 1.03 seconds (for rpm under 60, one per
    ``60/rpm`` seconds), counted at the moment of sending, so a provider enforcing the same limit over any
    window of a second or longer sees no excess, even with some jitter on the way. Within that, sends follow
    an even schedule (one every ``60/rpm`` seconds; a late sender may catch up one interval). Tokens: each
    send waits until the previous sends' tokens are paid for at ``tpm/60`` tokens a second.
    """

    def __init__(self, rpm: float | None = None, tpm: float | None = None) -> None:
        self.request_interval = 60.0 / rpm if rpm else 0.0
        self.token_interval = 60.0 / tpm if tpm else 0.0
        self.window = max(1.0, self.request_interval)  # seconds
        self.per_window = max(1, int(rpm * self.window / 60.0)) if rpm else 0
        self._sent: collections.deque[float] = collections.deque()
        self._next_slot = 0.0
        self._next_tokens = 0.0
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    @property
    def active(self) -> bool:
        """True when a send may have to wait (a rate is set, or a pause is on)."""
        return bool(self.request_interval or self.token_interval) or self._paused_until > time.monotonic()

    def pause(self, seconds: float) -> None:
        """Hold every sender for ``seconds`` (the backend said it is overloaded)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    async def acquire(self, tokens: int = 0) -> None:
        async with self._lock:  # one sender at a time waits for its turn; the others queue behind it
            while (delay := self._delay(time.monotonic(), tokens)) > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            if self.per_window:
                self._sent.append(now)
                base = self._next_slot or now
                self._next_slot = max(base + self.request_interval, now)
            if self.token_interval and tokens:
                self._next_tokens = max(self._next_tokens, now) + tokens * self.token_interval

    def _delay(self, now: float, tokens: int) -> float:
        start = max(now, self._paused_until)
        sent = self._sent
        if self.per_window:
            while sent and sent[0] <= now - self.window:
                sent.popleft()
            if len(sent) >= self.per_window:
                start = max(start, sent[0] + self.window * 1.03)  # 3 %: room for jitter on the way
            start = max(start, self._next_slot)
        if self.token_interval and tokens:
            start = max(start, self._next_tokens)
        return start - now


class Executor:
    """Sends requests to one backend with bounded concurrency, rate limits and retries."""

    def __init__(self, backend: Backend, settings: ExecutorSettings | None = None) -> None:
        self.backend = backend
        self.settings = settings or ExecutorSettings()
        self.limiter = RateLimiter(self.settings.rpm, self.settings.tpm)
        self.slots = asyncio.Semaphore(self.settings.concurrency)
        self.sent = 0
        self.retried = 0

    async def call(self, endpoint: str, body: dict[str, Any], tokens: int = 0) -> BackendResponse | CallError:
        """Send one request until it gets a final answer or the retries run out."""
        settings = self.settings
        attempt = 0
        while True:
            answer = await self._attempt(endpoint, body, tokens)
            if isinstance(answer, BackendResponse) and answer.status_code not in RETRYABLE_STATUS:
                return answer
            if attempt >= settings.max_retries:
                return answer
            delay = self._delay(answer, attempt)
            if isinstance(answer, BackendResponse) and answer.status_code == 429:
                self.limiter.pause(delay)
            attempt += 1
            self.retried += 1
            await asyncio.sleep(delay)

    async def _attempt(self, endpoint: str, body: dict[str, Any], tokens: int) -> BackendResponse | CallError:
        async with self.slots:
            if self.limiter.active:
                await self.limiter.acquire(tokens)
            self.sent += 1
            try:
                async with asyncio.timeout(self.settings.request_timeout):
                    return await self.backend.send(endpoint, body)
            except TimeoutError:
                limit = self.settings.request_timeout
                return CallError("request_timeout", f"The backend did not answer within {limit:g} seconds.")
            except (OSError, asyncio.IncompleteReadError) as exc:
                return CallError("backend_unavailable", f"The backend could not be reached: {exc!r}")
            except Exception as exc:  # a broken backend fails its request, never the whole batch
                return CallError("backend_error", f"The backend failed on this request: {exc!r}")

    def _delay(self, answer: BackendResponse | CallError, attempt: int) -> float:
        settings = self.settings
        if isinstance(answer, BackendResponse) and answer.retry_after is not None:
            return min(answer.retry_after, settings.retry_max_delay) * random.uniform(1.0, 1.1)
        backoff = settings.retry_base_delay * (2**attempt) * random.uniform(0.5, 1.5)
        return min(backoff, settings.retry_max_delay)


def estimate_tokens(body: dict[str, Any]) -> int:
    """A cheap token estimate for TPM pacing: ~4 characters a token, plus the output budget asked for."""
    size = 0
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        size += len(content) if isinstance(content, str) else len(str(content or ""))
    for key in ("input", "prompt"):
        value = body.get(key)
        if value is not None:
            size += len(value) if isinstance(value, str) else len(str(value))
    budget = body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens") or 0
    return size // 4 + 1 + (budget if isinstance(budget, int) else 0)
