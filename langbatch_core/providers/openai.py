"""The OpenAI batch API through the official ``openai`` client: OpenAI, Azure OpenAI, any compatible API
and the local engine.

    from langbatch_core.providers import Connection, OpenAIProvider
    provider = OpenAIProvider(Connection.compatible("http://127.0.0.1:8800/v1"))
    job = provider.submit(Path("input.jsonl"), "/v1/chat/completions", {"langbatch_batch_id": "lb_1"})

Keys are read from the environment variable the connection names, when the client is made; a ``client=``
object (``openai.OpenAI`` / ``openai.AzureOpenAI``) replaces all of that. Every SDK error is translated into
the LangBatchError tree by ``translate_error``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import openai

from langbatch_core import config, errors
from langbatch_core.providers.base import Job, Provider
from langbatch_core.providers.connection import Connection
from langbatch_core.providers.http_errors import status_meaning
from langbatch_core.providers.kinds import connection_kind
from langbatch_core.providers.retry import Resend, Transient, once_only, parse_retry_after

_PAGE = 100
_CLOCK_SLACK = 3600.0  # seconds of clock difference tolerated when looking for what a lost answer made
_AGAIN_WAIT = "run `langbatch wait <batch id>` (or batch.wait()) again later"
_AGAIN_START = (
    "run `langbatch start <batch id>` (or batch.start() / retry()) again later: it finishes the submission "
    "without creating a job twice"
)
_AGAIN_CANCEL = "run `langbatch cancel <batch id>` (or batch.cancel()) again later"
_AGAIN = "run the same command again later"
T = TypeVar("T")


class OpenAIProvider(Provider):
    """Jobs at an OpenAI-shaped Files + Batches API (kinds local, openai, azure, compatible).

    Every call rides out transient trouble under ``self.retrying`` (the SDK's own retries are off). A create
    or upload whose answer was lost (a timeout, a reset after sending, a 5xx other than 503) is looked up
    before it is sent again: the job by its metadata, the file by its name, so neither is made twice.
    """

    def __init__(self, connection: Connection, *, client: Any = None, data_dir: Path | None = None) -> None:
        super().__init__(connection, client=client, data_dir=data_dir)
        self._client = client.with_options(max_retries=0) if client is not None else None

    @property
    def client(self) -> openai.OpenAI:
        """The ``openai`` client (made on first use, so a missing key only matters when a call is made)."""
        if self._client is None:
            self._client = make_client(self.connection, self.data_dir).with_options(max_retries=0)
        return self._client

    def check(self) -> None:
        """Make the client now: a missing key or Azure endpoint raises before anything is recorded."""
        _ = self.client

    def submit(self, input_path: Path, endpoint: str, metadata: dict[str, str]) -> Job:
        return self.create(self.upload(input_path, metadata), endpoint, metadata)

    def upload(self, input_path: Path, metadata: dict[str, str]) -> str:
        """Upload under a name unique to the job (``<batch id>-<job>.jsonl``), so a lost answer is found."""
        batch_id, job_key = metadata.get("langbatch_batch_id"), metadata.get("langbatch_job")
        name = f"{batch_id}-{job_key}.jsonl" if batch_id and job_key else input_path.name
        resend = Resend(can_look_up=bool(batch_id and job_key))
        since = time.time() - _CLOCK_SLACK

        def send() -> str:
            if resend.answer_lost:
                found = self._uploaded(name, input_path.stat().st_size, since)
                if found:
                    return found
            with open(input_path, "rb") as handle:
                uploaded = self.client.files.create(
                    file=(name, handle), purpose="batch", timeout=self.retrying.attempt_timeout
                )
            return str(uploaded.id)

        return self._call("upload the request file", send, _AGAIN_START, api_call=True, resend=resend)

    def create(self, input_file_id: str, endpoint: str, metadata: dict[str, str]) -> Job:
        resend = Resend(can_look_up=bool(metadata))
        since = time.time() - _CLOCK_SLACK

        def send() -> Job:
            if resend.answer_lost:
                found = self._list_jobs(metadata, since)
                if found:
                    return found[0]
            batch = self.client.batches.create(
                input_file_id=input_file_id,
                endpoint=endpoint,  # type: ignore[arg-type]  # the SDK's Literal lists OpenAI's; others take more
                completion_window="24h",
                metadata=metadata,
                timeout=self.retrying.attempt_timeout,
            )
            return to_job(batch)

        return self._call("create the batch job", send, _AGAIN_START, resend=resend)

    def poll(self, job_id: str) -> Job:
        timeout = self.retrying.attempt_timeout
        return self._call(
            f"read job {job_id}",
            lambda: to_job(self.client.batches.retrieve(job_id, timeout=timeout)),
            _AGAIN_WAIT,
        )

    def cancel(self, job_id: str) -> Job:
        timeout = self.retrying.attempt_timeout
        return self._call(
            f"cancel job {job_id}",
            lambda: to_job(self.client.batches.cancel(job_id, timeout=timeout)),
            _AGAIN_CANCEL,
        )

    def download(self, job: Job, out_dir: Path) -> tuple[Path | None, Path | None]:
        out_dir.mkdir(parents=True, exist_ok=True)
        output = self._save(job.output_file_id, out_dir / "output.jsonl") if job.output_file_id else None
        error = self._save(job.error_file_id, out_dir / "errors.jsonl") if job.error_file_id else None
        return output, error

    def find(self, metadata: dict[str, str], created_after: float | None = None) -> list[Job]:
        return self._call(
            "list batch jobs", lambda: self._list_jobs(metadata, created_after), _AGAIN, api_call=True
        )

    def _list_jobs(self, metadata: dict[str, str], created_after: float | None) -> list[Job]:
        found = []
        for batch in self.client.batches.list(limit=_PAGE, timeout=self.retrying.attempt_timeout):
            if created_after is not None and batch.created_at < created_after:
                break  # newest first: older ones cannot be ours
            job = to_job(batch)
            if all(job.metadata.get(k) == v for k, v in metadata.items()):
                found.append(job)
        return found

    def _uploaded(self, name: str, size: int, since: float) -> str | None:
        """The id of a batch file called ``name`` of ``size`` bytes uploaded after ``since``, if any."""
        files = self.client.files.list(
            purpose="batch", order="desc", limit=_PAGE, timeout=self.retrying.attempt_timeout
        )
        for item in files:
            if item.created_at < since:
                break
            if item.filename == name and item.bytes == size:
                return str(item.id)
        return None

    def _save(self, file_id: str, path: Path) -> Path:
        def fetch() -> Path:  # from the start on every try: a reset mid-stream leaves no half file
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            try:
                with (
                    os.fdopen(fd, "wb") as out,
                    self.client.files.with_streaming_response.content(
                        file_id, timeout=self.retrying.attempt_timeout
                    ) as response,
                ):
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                os.replace(tmp, path)
            finally:
                Path(tmp).unlink(missing_ok=True)
            return path

        return self._call(f"download file {file_id}", fetch, _AGAIN_WAIT)

    def _call(
        self,
        action: str,
        send: Callable[[], T],
        next_step: str,
        *,
        api_call: bool = False,
        resend: Resend | None = None,
    ) -> T:
        """``send()`` under the retry policy; SDK errors translated. ``api_call``: a 404 means the API is not
        at the base URL (not a lost job); ``resend``: the call must not be done twice (see the class)."""

        transient = once_only(lambda exc: transient_failure(exc, self.connection), resend)
        base_url = str(self.client.base_url)
        where = _where(self.connection, base_url)
        try:
            return self.retrying.run(send, transient, action=action, where=where, next_step=next_step)
        except openai.OpenAIError as exc:
            raise translate_error(exc, self.connection, action, base_url=base_url, api_call=api_call) from exc
        except httpx2.HTTPError as exc:  # raised while reading a streamed body
            raise errors.ProviderUnavailableError(
                f"Could not {action}: {where} broke off the answer ({exc!r}). {_reach_hint(self.connection)}"
            ) from exc


def transient_failure(exc: BaseException, connection: Connection) -> Transient | None:
    """The ``Transient`` for an SDK or transport error worth trying again (429 but an exhausted quota, 408,
    5xx, resets, timeouts); None for the rest (and for a local engine that is not running at all)."""
    request = getattr(exc, "request", None)
    on = f" on {request.method} {request.url.path}" if isinstance(request, httpx2.Request) else ""
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return Transient(f"no answer in time{on}", maybe_done=True)
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        cause = exc if isinstance(exc, httpx2.TransportError) else exc.__cause__
        never_sent = isinstance(cause, httpx2.ConnectError)
        if never_sent and connection.kind == "local":
            return None  # nothing listens: the engine is not running, waiting will not start it
        reason = type(cause).__name__ if cause is not None else "connection error"
        return Transient(f"{_words(reason)}{on}", maybe_done=not never_sent)
    if not isinstance(exc, openai.APIStatusError):
        return None
    status, response = exc.status_code, exc.response
    if (status == 429 and exc.code != "insufficient_quota") or status == 408 or status >= 500:
        request = response.request
        return Transient(
            f"{status} {response.reason_phrase} on {request.method} {request.url.path}".replace("  ", " "),
            retry_after=_retry_after(response.headers),
            status_code=status,
            maybe_done=status >= 500 and status != 503,  # 503: refused; 500/502/504: it may have been done
        )
    return None


def _retry_after(headers: httpx2.Headers) -> float | None:
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        seconds = parse_retry_after(milliseconds)
        if seconds is not None:
            return seconds / 1000
    return parse_retry_after(headers.get("retry-after"))


def _words(name: str) -> str:
    """``RemoteProtocolError`` -> ``remote protocol error``."""
    return "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()


def to_job(batch: Any) -> Job:
    """A ``Job`` from an ``openai.types.Batch``."""
    counts = batch.request_counts.model_dump() if batch.request_counts is not None else {}
    data = batch.errors.data if batch.errors is not None and batch.errors.data else []
    return Job(
        id=batch.id,
        status=batch.status,
        metadata=dict(batch.metadata or {}),
        created_at=batch.created_at,
        input_file_id=batch.input_file_id,
        output_file_id=batch.output_file_id,
        error_file_id=batch.error_file_id,
        request_counts={k: int(v or 0) for k, v in counts.items()},
        errors=[e.model_dump(exclude_none=True) for e in data],
    )


def make_client(connection: Connection, data_dir: Path | None = None) -> openai.OpenAI:
    """The ``openai`` client a connection describes; MissingAPIKeyError names the variable to set."""
    if connection.kind == "azure":
        return _azure_client(connection)
    if connection.kind == "local":
        return openai.OpenAI(
            base_url=local_base_url(connection, data_dir), api_key=_key(connection) or "local"
        )
    if connection.kind == "openai":
        base_url = connection.base_url or os.environ.get("OPENAI_BASE_URL") or None
        return openai.OpenAI(base_url=base_url, api_key=_key(connection, required=True))
    return openai.OpenAI(base_url=connection.base_url, api_key=_key(connection) or "not-needed")


def _azure_client(connection: Connection) -> openai.OpenAI:
    """Azure OpenAI: its v1 API (``<endpoint>/openai/v1``, OpenAI's format as is) unless ``api_version``
    asks for a dated API through ``openai.AzureOpenAI``."""
    endpoint = connection.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
    if not endpoint:
        raise errors.ConfigurationError(
            "An Azure connection needs its endpoint: pass Connection.azure('https://<resource>.openai."
            "azure.com') or set AZURE_OPENAI_ENDPOINT."
        )
    key = _key(connection, required=True)
    if connection.api_version:
        return openai.AzureOpenAI(azure_endpoint=endpoint, api_key=key, api_version=connection.api_version)
    root = endpoint.rstrip("/")
    base_url = root if root.endswith("/openai/v1") else f"{root}/openai/v1"
    return openai.OpenAI(base_url=base_url, api_key=key)


def local_base_url(connection: Connection, data_dir: Path | None = None) -> str:
    """The local engine's URL: the connection's, else ``$LANGBATCH_ENGINE_URL``, else the engine serving
    ``data_dir`` (started if needed)."""
    if connection.base_url or os.environ.get(config.ENGINE_URL_ENV):
        return connection.base_url or os.environ[config.ENGINE_URL_ENV]
    from langbatch_core.local import ensure_local_engine

    try:
        return ensure_local_engine(data_dir)
    except errors.LangBatchError:
        raise
    except Exception as exc:  # the engine's own start-up problems, translated here
        raise errors.ProviderUnavailableError(
            f"Could not start the local engine ({exc}). Start it yourself with `langbatch serve` and retry."
        ) from exc


def _key(connection: Connection, *, required: bool = False) -> str | None:
    variable = connection.api_key_env
    value = os.environ.get(variable) if variable else None
    if not value and (required or (variable and connection.kind == "compatible")):
        named = connection.kind in ("azure", "openai")  # else the URL says which API it is
        provider = connection_kind(connection.kind).label if named else connection.describe()
        raise errors.MissingAPIKeyError(variable or "OPENAI_API_KEY", provider=provider)
    return value


def translate_error(
    exc: openai.OpenAIError,
    connection: Connection,
    action: str,
    *,
    base_url: str | None = None,
    api_call: bool = False,
) -> errors.LangBatchError:
    """The LangBatchError for an ``openai`` SDK error (raised while trying to ``action``).

    ``base_url``: the URL the client used (named when the connection does not say it, e.g. from
    OPENAI_BASE_URL); ``api_call``: the call names no job or file, so a 404 means a wrong base URL.
    """
    where = _where(connection, base_url)
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return errors.ProviderUnavailableError(
            f"Could not {action}: {where} cannot be reached ({exc}). {_reach_hint(connection)}"
        )
    status = getattr(exc, "status_code", None)
    if not isinstance(exc, openai.APIStatusError) or not isinstance(status, int):
        return errors.ProviderError(f"Could not {action} at {where}: {exc!r}")
    message = _api_message(exc)
    if isinstance(exc, openai.NotFoundError) and api_call:
        return errors.ConfigurationError(
            f"Could not {action}: {where} has no OpenAI batch API there ({message}). Check the base URL: it "
            "must be the API root serving /files and /batches (usually ending in /v1)."
        )
    kind, meaning = status_meaning(status, connection.api_key_env)
    return kind(
        f"Could not {action}: {where} {meaning.format(message=message)}",
        status_code=status,
        code=getattr(exc, "code", None),
    )


def _reach_hint(connection: Connection) -> str:
    if connection.kind == "local":
        return (
            "Start it with `langbatch serve`, or leave the local connection without a base URL (and "
            "LANGBATCH_ENGINE_URL unset) so that LangBatch starts one."
        )
    return "Check the base URL and your network, then try again."


def _where(connection: Connection, base_url: str | None) -> str:
    where = connection.describe()
    if base_url and not connection.base_url and connection.kind != "local":
        where = f"{where} at {base_url.rstrip('/')}"
    return where


def _api_message(exc: openai.APIStatusError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(exc, "message", exc))
