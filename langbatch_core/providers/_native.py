"""What providers with their own batch format share: calls under the retry policy with their HTTP errors
translated, request files read and written line by line.

    class MistralProvider(NativeProvider):
        def _http_failure(self, exc): ...        # (status, headers, message) of an SDK error, None otherwise
    self._call("create the batch job", send, AGAIN_START, resend=Resend(can_look_up=True))

A call whose answer was lost (a timeout, a reset after sending, a 500/502/504) and that must not be done twice
(an upload, a create) is looked up before it is sent again (``Resend``), as the OpenAI provider does.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx2
import orjson

from langbatch_core import errors
from langbatch_core.providers.base import Provider
from langbatch_core.providers.http_errors import status_meaning
from langbatch_core.providers.kinds import connection_kind
from langbatch_core.providers.retry import Resend, Transient, once_only, parse_retry_after

AGAIN_WAIT = "run `langbatch wait <batch id>` (or batch.wait()) again later"
AGAIN_START = (
    "run `langbatch start <batch id>` (or batch.start() / retry()) again later: it finishes the submission "
    "without creating a job twice"
)
AGAIN_CANCEL = "run `langbatch cancel <batch id>` (or batch.cancel()) again later"
AGAIN = "run the same command again later"
CLOCK_SLACK = 3600.0  # seconds of clock difference tolerated when looking for what a lost answer made
T = TypeVar("T")
HttpFailure = tuple[int, Any, str]  # (status code, headers, the API's message)


class NativeProvider(Provider):
    """A provider whose SDK raises its own errors: ``_http_failure`` reads an HTTP error of the SDK, and
    ``_call`` runs a call under ``self.retrying`` and translates what is left into LangBatchError."""

    #: The SDK's base error classes (anything else propagates untouched).
    sdk_errors: tuple[type[BaseException], ...] = ()
    #: The API root a connection reaches by default (named when a base URL serves no such API).
    api_root: str = ""

    def _http_failure(self, exc: BaseException) -> HttpFailure | None:
        """``(status, headers, message)`` when ``exc`` is an HTTP error answer of the SDK."""
        raise NotImplementedError

    def _where(self) -> str:
        return self.connection.describe()

    def _key(self) -> str:
        """The API key from the connection's variable; MissingAPIKeyError names it."""
        variable = self.connection.api_key_env
        value = os.environ.get(variable) if variable else None
        if not value:
            label = connection_kind(self.connection.kind).label
            raise errors.MissingAPIKeyError(variable or "its API key variable", provider=label)
        return value

    def _call(
        self,
        action: str,
        send: Callable[[], T],
        next_step: str,
        *,
        api_call: bool = False,
        resend: Resend | None = None,
    ) -> T:
        """``send()`` under the retry policy; ``api_call``: a 404 means the API is not at the base URL."""

        transient = once_only(self._transient, resend)
        where = self._where()
        try:
            return self.retrying.run(send, transient, action=action, where=where, next_step=next_step)
        except httpx2.TransportError as exc:
            raise errors.ProviderUnavailableError(
                f"Could not {action}: {where} cannot be reached ({exc!r}). Check the base URL and your "
                "network, then try again."
            ) from exc
        except self.sdk_errors as exc:
            raise self._translate(exc, action, api_call=api_call) from exc

    def _transient(self, exc: BaseException) -> Transient | None:
        if isinstance(exc, httpx2.TimeoutException):
            return Transient(f"no answer in time ({type(exc).__name__})", maybe_done=True)
        if isinstance(exc, httpx2.TransportError):
            never_sent = isinstance(exc, httpx2.ConnectError)
            return Transient(f"{type(exc).__name__}: {exc}", maybe_done=not never_sent)
        failure = self._http_failure(exc)
        if failure is None:
            return None
        status, headers, message = failure
        if status in (408, 429) or status >= 500:
            retry_after = parse_retry_after(headers.get("retry-after")) if headers is not None else None
            return Transient(
                f"{status} ({message[:200]})",
                retry_after=retry_after,
                status_code=status,
                maybe_done=status >= 500 and status != 503,
            )
        return None

    def _translate(self, exc: BaseException, action: str, *, api_call: bool) -> errors.LangBatchError:
        where = self._where()
        failure = self._http_failure(exc)
        if failure is None:
            return errors.ProviderError(f"Could not {action} at {where}: {exc}")
        status, _, message = failure
        if status == 404 and api_call:
            return errors.ConfigurationError(
                f"Could not {action}: {where} has no batch API there ({message}). Check the base URL: it "
                f"must be the API root, like {self.api_root}."
            )
        kind, meaning = status_meaning(status, self.connection.api_key_env)
        return kind(f"Could not {action}: {where} {meaning.format(message=message)}", status_code=status)


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSONL file, blank lines skipped."""
    with open(path, "rb") as handle:
        for raw in handle:
            if raw.strip():
                yield orjson.loads(raw)


@contextmanager
def atomic_writer(path: Path) -> Iterator[IO[bytes]]:
    """A binary handle whose content replaces ``path`` only when the block ends without an error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_jsonl(path: Path, lines: Iterator[dict[str, Any]]) -> int:
    """Writes ``lines`` as JSONL atomically; returns how many."""
    count = 0
    with atomic_writer(path) as out:
        for line in lines:
            out.write(orjson.dumps(line) + b"\n")
            count += 1
    return count


def write_chunks(path: Path, chunks: Iterator[bytes]) -> Path:
    """Writes a downloaded body atomically (a reset mid-stream leaves no half file)."""
    with atomic_writer(path) as out:
        for chunk in chunks:
            out.write(chunk)
    return path


def text_of(content: Any) -> str | None:
    """A message's text: a string as is, the text parts of a list joined."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "".join(parts)
    return str(content)
