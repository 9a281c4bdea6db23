"""How provider calls ride out transient trouble (429, 5xx, resets, timeouts): one policy for every call.

    from langbatch_core.providers import Connection, Retrying
    Connection.compatible("https://api.groq.com/openai/v1", retrying=Retrying(deadline=600))
    provider.retrying = Retrying(deadline=3)           # e.g. the dashboard's auto-refresh

Each call is tried again with exponential backoff and jitter (or after the ``Retry-After`` the provider asks
for) until it succeeds, fails for good, or ``deadline`` seconds have passed since its first try; then
one ``ProviderUnavailableError`` says what kept failing and that nothing was lost.
``LANGBATCH_PROVIDER_RETRY_SECONDS`` sets the deadline of connections that set none (0: try once).
Provider-neutral: the provider says which failures are transient (``Transient``) and translates the rest.
"""

from __future__ import annotations

import email.utils
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from langbatch_core.errors import ConfigurationError, ProviderUnavailableError

RETRY_SECONDS_ENV = "LANGBATCH_PROVIDER_RETRY_SECONDS"
T = TypeVar("T")


@dataclass(frozen=True)
class Transient:
    """A failure worth trying again: ``reason`` (e.g. ``503 Service Unavailable on GET /v1/batches/b1``),
    ``retry_after`` (seconds the provider asked to wait, None if it did not say), ``status_code``, and
    ``maybe_done`` (the answer was lost, not refused: the provider may have acted on the request)."""

    reason: str
    retry_after: float | None = None
    status_code: int | None = None
    maybe_done: bool = False


@dataclass
class Resend:
    """A call that must not be done twice (a create, an upload): whether its lost answer can be looked up
    before it is sent again, and whether an answer was lost (then the caller looks first)."""

    can_look_up: bool
    answer_lost: bool = False


def once_only(
    classify: Callable[[Exception], Transient | None], resend: Resend | None
) -> Callable[[Exception], Transient | None]:
    """``classify``, for a call that ``resend`` guards: a failure that may have been acted on is tried again
    only when its answer can be looked up (and is then marked lost), never blindly."""
    if resend is None:
        return classify

    def transient(exc: Exception) -> Transient | None:
        failure = classify(exc)
        if failure is not None and failure.maybe_done:
            if not resend.can_look_up:
                return None  # cannot tell whether it was done: never risk doing it twice
            resend.answer_lost = True
        return failure

    return transient


@dataclass(frozen=True)
class Retrying:
    """A retry policy: ``deadline`` (seconds a call keeps trying, 0: once), ``base_delay`` (first wait,
    doubled each time up to ``max_delay``), ``jitter`` (each wait is scaled by a random factor in
    ``1 ± jitter``), ``attempt_timeout`` (seconds one try may wait for the network)."""

    deadline: float = 300.0
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.5
    attempt_timeout: float = 60.0

    def __post_init__(self) -> None:
        for name in ("deadline", "base_delay", "max_delay", "attempt_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"Retrying({name}=...) must be a number of seconds, 0 or more.")
        if not isinstance(self.jitter, int | float) or not 0 <= self.jitter <= 1:
            raise ConfigurationError("Retrying(jitter=...) must be a fraction between 0 and 1.")
        if self.attempt_timeout == 0:
            raise ConfigurationError("Retrying(attempt_timeout=...) must be above 0 seconds.")

    @classmethod
    def from_env(cls) -> Retrying:
        """The default policy, its deadline taken from ``$LANGBATCH_PROVIDER_RETRY_SECONDS`` when set."""
        value = os.environ.get(RETRY_SECONDS_ENV, "").strip()
        if not value:
            return cls()
        try:
            return cls(deadline=float(value))
        except (ValueError, ConfigurationError):
            raise ConfigurationError(
                f"{RETRY_SECONDS_ENV}={value!r} is not a number of seconds: set it to e.g. 300 (how long a "
                "provider call keeps retrying), or 0 to try once."
            ) from None

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based): what the provider asked (at least
        ``base_delay``: a ``Retry-After: 0`` does not make a busy loop), else backoff."""
        if retry_after is not None:
            return max(retry_after, self.base_delay) * random.uniform(1.0, 1.0 + self.jitter / 5)
        backoff = min(self.base_delay * 2.0 ** min(retry, 32), self.max_delay)
        return backoff * random.uniform(1.0 - self.jitter, 1.0 + self.jitter)

    def run(
        self,
        call: Callable[[], T],
        transient: Callable[[Exception], Transient | None],
        *,
        action: str,
        where: str,
        next_step: str,
    ) -> T:
        """``call()`` until it succeeds; an exception ``transient`` does not recognise is raised as it is.

        When ``deadline`` is spent: ProviderUnavailableError saying what kept failing (``action`` at
        ``where``) and what to do (``next_step``), chained to the last exception.
        """
        started = time.monotonic()
        retry = 0
        while True:
            try:
                return call()
            except Exception as exc:
                failure = transient(exc)
                if failure is None:
                    raise
                remaining = self.deadline - (time.monotonic() - started)
                if remaining <= 0:
                    raise self._gave_up(failure, action, where, next_step) from exc
            time.sleep(min(self.delay(retry, failure.retry_after), remaining))
            retry += 1

    def _gave_up(self, last: Transient, action: str, where: str, next_step: str) -> ProviderUnavailableError:
        how_long = f"kept failing for {_duration(self.deadline)}" if self.deadline else "failed"
        return ProviderUnavailableError(
            f"Could not {action}: {where} {how_long} (last: {last.reason}). Nothing was lost: the batch's "
            f"record and the results downloaded so far are saved; {next_step} (set {RETRY_SECONDS_ENV} to "
            "keep trying longer).",
            status_code=last.status_code,
        )


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date; None if neither."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
