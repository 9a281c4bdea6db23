"""Batch lifecycle in the local engine: validate, run every request, finalize, expire, cancel, resume.

    manager = BatchManager(state, executor, settings)
    await manager.start()                      # resumes the batches a previous process left unfinished
    batch = manager.create(file_id, "/v1/chat/completions", "24h", {"k": "v"})

A batch goes ``validating -> in_progress -> finalizing -> completed`` (or ``failed`` when its input file is
invalid or over the enqueued-token limit, ``expired`` when its completion window ends first, ``cancelling ->
cancelled`` when cancelled). Each finished request is appended to the batch's progress log at once, so a
restarted engine runs only what was not finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import mmap
import os
import time
from dataclasses import dataclass
from typing import Any

from langbatch_core.local.backends import BackendResponse
from langbatch_core.local.executor import CallError, Executor, estimate_tokens, require_positive
from langbatch_core.local.speed import backend_key, record_speed
from langbatch_core.local.state import EngineState, ProgressLog, new_id, result_bytes
from langbatch_core.local.validation import ParsedRequests, validate_input

logger = logging.getLogger(__name__)
MAX_FILE_BYTES = 200 * 1024 * 1024
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."
CANCELLED_MESSAGE = "This request was not executed because the batch was cancelled."


@dataclass
class EngineSettings:
    """Batch-level settings: ``EngineSettings(completion_window=30, max_enqueued_tokens=90_000)``.

    ``completion_window`` (seconds) replaces the length of a ``"24h"`` window, so tests and demos can see
    batches expire; ``None`` keeps 24 hours. ``max_file_bytes`` caps one upload (OpenAI's 200 MB).
    """

    completion_window: float | None = None
    max_enqueued_tokens: int | None = None
    sync_interval: float = 0.5
    max_file_bytes: int = MAX_FILE_BYTES

    def __post_init__(self) -> None:
        require_positive(
            completion_window=self.completion_window,
            max_enqueued_tokens=self.max_enqueued_tokens,
            sync_interval=self.sync_interval,
            max_file_bytes=self.max_file_bytes,
        )


def public(batch: dict[str, Any]) -> dict[str, Any]:
    """The API object of a stored batch (without the engine's private fields)."""
    return {k: v for k, v in batch.items() if not k.startswith("_")}


class BatchManager:
    """Owns every batch run of one engine (all on the engine's event loop)."""

    def __init__(
        self, state: EngineState, executor: Executor, settings: EngineSettings | None = None
    ) -> None:
        self.state = state
        self.executor = executor
        self.settings = settings or EngineSettings()
        self.runs: dict[str, BatchRun] = {}

    async def start(self) -> None:
        """Resume every batch that is not finished."""
        for batch in self.state.all("batch"):
            if batch["status"] not in TERMINAL:
                self._launch(batch)

    async def stop(self) -> None:
        """Stop running batches where they are (they resume at the next start)."""
        runs = list(self.runs.values())
        for run in runs:
            run.task.cancel()
        for run in runs:
            with contextlib.suppress(asyncio.CancelledError):
                await run.task

    def create(
        self, input_file_id: str, endpoint: str, window: float, window_label: str, metadata: dict | None
    ) -> dict[str, Any]:
        now = int(time.time())
        batch = {
            "id": new_id("batch_"),
            "object": "batch",
            "endpoint": endpoint,
            "model": None,
            "errors": None,
            "input_file_id": input_file_id,
            "completion_window": window_label,
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": int(now + window),
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "usage": empty_usage(),
            "metadata": metadata,
            "_deadline": time.time() + window,
        }
        self.state.put(batch, "batch")
        self._launch(batch)
        return batch

    def get(self, batch_id: str) -> dict[str, Any] | None:
        run = self.runs.get(batch_id)
        return run.batch if run is not None else self.state.get(batch_id, "batch")

    def cancel(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Ask a batch to stop: ``cancelling`` now, ``cancelled`` once its results are written. A batch
        already writing its results (it expired, or was cancelled) is answered as it is."""
        run = self.runs.get(batch["id"])
        if batch["status"] in ("cancelling", "cancelled") or (run is not None and run.finishing):
            return batch
        batch["status"] = "cancelling"
        batch["cancelling_at"] = int(time.time())
        self.state.put(batch, "batch")
        if run is not None:
            run.cancel_requested.set()
        else:
            self._launch(batch)
        return batch

    def uses_input(self, file_id: str) -> bool:
        """True when an unfinished batch reads ``file_id`` as its input."""
        batches = self.state.all("batch")
        return any(b["input_file_id"] == file_id and b["status"] not in TERMINAL for b in batches)

    def enqueued_tokens(self, excluding: str) -> int:
        return sum(r.tokens for r in self.runs.values() if r.batch["id"] != excluding)

    def _launch(self, batch: dict[str, Any]) -> None:
        run = BatchRun(self, batch)
        self.runs[batch["id"]] = run
        run.task = asyncio.get_running_loop().create_task(run.run(), name=f"batch {batch['id']}")
        batch_id: str = batch["id"]
        run.task.add_done_callback(lambda _task: self.runs.pop(batch_id, None))


class BatchRun:
    """One batch being validated, run and finalized."""

    def __init__(self, manager: BatchManager, batch: dict[str, Any]) -> None:
        self.manager = manager
        self.state = manager.state
        self.batch = batch
        self.cancel_requested = asyncio.Event()
        self.task: asyncio.Task[None]
        self.tokens = 0
        self.requests: ParsedRequests | None = None
        self.log: ProgressLog | None = None
        self.done: set[int] = set()
        self._dirty = False
        self._lock_fd: int | None = None
        self.finishing = False  # writing the output files: too late to cancel

    def save(self) -> None:
        self.state.put(self.batch, "batch")
        self._dirty = False

    def _claim(self) -> bool:
        """Lock the batch for this run; False when another engine on the same data dir is running it."""
        path = self.state.progress_dir / f"{self.batch['id']}.lock"
        self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            return False
        return True

    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:  # the engine is stopping: keep the state for the next start
            self.save()
            raise
        except Exception as exc:  # a bug or a broken disk: fail the batch visibly rather than hang
            logger.exception("batch %s failed inside the engine", self.batch["id"])
            error = {"code": "engine_error", "message": f"The local engine failed: {exc!r}", "param": None}
            self.batch.update(status="failed", failed_at=int(time.time()))
            self.batch["errors"] = {"object": "list", "data": [{**error, "line": None}]}
            self.save()
        finally:
            if self.log is not None:
                self.log.close()
            if self.requests is not None:
                self.requests.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the lock
            if self.batch["status"] in TERMINAL:
                self._drop_deleted_input()

    def _drop_deleted_input(self) -> None:
        """Remove the input file's bytes if the file was deleted while batches were reading it (the last
        one of them to end removes them)."""
        file_id = self.batch["input_file_id"]
        if self.state.get(file_id, "file") is None and not self.manager.uses_input(file_id):
            self.state.file_path(file_id).unlink(missing_ok=True)

    async def _run(self) -> None:
        if not self._claim():
            return
        stored = self.state.get(self.batch["id"], "batch")
        if stored is not None and stored["status"] in TERMINAL:  # finished by another engine meanwhile
            self.batch.update(stored)
            return
        batch = self.batch
        if batch["status"] == "validating" and not await self._validate():
            return
        if batch["status"] == "cancelling":
            return await self._finish("cancelled")
        self.requests = self.requests or await asyncio.to_thread(self._load_requests)
        if batch["status"] == "in_progress":
            outcome = await self._execute()
        else:  # finalizing: the previous process died while writing the output files
            outcome = "completed"
        await self._finish(outcome)

    # --- validating ------------------------------------------------------------------------------------
    async def _validate(self) -> bool:
        batch = self.batch
        path = self.state.file_path(batch["input_file_id"])
        errors, parsed, tokens = await asyncio.to_thread(validate_input, path, batch["endpoint"])
        limit = self.manager.settings.max_enqueued_tokens
        if not errors and limit is not None:
            enqueued = self.manager.enqueued_tokens(batch["id"])
            if tokens + enqueued > limit:
                errors = [token_limit_error(tokens, enqueued, limit)]
        if errors:
            batch.update(
                status="failed", failed_at=int(time.time()), errors={"object": "list", "data": errors}
            )
            self.save()
            return False
        assert parsed is not None
        self.requests, self.tokens = parsed, tokens
        if self.cancel_requested.is_set() or batch["status"] == "cancelling":
            return True
        batch.update(status="in_progress", in_progress_at=int(time.time()), model=parsed.model)
        batch["request_counts"]["total"] = len(parsed)
        self.save()
        return True

    def _load_requests(self) -> ParsedRequests:
        _, parsed, tokens = validate_input(
            self.state.file_path(self.batch["input_file_id"]), None, check=False
        )
        assert parsed is not None
        self.tokens = tokens
        return parsed

    # --- in_progress -----------------------------------------------------------------------------------
    async def _execute(self) -> str:
        assert self.requests is not None
        self._replay_progress()
        done_before, output_before = len(self.done), self.batch["usage"]["output_tokens"]
        started = time.monotonic()
        pending = iter([i for i in range(len(self.requests)) if i not in self.done])
        self.log = ProgressLog(self.state.progress_path(self.batch["id"]))
        concurrency = self.manager.executor.settings.concurrency
        workers = [asyncio.create_task(self._worker(pending)) for _ in range(concurrency)]
        finished = asyncio.create_task(asyncio.wait(workers))
        cancel = asyncio.create_task(self.cancel_requested.wait())
        syncer = asyncio.create_task(self._sync_loop())
        timeout = max(0.0, self.batch["_deadline"] - time.time())
        try:
            await asyncio.wait({finished, cancel}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (*workers, finished, cancel, syncer):
                task.cancel()
            outcomes = await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.to_thread(self.log.sync)
        failures = [o for o in outcomes if isinstance(o, Exception)]  # CancelledError is not an Exception
        if failures:
            raise failures[0]
        self._record_speed(
            len(self.done) - done_before,
            time.monotonic() - started,
            self.batch["usage"]["output_tokens"] - output_before,
        )
        if self.cancel_requested.is_set():
            return "cancelled"
        return "completed" if len(self.done) == len(self.requests) else "expired"

    def _record_speed(self, requests: int, seconds: float, output_tokens: int) -> None:
        """Add this run to the engine's measured speed (``speed.json``, for run estimates)."""
        backend = backend_key(self.manager.executor.backend.describe())
        endpoint = self.batch["endpoint"]
        try:
            record_speed(
                self.state.root,
                backend,
                endpoint,
                requests=requests,
                seconds=seconds,
                output_tokens=output_tokens,
            )
        except OSError:  # a measurement is worth less than the batch: log it and finish
            logger.warning("could not record the speed of batch %s", self.batch["id"], exc_info=True)

    def _replay_progress(self) -> None:
        counts = self.batch["request_counts"]
        counts["completed"] = counts["failed"] = 0
        self.batch["usage"] = empty_usage()
        for index, result in self.state.read_progress(self.batch["id"]):
            if index not in self.done:
                self.done.add(index)
                self._count(result)

    async def _worker(self, pending: Any) -> None:
        requests, executor, endpoint = self.requests, self.manager.executor, self.batch["endpoint"]
        assert requests is not None and self.log is not None
        tpm = executor.settings.tpm is not None
        for index in pending:
            body = requests.body(index)
            answer = await executor.call(endpoint, body, estimate_tokens(body) if tpm else 0)
            result = result_line(requests.custom_ids[index], answer)
            self.log.append(index, self._count(result), result)
            self.done.add(index)

    def _count(self, result: dict[str, Any]) -> bool:
        """Count a finished request in request_counts and usage; True when it succeeded."""
        response = result["response"]
        ok = response is not None and 200 <= response["status_code"] < 300
        self.batch["request_counts"]["completed" if ok else "failed"] += 1
        if ok:
            add_usage(self.batch["usage"], response["body"].get("usage"))
        self._dirty = True
        return ok

    async def _sync_loop(self) -> None:
        interval = self.manager.settings.sync_interval
        while True:
            await asyncio.sleep(interval)
            if self._dirty:
                self.save()
                assert self.log is not None
                await asyncio.to_thread(self.log.sync)

    # --- the end ---------------------------------------------------------------------------------------
    async def _finish(self, outcome: str) -> None:
        self.finishing = True
        batch = self.batch
        now = int(time.time())
        if outcome == "completed":
            batch.update(status="finalizing", finalizing_at=batch["finalizing_at"] or now)
            self.save()
        if self.requests is None:
            self.requests = await asyncio.to_thread(self._load_requests)
        output_id, error_id, counts = await asyncio.to_thread(self._write_results, outcome)
        for file_id, kind in ((output_id, "output"), (error_id, "error")):
            if file_id is not None:
                self.state.register_file(file_id, f"{batch['id']}_{kind}.jsonl", "batch_output")
        batch.update(output_file_id=output_id, error_file_id=error_id)
        batch["request_counts"].update(counts)
        final = {"completed": "completed", "expired": "expired", "cancelled": "cancelled"}[outcome]
        batch.update(status=final, **{f"{final}_at": int(time.time())})
        self.save()
        self.state.progress_path(batch["id"]).unlink(missing_ok=True)
        (self.state.progress_dir / f"{batch['id']}.lock").unlink(missing_ok=True)

    def _write_results(self, outcome: str) -> tuple[str | None, str | None, dict[str, int]]:
        """Output and error files from the progress log, in input order: recorded lines are copied as they
        are (no re-encoding, never all in memory at once), the unrun ones written as cancelled/expired."""
        assert self.requests is not None
        recorded = self.state.progress_offsets(self.batch["id"])
        code, message = (
            ("batch_cancelled", CANCELLED_MESSAGE)
            if outcome == "cancelled"
            else ("batch_expired", EXPIRED_MESSAGE)
        )
        with self.state.new_file() as good, self.state.new_file() as bad, self._progress_map() as log:
            for index, custom_id in enumerate(self.requests.custom_ids):
                entry = recorded.get(index)
                if entry is None:
                    bad.write(result_bytes(unrun_line(custom_id, code, message)) + b"\n")
                    continue
                ok, start, end = entry
                (good if ok else bad).write(log[start : end + 1])  # the line and its newline
        total = len(self.requests)
        completed = sum(1 for ok, _, _ in recorded.values() if ok)
        return (
            good.file_id,
            bad.file_id,
            {"total": total, "completed": completed, "failed": total - completed},
        )

    def _progress_map(self) -> contextlib.AbstractContextManager[Any]:
        """The progress file mapped read-only (an empty buffer when nothing was recorded)."""
        path = self.state.progress_path(self.batch["id"])
        if not path.exists() or path.stat().st_size == 0:
            return contextlib.nullcontext(memoryview(b""))
        with path.open("rb") as handle:
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def result_line(custom_id: str, answer: BackendResponse | CallError) -> dict[str, Any]:
    """The OpenAI result line for one request's final answer."""
    if isinstance(answer, CallError):
        return unrun_line(custom_id, answer.code, answer.message)
    response = {
        "status_code": answer.status_code,
        "request_id": "req_" + os.urandom(12).hex(),
        "body": answer.body,
    }
    return {
        "id": "batch_req_" + os.urandom(12).hex(),
        "custom_id": custom_id,
        "response": response,
        "error": None,
    }


def unrun_line(custom_id: str, code: str, message: str) -> dict[str, Any]:
    """A result line for a request that got no HTTP answer (expired, cancelled, unreachable backend)."""
    error = {"code": code, "message": message}
    return {
        "id": "batch_req_" + os.urandom(12).hex(),
        "custom_id": custom_id,
        "response": None,
        "error": error,
    }


def empty_usage() -> dict[str, Any]:
    return {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }


def add_usage(total: dict[str, Any], usage: Any) -> None:
    """Add one response's usage (chat/completions/embeddings or responses naming) to a batch's usage."""
    if not isinstance(usage, dict):
        return
    given_in = usage.get("prompt_tokens", usage.get("input_tokens")) or 0
    given_out = usage.get("completion_tokens", usage.get("output_tokens")) or 0
    in_details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    out_details = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
    if not (isinstance(given_in, int) and isinstance(given_out, int)):
        return
    total["input_tokens"] += given_in
    total["output_tokens"] += given_out
    total["total_tokens"] += given_in + given_out
    if isinstance(in_details, dict) and isinstance(in_details.get("cached_tokens"), int):
        total["input_tokens_details"]["cached_tokens"] += in_details["cached_tokens"]
    if isinstance(out_details, dict) and isinstance(out_details.get("reasoning_tokens"), int):
        total["output_tokens_details"]["reasoning_tokens"] += out_details["reasoning_tokens"]


def token_limit_error(tokens: int, enqueued: int, limit: int) -> dict[str, Any]:
    message = (
        f"Enqueued token limit reached: this batch has about {tokens:,} input tokens and {enqueued:,} are "
        f"already enqueued in other batches; the limit is {limit:,} enqueued tokens. Try again once some "
        "in_progress batches have completed, or split the file into smaller batches."
    )
    return {"code": "token_limit_exceeded", "message": message, "param": None, "line": None}
