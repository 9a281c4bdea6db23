"""Anthropic's Message Batches API through the official ``anthropic`` SDK, from OpenAI-format request files.

    from langbatch_core.providers import Connection, provider_for
    provider = provider_for(Connection.anthropic())            # ANTHROPIC_API_KEY (+ ANTHROPIC_BASE_URL)
    job = provider.submit(Path("input.jsonl"), "/v1/chat/completions", {"langbatch_batch_id": "lb_1", ...})

Each request line becomes a ``{custom_id, params}`` request (``claude_requests.to_claude``); results come back
as OpenAI result lines (``claude_results``). Message batches carry no metadata, so crash safety comes from a
local ledger of submissions (``submissions.py``) and the matching rule of ``find``: see docs/providers.md.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import httpx2
import orjson

from langbatch_core import config, errors
from langbatch_core.providers.base import Job, Provider
from langbatch_core.providers.claude_requests import claude_refusal, to_claude, translated
from langbatch_core.providers.claude_results import ERROR_STATUS, chat_completion
from langbatch_core.providers.connection import Connection
from langbatch_core.providers.http_errors import status_meaning
from langbatch_core.providers.result_lines import api_error_line, not_run_line, success_line
from langbatch_core.providers.retry import Transient, parse_retry_after
from langbatch_core.providers.submissions import Intent, SubmissionLedger, ids_digest
from langbatch_core.requests import Capabilities, Limits

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}\Z")
MAX_REQUESTS = 100_000
MAX_BYTES = 250_000_000  # Anthropic's 256 MB, less room for the translation's own bytes
MATCH_SLACK = 600.0  # seconds of clock difference tolerated when matching an unrecorded submission
_PAGE = 100
_AGAIN_WAIT = "run `langbatch wait <batch id>` (or batch.wait()) again later"
_AGAIN_START = "run `langbatch start <batch id>` (or batch.start() / retry()) again later"
_AGAIN = "run the same command again later"
T = TypeVar("T")


def custom_id_problem(custom_id: str) -> str | None:
    if CUSTOM_ID.match(custom_id):
        return None
    return (
        f"Anthropic takes custom_ids of 1 to 64 letters, digits, _ or - (^[a-zA-Z0-9_-]{{1,64}}$), got "
        f"{custom_id[:70]!r}: rename it."
    )


CLAUDE = Capabilities("Anthropic", claude_refusal, custom_id=custom_id_problem)


class AnthropicProvider(Provider):
    """Jobs at Anthropic's Message Batches API (kind ``anthropic``). Calls ride out 429 (``retry-after``),
    5xx, 529 and resets under ``self.retrying``; a create whose answer was lost is looked up first."""

    def __init__(self, connection: Connection, *, client: Any = None, data_dir: Path | None = None) -> None:
        super().__init__(connection, client=client, data_dir=data_dir)
        self._client = client.with_options(max_retries=0) if client is not None else None
        self.ledger = SubmissionLedger((data_dir or config.data_dir()) / "providers" / "anthropic")

    @property
    def client(self) -> anthropic.Anthropic:
        if self._client is None:
            variable = self.connection.api_key_env or "ANTHROPIC_API_KEY"
            key = os.environ.get(variable)
            if not key:
                raise errors.MissingAPIKeyError(variable, provider="Anthropic")
            base_url = self.connection.base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
            self._client = anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=0)
        return self._client

    @property
    def limits(self) -> Limits:
        return self.connection.limits or Limits(max_requests=MAX_REQUESTS, max_bytes=MAX_BYTES)

    @property
    def capabilities(self) -> Capabilities:
        return CLAUDE

    def check(self) -> None:
        _ = self.client

    def submit(self, input_path: Path, endpoint: str, metadata: dict[str, str]) -> Job:
        requests = [{"custom_id": i, "params": p} for i, p in translated(input_path, to_claude)]
        intent = self._intend(requests, metadata)
        lost = [False]

        def send() -> Job:
            if lost[0] and intent is not None:
                found = self._match([intent])
                if found:
                    return found[0]
            created = self.client.messages.batches.create(
                requests=requests,  # type: ignore[arg-type]
                timeout=self.retrying.attempt_timeout,
            )
            if intent is not None:
                self.ledger.adopt(intent.batch_id, intent.job, created.id)
            return to_job(created, metadata)

        def on_lost() -> bool:
            lost[0] = True
            return intent is not None

        try:
            return self._call("create the message batch", send, _AGAIN_START, on_lost=on_lost)
        except errors.ProviderError as exc:
            if intent is not None and not lost[0] and _refused(exc.status_code):
                self.ledger.forget(intent.batch_id, intent.job)  # never created: nothing to match later
            raise

    def _intend(self, requests: list[dict[str, Any]], metadata: dict[str, str]) -> Intent | None:
        batch_id, job = metadata.get("langbatch_batch_id"), metadata.get("langbatch_job")
        if not batch_id or not job:
            return None
        intent = Intent(
            batch_id, job, len(requests), ids_digest(r["custom_id"] for r in requests), time.time()
        )
        self.ledger.intend(intent)
        return intent

    def poll(self, job_id: str) -> Job:
        timeout = self.retrying.attempt_timeout
        return self._call(
            f"read message batch {job_id}",
            lambda: to_job(self.client.messages.batches.retrieve(job_id, timeout=timeout)),
            _AGAIN_WAIT,
        )

    def cancel(self, job_id: str) -> Job:
        timeout = self.retrying.attempt_timeout
        return self._call(
            f"cancel message batch {job_id}",
            lambda: to_job(self.client.messages.batches.cancel(job_id, timeout=timeout)),
            "run `langbatch cancel <batch id>` (or batch.cancel()) again later",
        )

    def download(self, job: Job, out_dir: Path) -> tuple[Path | None, Path | None]:
        """The results, translated: successes to ``output.jsonl``, the rest to ``errors.jsonl``."""
        if job.status not in ("completed", "expired", "cancelled"):
            return None, None
        out_dir.mkdir(parents=True, exist_ok=True)
        output, failures = out_dir / "output.jsonl", out_dir / "errors.jsonl"
        created = int(job.created_at) if job.created_at else None

        def fetch() -> tuple[Path | None, Path | None]:
            wrote = _write_split(self._result_lines(job.id), output, failures, job.id, created)
            return (output if wrote[0] else None), (failures if wrote[1] else None)

        return self._call(f"download the results of message batch {job.id}", fetch, _AGAIN_WAIT)

    def _result_lines(self, job_id: str) -> Iterator[bytes]:
        results = self.client.messages.batches.with_streaming_response.results
        with results(job_id, timeout=self.retrying.attempt_timeout) as response:
            for line in response.iter_lines():
                if line.strip():
                    yield line.encode() if isinstance(line, str) else line

    def find(self, metadata: dict[str, str], created_after: float | None = None) -> list[Job]:
        """Our message batches: those the ledger recorded, and for a submission whose id was never
        recorded (a crash mid-create) the one batch that matches it (see ``_match``)."""
        batch_id = metadata.get("langbatch_batch_id")
        if not batch_id:
            return []  # message batches have no metadata: only the ledger knows what is ours
        intents = self.ledger.load(batch_id)
        found = []
        for intent in intents.values():
            if intent.provider_id:
                job = self.poll(intent.provider_id)
                job.metadata = _metadata(intent)
                found.append(job)
        unrecorded = [i for i in intents.values() if not i.provider_id]
        if unrecorded:
            found += self._call("list message batches", lambda: self._match(unrecorded), _AGAIN)
        return found

    def _match(self, intents: list[Intent]) -> list[Job]:
        """For each submission without an id: the message batch created since it was written (less
        MATCH_SLACK) with its request count that no ledger entry holds; when it has ended, its results'
        custom_ids must be the submission's. Two candidates left: refuse to guess (ProviderError)."""
        since = min(i.at for i in intents) - MATCH_SLACK
        claimed = self.ledger.claimed()
        listed = []
        for batch in self.client.messages.batches.list(limit=_PAGE, timeout=self.retrying.attempt_timeout):
            if batch.created_at.timestamp() < since:
                break  # newest first
            if batch.id not in claimed:
                listed.append(batch)
        adopted = []
        for intent in intents:
            candidates = [
                b for b in listed
                if _total(b) == intent.count and b.created_at.timestamp() >= intent.at - MATCH_SLACK
            ]  # fmt: skip
            candidates = [b for b in candidates if self._same_requests(b, intent)]
            if len(candidates) > 1:
                raise errors.ProviderError(
                    f"Job {intent.job} of batch {intent.batch_id} may have been created at Anthropic before "
                    f"a crash, and {len(candidates)} message batches match it ("
                    + ", ".join(b.id for b in candidates)
                    + "). Cancel the ones that are not this batch's in the Anthropic console, then start "
                    "again."
                )
            if candidates:
                self.ledger.adopt(intent.batch_id, intent.job, candidates[0].id)
                listed.remove(candidates[0])
                adopted.append(to_job(candidates[0], _metadata(intent)))
        return adopted

    def _same_requests(self, batch: Any, intent: Intent) -> bool:
        if batch.processing_status != "ended" or not batch.results_url:
            return True  # results not out yet: the count and the time window are all there is
        ids = (orjson.loads(line)["custom_id"] for line in self._result_lines(batch.id))
        return ids_digest(ids) == intent.digest

    def _call(
        self, action: str, send: Callable[[], T], next_step: str, *, on_lost: Callable[[], bool] | None = None
    ) -> T:
        def transient(exc: Exception) -> Transient | None:
            failure = transient_failure(exc)
            if failure is not None and failure.maybe_done and on_lost is not None and not on_lost():
                return None  # cannot tell whether it was created: never risk creating it twice
            return failure

        where = self.connection.describe()
        try:
            return self.retrying.run(send, transient, action=action, where=where, next_step=next_step)
        except anthropic.AnthropicError as exc:
            raise translate_error(exc, self.connection, action) from exc
        except httpx2.HTTPError as exc:
            raise errors.ProviderUnavailableError(
                f"Could not {action}: {where} broke off the answer ({exc!r}). Try again later."
            ) from exc


def _refused(status: int | None) -> bool:
    """An answer saying the create was not done (a 4xx other than a timeout, conflict or rate limit)."""
    return status is not None and 400 <= status < 500 and status not in (408, 409, 429)


def _metadata(intent: Intent) -> dict[str, str]:
    return {"langbatch_batch_id": intent.batch_id, "langbatch_job": intent.job}


def _total(batch: Any) -> int:
    counts = batch.request_counts
    return int(counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired)


def to_job(batch: Any, metadata: dict[str, str] | None = None) -> Job:
    """A ``Job`` in OpenAI's vocabulary from an ``anthropic`` ``MessageBatch``: ``in_progress``,
    ``canceling`` -> cancelling, ``ended`` -> cancelled (a cancel was asked), expired (requests expired),
    else completed; counts: completed = succeeded, failed = errored + canceled + expired."""
    counts = batch.request_counts
    status = {"in_progress": "in_progress", "canceling": "cancelling"}.get(batch.processing_status)
    if status is None:
        if batch.cancel_initiated_at is not None:
            status = "cancelled"
        elif counts.expired:
            status = "expired"
        else:
            status = "completed"
    return Job(
        id=batch.id,
        status=status,
        metadata=dict(metadata or {}),
        created_at=_seconds(batch.created_at),
        output_file_id=batch.results_url,
        request_counts={
            "total": _total(batch),
            "completed": counts.succeeded,
            "failed": counts.errored + counts.canceled + counts.expired,
        },
    )


def _seconds(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def _write_split(
    lines: Iterator[bytes], output: Path, failures: Path, job_id: str, created: int | None
) -> tuple[int, int]:
    """Translate Anthropic result lines into OpenAI ones: successes to ``output``, the rest to ``failures``
    (temp files renamed at the end: a download broken off leaves no half file)."""
    counts = [0, 0]
    handles = [
        tempfile.NamedTemporaryFile("wb", dir=p.parent, prefix=f".{p.name}.", delete=False)  # noqa: SIM115
        for p in (output, failures)
    ]
    try:
        for raw in lines:
            native = orjson.loads(raw)
            line = result_line(native, job_id, created)
            target = 0 if line["response"] is not None and line["response"]["status_code"] == 200 else 1
            handles[target].write(orjson.dumps(line) + b"\n")
            counts[target] += 1
        for handle, path, count in zip(handles, (output, failures), counts, strict=True):
            handle.close()
            if count:
                os.replace(handle.name, path)
    finally:
        for handle in handles:
            handle.close()
            Path(handle.name).unlink(missing_ok=True)
    return counts[0], counts[1]


def result_line(native: dict[str, Any], job_id: str, created: int | None = None) -> dict[str, Any]:
    """One Anthropic result (``succeeded``, ``errored``, ``canceled``, ``expired``) as an OpenAI result
    line."""
    custom_id, result = str(native.get("custom_id") or ""), native.get("result") or {}
    kind = result.get("type")
    if kind == "succeeded":
        body = chat_completion(result.get("message") or {}, created)
        return success_line(custom_id, body, request_id=job_id, native=native)
    if kind == "errored":
        response = result.get("error") or {}
        error = response.get("error") or {}
        code = error.get("type") or "api_error"
        return api_error_line(
            custom_id,
            ERROR_STATUS.get(code, 500),
            error.get("message") or "",
            code=code,
            request_id=response.get("request_id"),
            native=native,
        )
    if kind == "canceled":
        return not_run_line(
            custom_id,
            "batch_cancelled",
            "The message batch was canceled before this request ran.",
            native=native,
        )
    return not_run_line(
        custom_id, "batch_expired", "The message batch expired (24 h) before this request ran.", native=native
    )


def transient_failure(exc: BaseException) -> Transient | None:
    """A failure worth trying again: timeouts, resets, 408, 409, 429, 5xx and 529 (overloaded)."""
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return Transient("no answer in time", maybe_done=True)
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        cause = exc if isinstance(exc, httpx2.TransportError) else exc.__cause__
        never_sent = isinstance(cause, httpx2.ConnectError)
        return Transient(f"connection error ({type(cause).__name__})", maybe_done=not never_sent)
    if not isinstance(exc, anthropic.APIStatusError):
        return None
    status = exc.status_code
    if status in (408, 409, 429) or status >= 500:
        request = exc.response.request
        return Transient(
            f"{status} on {request.method} {request.url.path}",
            retry_after=parse_retry_after(exc.response.headers.get("retry-after")),
            status_code=status,
            maybe_done=status >= 500 and status not in (503, 529),
        )
    return None


def translate_error(
    exc: anthropic.AnthropicError, connection: Connection, action: str
) -> errors.LangBatchError:
    where = connection.describe()
    if isinstance(exc, anthropic.APIConnectionError):
        return errors.ProviderUnavailableError(
            f"Could not {action}: {where} cannot be reached ({exc}). Check the base URL and your network."
        )
    if not isinstance(exc, anthropic.APIStatusError):
        return errors.ProviderError(f"Could not {action} at {where}: {exc}")
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error")
    inner = inner if isinstance(inner, dict) else {}
    message, code = inner.get("message") or str(exc), inner.get("type")
    kind, meaning = status_meaning(exc.status_code, connection.api_key_env or "ANTHROPIC_API_KEY")
    return kind(
        f"Could not {action}: {where} {meaning.format(message=message)}",
        status_code=exc.status_code,
        code=code,
    )
