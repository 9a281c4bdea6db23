"""Gemini's Batch Mode through the official ``google-genai`` SDK, from the same OpenAI-format request file.

    from langbatch_core import Connection, OpenAIChatCompletionBatch
    batch = OpenAIChatCompletionBatch("requests.jsonl", connection=Connection.gemini())    # GEMINI_API_KEY
    batch.start(); batch.wait(); batch.get_results()

Each job uploads ``{key, request}`` lines (the custom_id and a ``GenerateContentRequest`` translated from
the OpenAI chat body: ``_gemini_format``) through the Files API and creates a batch for the model the lines
name. Gemini batches carry no metadata: LangBatch's goes in the batch's display name, which ``find`` reads
back after a crash. The results file comes back as OpenAI result lines; the native file is kept beside it.
Contract points and their sources: docs/providers.md.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from langbatch_core import errors
from langbatch_core.providers import _gemini_format as fmt
from langbatch_core.providers._native import (
    AGAIN,
    AGAIN_CANCEL,
    AGAIN_START,
    AGAIN_WAIT,
    CLOCK_SLACK,
    HttpFailure,
    NativeProvider,
    iter_jsonl,
    write_jsonl,
)
from langbatch_core.providers.base import Job
from langbatch_core.providers.connection import Connection
from langbatch_core.providers.retry import Resend

if TYPE_CHECKING:
    from langbatch_core.requests import Capabilities, Limits

STATES = {  # Gemini's batch states (REST BATCH_STATE_*, SDK JOB_STATE_*) -> OpenAI's batch status
    "PENDING": "validating",
    "RUNNING": "in_progress",
    "SUCCEEDED": "completed",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "EXPIRED": "expired",
}
_TAG = "langbatch"  # first word of the display name of LangBatch's batches
_MODEL_MARK = "~"  # the uploaded file's display name ends with ~<model>


class GeminiProvider(NativeProvider):
    """Batches at the Gemini API's Batch Mode (connection kind ``gemini``)."""

    sdk_errors = (genai_errors.APIError,)
    api_root = "https://generativelanguage.googleapis.com"

    def __init__(self, connection: Connection, *, client: Any = None, data_dir: Path | None = None) -> None:
        super().__init__(connection, client=client, data_dir=data_dir)
        self._client: genai.Client | None = client
        self._models: dict[str, str] = {}  # uploaded file name -> the model its requests name

    @property
    def client(self) -> genai.Client:
        """The ``google.genai.Client`` (made on first use; its own retries are off: ours decide)."""
        if self._client is None:
            options = types.HttpOptions(
                base_url=self.connection.base_url,
                retry_options=types.HttpRetryOptions(attempts=1),
                timeout=int(self.retrying.attempt_timeout * 1000),
            )
            self._client = genai.Client(api_key=self._key(), http_options=options)
        return self._client

    def check(self) -> None:
        _ = self.client

    @property
    def limits(self) -> Limits:
        from langbatch_core.requests import Limits

        return self.connection.limits or Limits(max_bytes=2 * 1024**3)  # the Files API takes up to 2 GB

    @property
    def capabilities(self) -> Capabilities:
        from langbatch_core.requests import Capabilities

        return Capabilities("Gemini", fmt.refusal)

    def _http_failure(self, exc: BaseException) -> HttpFailure | None:
        if not isinstance(exc, genai_errors.APIError):
            return None
        headers = getattr(exc.response, "headers", None)
        status = int(exc.code or 500)
        if status == 400 and "API_KEY_INVALID" in str(exc.details):
            status = 401  # Gemini answers a wrong key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID
        return status, headers, str(exc.message or exc.status or exc)

    def submit(self, input_path: Path, endpoint: str, metadata: dict[str, str]) -> Job:
        return self.create(self.upload(input_path, metadata), endpoint, metadata)

    def upload(self, input_path: Path, metadata: dict[str, str]) -> str:
        """Upload the job's lines in Gemini's format; the display name says whose job it is and its model."""
        native = input_path.with_name("input.gemini.jsonl")
        models = {str(r["body"].get("model")) for r in iter_jsonl(input_path)}
        write_jsonl(native, (fmt.to_gemini_line(request) for request in iter_jsonl(input_path)))
        model = models.pop() if len(models) == 1 else ""
        batch_id, job_key = metadata.get("langbatch_batch_id"), metadata.get("langbatch_job")
        stem = f"{batch_id}-{job_key}" if batch_id and job_key else input_path.stem
        display = f"{stem}{_MODEL_MARK}{model}"
        resend = Resend(can_look_up=bool(batch_id and job_key))
        size = native.stat().st_size
        since = time.time() - CLOCK_SLACK

        def send() -> str:
            if resend.answer_lost:
                found = self._uploaded(display, size, since)
                if found:
                    return found
            config = types.UploadFileConfig(display_name=display, mime_type="jsonl")
            return str(self.client.files.upload(file=native, config=config).name)

        name = self._call("upload the request file", send, AGAIN_START, api_call=True, resend=resend)
        self._models[name] = model
        return name

    def create(self, input_file_id: str, endpoint: str, metadata: dict[str, str]) -> Job:
        model = self._models.get(input_file_id) or self._model_of(input_file_id)
        display = " ".join([_TAG, *(f"{k}={v}" for k, v in sorted(metadata.items()))])
        resend = Resend(can_look_up=bool(metadata))
        since = time.time() - CLOCK_SLACK

        def send() -> Job:
            if resend.answer_lost:
                found = self._list_jobs(metadata, since)
                if found:
                    return found[0]
            config = types.CreateBatchJobConfig(display_name=display)
            return sdk_job(self.client.batches.create(model=model, src=input_file_id, config=config))

        return self._call("create the batch job", send, AGAIN_START, resend=resend)

    def poll(self, job_id: str) -> Job:
        return self._call(f"read job {job_id}", lambda: self._raw_job(job_id), AGAIN_WAIT)

    def cancel(self, job_id: str) -> Job:
        """Gemini answers a cancel with nothing; until its state says CANCELLED the job is ``cancelling``."""

        def send() -> Job:
            self.client.batches.cancel(name=job_id)
            job = self._raw_job(job_id)
            if not job.terminal:
                job.status = "cancelling"
            return job

        return self._call(f"cancel job {job_id}", send, AGAIN_CANCEL)

    def download(self, job: Job, out_dir: Path) -> tuple[Path | None, Path | None]:
        """Saves the native results file (``output.gemini.jsonl``) and its OpenAI translation."""
        if not job.output_file_id:
            return None, None
        out_dir.mkdir(parents=True, exist_ok=True)
        native = out_dir / "output.gemini.jsonl"
        file_name = job.output_file_id

        def fetch() -> Path:  # from the start on every try: a reset mid-stream leaves no half file
            partial = native.with_name(f".{native.name}.part")
            try:
                self.client.files.download(file=file_name, destination=str(partial))
                partial.replace(native)
            finally:
                partial.unlink(missing_ok=True)
            return native

        self._call(f"download file {file_name}", fetch, AGAIN_WAIT)
        target = out_dir / "output.jsonl"
        write_jsonl(target, (fmt.to_openai_result(line) for line in iter_jsonl(native)))
        return target, None

    def find(self, metadata: dict[str, str], created_after: float | None = None) -> list[Job]:
        return self._call(
            "list batch jobs", lambda: self._list_jobs(metadata, created_after), AGAIN, api_call=True
        )

    def _list_jobs(self, metadata: dict[str, str], created_after: float | None) -> list[Job]:
        found = []
        for listed in self.client.batches.list(config=types.ListBatchJobsConfig(page_size=100)):
            created = listed.create_time.timestamp() if listed.create_time else None
            if created_after is not None and created is not None and created < created_after:
                continue
            tags = tags_of(listed.display_name)
            if tags is not None and all(tags.get(k) == v for k, v in metadata.items()):
                found.append(self._raw_job(str(listed.name)))
        return found

    def _raw_job(self, name: str) -> Job:
        """The batch as the API sends it: the SDK's ``BatchJob`` leaves out its counts and error."""
        answer = self.client._api_client.request("get", name, {})
        return to_job(orjson.loads(answer.body or "{}"))

    def _uploaded(self, display: str, size: int, since: float) -> str | None:
        for item in self.client.files.list(config=types.ListFilesConfig(page_size=100)):
            created = item.create_time.timestamp() if item.create_time else since
            if item.display_name == display and item.size_bytes == size and created >= since:
                return str(item.name)
        return None

    def _model_of(self, file_name: str) -> str:
        """The model an uploaded file's display name records (after a crash between upload and create)."""
        found = self._call(
            f"read file {file_name}", lambda: self.client.files.get(name=file_name), AGAIN_START
        )
        _, mark, model = (found.display_name or "").rpartition(_MODEL_MARK)
        if not mark or not model:  # not uploaded by LangBatch: Batch uploads the job's file again
            raise errors.ProviderNotFoundError(f"File {file_name} at Gemini does not name its model.")
        return model


def tags_of(display_name: str | None) -> dict[str, str] | None:
    """LangBatch's metadata from a batch's display name (None: not one of LangBatch's batches)."""
    words = (display_name or "").split()
    if not words or words[0] != _TAG:
        return None
    return dict(word.partition("=")[::2] for word in words[1:] if "=" in word)


def sdk_job(batch: types.BatchJob) -> Job:
    """A ``Job`` from the SDK's ``BatchJob`` (what a create answers; it carries no counts yet)."""
    state = str(getattr(batch.state, "value", batch.state) or "").rpartition("_")[2]
    return Job(
        id=str(batch.name),
        status=STATES.get(state, "validating"),
        metadata=tags_of(batch.display_name) or {},
        created_at=batch.create_time.timestamp() if batch.create_time else None,
        output_file_id=batch.dest.file_name if batch.dest else None,
    )


def to_job(answer: dict[str, Any]) -> Job:
    """A ``Job`` from the batch's REST JSON (an operation whose ``metadata`` is the batch)."""
    batch = answer.get("metadata") or answer
    state = str(batch.get("state", "")).rpartition("_")[2]
    stats = batch.get("batchStats") or {}
    error = answer.get("error") or {}
    output = (batch.get("output") or {}).get("responsesFile") or (answer.get("response") or {}).get(
        "responsesFile"
    )
    return Job(
        id=str(answer.get("name") or batch.get("name")),
        status=STATES.get(state, "in_progress"),
        metadata=tags_of(batch.get("displayName")) or {},
        created_at=_timestamp(batch.get("createTime")),
        input_file_id=(batch.get("inputConfig") or {}).get("fileName"),
        output_file_id=output,
        request_counts={
            "total": int(stats.get("requestCount", 0)),
            "completed": int(stats.get("successfulRequestCount", 0)),
            "failed": int(stats.get("failedRequestCount", 0)),
        },
        errors=[{"code": str(error.get("status") or error.get("code")), "message": error.get("message", "")}]
        if error
        else [],
    )


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    seconds, _, fraction = value.rstrip("Z").partition(".")  # RFC 3339 with up to 9 decimals
    moment = datetime.datetime.fromisoformat(seconds).replace(tzinfo=datetime.UTC)
    return moment.timestamp() + (float(f"0.{fraction}") if fraction.isdigit() else 0.0)
