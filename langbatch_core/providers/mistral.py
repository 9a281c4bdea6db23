"""Mistral's batch jobs through the official ``mistralai`` SDK, from the same OpenAI-format request file.

    from langbatch_core import Connection, OpenAIChatCompletionBatch
    batch = OpenAIChatCompletionBatch("requests.jsonl", connection=Connection.mistral())   # MISTRAL_API_KEY
    batch.start(); batch.wait(); batch.get_results()

Each job uploads ``{custom_id, body}`` lines (Mistral's chat body, translated from OpenAI's: ``seed`` becomes
``random_seed``, ``max_completion_tokens`` ``max_tokens``, a ``developer`` message a ``system`` one) through
the Files API and creates a batch job for the model the lines name, tagged with LangBatch's metadata. Its
output and error files come back as OpenAI result lines; the native files are kept beside them. What Mistral
cannot express (logprobs, logit_bias, audio, ...) is refused at validation, by line.
Contract points and their sources: docs/providers.md.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import mistralai.client as mistral_sdk
import orjson
from mistralai.client import errors as mistral_errors
from mistralai.client.models import APIEndpoint
from mistralai.client.types import UNSET

from langbatch_core.providers._native import (
    AGAIN,
    AGAIN_CANCEL,
    AGAIN_START,
    AGAIN_WAIT,
    CLOCK_SLACK,
    HttpFailure,
    NativeProvider,
    iter_jsonl,
    text_of,
    write_chunks,
    write_jsonl,
)
from langbatch_core.providers.base import Job
from langbatch_core.providers.connection import Connection
from langbatch_core.providers.result_lines import REFUSED, api_error_line, not_run_line, success_line
from langbatch_core.providers.retry import Resend

if TYPE_CHECKING:
    from langbatch_core.requests import Capabilities, Limits

_PAGE = 100
STATUSES = {  # Mistral's BatchJobStatus -> OpenAI's batch status
    "QUEUED": "validating",
    "RUNNING": "in_progress",
    "SUCCESS": "completed",
    "FAILED": "failed",
    "TIMEOUT_EXCEEDED": "expired",
    "CANCELLATION_REQUESTED": "cancelling",
    "CANCELLED": "cancelled",
}
FINISH_REASONS = {"model_length": "length", "length": "length", "stop": "stop", "tool_calls": "tool_calls"}
ENDPOINTS = frozenset({"/v1/chat/completions", "/v1/embeddings"})
#: OpenAI chat parameters Mistral has no equivalent for (refused at validation, by line).
UNSUPPORTED = {
    "logprobs": "Mistral's chat API returns no log probabilities",
    "top_logprobs": "Mistral's chat API returns no log probabilities",
    "logit_bias": "Mistral's chat API has no logit_bias",
    "audio": "Mistral's chat API answers no audio",
    "modalities": "Mistral's chat API answers text only",
    "web_search_options": "Mistral's chat API has no web search option",
}
#: OpenAI bookkeeping fields with no effect on the answer, left out of Mistral's body.
_DROPPED = ("user", "store", "metadata", "service_tier", "stream_options")
_RENAMED = {"seed": "random_seed"}


class MistralProvider(NativeProvider):
    """Jobs at Mistral's Files + Batch API (connection kind ``mistral``)."""

    sdk_errors = (mistral_errors.MistralError, mistral_errors.NoResponseError)
    api_root = "https://api.mistral.ai"

    def __init__(self, connection: Connection, *, client: Any = None, data_dir: Path | None = None) -> None:
        super().__init__(connection, client=client, data_dir=data_dir)
        self._client: mistral_sdk.Mistral | None = client
        self._models: dict[str, str] = {}  # uploaded file id -> the model its lines name

    @property
    def client(self) -> mistral_sdk.Mistral:
        """The ``mistralai.Mistral`` client (made on first use; its own retries are off)."""
        if self._client is None:
            self._client = mistral_sdk.Mistral(api_key=self._key(), server_url=server_url(self.connection))
        return self._client

    def check(self) -> None:
        _ = self.client

    @property
    def limits(self) -> Limits:
        from langbatch_core.requests import Limits

        # Mistral's limits per job (docs): up to 1M requests, files up to 512 MB
        return self.connection.limits or Limits(max_requests=1_000_000, max_bytes=512 * 1024 * 1024)

    @property
    def capabilities(self) -> Capabilities:
        from langbatch_core.requests import Capabilities

        return Capabilities("Mistral", refusal)

    def _http_failure(self, exc: BaseException) -> HttpFailure | None:
        if isinstance(exc, mistral_errors.MistralError):
            return exc.status_code, exc.headers, _api_message(exc.body)
        return None

    def submit(self, input_path: Path, endpoint: str, metadata: dict[str, str]) -> Job:
        return self.create(self.upload(input_path, metadata), endpoint, metadata)

    def upload(self, input_path: Path, metadata: dict[str, str]) -> str:
        """Upload the job's lines in Mistral's format, named ``<batch id>-<job>.jsonl`` (a lost answer is
        found by that name and size)."""
        native = input_path.with_name("input.mistral.jsonl")
        models: set[str] = set()
        write_jsonl(native, (to_mistral_line(request, models) for request in iter_jsonl(input_path)))
        batch_id, job_key = metadata.get("langbatch_batch_id"), metadata.get("langbatch_job")
        name = f"{batch_id}-{job_key}.jsonl" if batch_id and job_key else native.name
        resend = Resend(can_look_up=bool(batch_id and job_key))
        since = time.time() - CLOCK_SLACK

        def send() -> str:
            if resend.answer_lost:
                found = self._uploaded(name, native.stat().st_size, since)
                if found:
                    return found
            with open(native, "rb") as handle:
                uploaded = self.client.files.upload(
                    file={"file_name": name, "content": handle}, purpose="batch", timeout_ms=self._timeout_ms
                )
            return str(uploaded.id)

        file_id = self._call("upload the request file", send, AGAIN_START, api_call=True, resend=resend)
        if len(models) == 1:
            self._models[file_id] = models.pop()
        return file_id

    def create(self, input_file_id: str, endpoint: str, metadata: dict[str, str]) -> Job:
        model = self._models.get(input_file_id)  # unknown after a crash: each line names it too
        resend = Resend(can_look_up=bool(metadata))
        since = time.time() - CLOCK_SLACK

        def send() -> Job:
            if resend.answer_lost:
                found = self._list_jobs(metadata, since)
                if found:
                    return found[0]
            created = self.client.batch.jobs.create(
                endpoint=cast(APIEndpoint, endpoint),  # its Literal also takes endpoints it does not list
                input_files=[input_file_id],
                model=model or UNSET,  # not sent as null
                metadata=metadata,
                timeout_hours=24,
                timeout_ms=self._timeout_ms,
            )
            return to_job(created)

        return self._call("create the batch job", send, AGAIN_START, resend=resend)

    def poll(self, job_id: str) -> Job:
        return self._call(
            f"read job {job_id}",
            lambda: to_job(self.client.batch.jobs.get(job_id=job_id, timeout_ms=self._timeout_ms)),
            AGAIN_WAIT,
        )

    def cancel(self, job_id: str) -> Job:
        return self._call(
            f"cancel job {job_id}",
            lambda: to_job(self.client.batch.jobs.cancel(job_id=job_id, timeout_ms=self._timeout_ms)),
            AGAIN_CANCEL,
        )

    def download(self, job: Job, out_dir: Path) -> tuple[Path | None, Path | None]:
        """Saves the native output and error files (``*.mistral.jsonl``) and their OpenAI translations."""
        out_dir.mkdir(parents=True, exist_ok=True)
        paths: list[Path | None] = []
        for file_id, name in ((job.output_file_id, "output"), (job.error_file_id, "errors")):
            if not file_id:
                paths.append(None)
                continue
            native = self._save(file_id, out_dir / f"{name}.mistral.jsonl")
            target = out_dir / f"{name}.jsonl"
            write_jsonl(target, (to_openai_result(line) for line in iter_jsonl(native)))
            paths.append(target)
        return paths[0], paths[1]

    def find(self, metadata: dict[str, str], created_after: float | None = None) -> list[Job]:
        return self._call(
            "list batch jobs", lambda: self._list_jobs(metadata, created_after), AGAIN, api_call=True
        )

    @property
    def _timeout_ms(self) -> int:
        return int(self.retrying.attempt_timeout * 1000)

    def _list_jobs(self, metadata: dict[str, str], created_after: float | None) -> list[Job]:
        after = datetime.datetime.fromtimestamp(created_after, datetime.UTC) if created_after else None
        found: list[Job] = []
        page = 0
        while True:
            listed = self.client.batch.jobs.list(
                page=page,
                page_size=_PAGE,
                created_after=after,
                order_by="-created",
                timeout_ms=self._timeout_ms,
            )
            for item in listed.data or []:
                job = to_job(item)
                if all(job.metadata.get(k) == v for k, v in metadata.items()):
                    found.append(job)
            page += 1
            if not listed.data or page * _PAGE >= listed.total:
                return found

    def _uploaded(self, name: str, size: int, since: float) -> str | None:
        listed = self.client.files.list(
            page=0, page_size=_PAGE, purpose="batch", search=name, timeout_ms=self._timeout_ms
        )
        for item in listed.data or []:
            if item.filename == name and item.size_bytes == size and item.created_at >= since:
                return str(item.id)
        return None

    def _save(self, file_id: str, path: Path) -> Path:
        def fetch() -> Path:  # from the start on every try: a reset mid-stream leaves no half file
            response = self.client.files.download(file_id=file_id, timeout_ms=self._timeout_ms)
            try:
                write_chunks(path, response.iter_bytes())
            finally:
                response.close()
            return path

        return self._call(f"download file {file_id}", fetch, AGAIN_WAIT)


def server_url(connection: Connection) -> str | None:
    """The SDK's server URL: the API root without ``/v1`` (its paths start with ``/v1``)."""
    if not connection.base_url:
        return None
    root = connection.base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def refusal(endpoint: str, body: dict[str, Any]) -> tuple[str | None, str] | None:
    """What Mistral's batch API cannot run in an OpenAI request body, as (param, message); None if nothing."""
    if endpoint not in ENDPOINTS:
        return None, f"Mistral's batch API serves /v1/chat/completions and /v1/embeddings, not {endpoint}."
    for name, why in UNSUPPORTED.items():
        if body.get(name) not in (None, False):
            return name, f"{why}: remove {name} from this request."
    for index, message in enumerate(body.get("messages") or []):
        content = message.get("content") if isinstance(message, dict) else None
        for part_index, part in enumerate(content if isinstance(content, list) else []):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in (None, "text", "image_url"):
                return f"messages[{index}].content[{part_index}]", (
                    f"Mistral's chat API takes text and image_url parts, not {kind!r}."
                )
    return None


def to_mistral_line(request: dict[str, Any], models: set[str] | None = None) -> dict[str, Any]:
    """``{custom_id, body}`` with OpenAI's body translated into Mistral's (the model kept in ``models``)."""
    if models is not None and isinstance(request["body"].get("model"), str):
        models.add(request["body"]["model"])
    return {"custom_id": request["custom_id"], "body": to_mistral_body(request["body"])}


def to_mistral_body(body: dict[str, Any]) -> dict[str, Any]:
    native = {_RENAMED.get(k, k): v for k, v in body.items() if k not in _DROPPED and v is not None}
    if "max_completion_tokens" in native:
        tokens = native.pop("max_completion_tokens")
        native.setdefault("max_tokens", tokens)
    if "dimensions" in native:  # embeddings
        native["output_dimension"] = native.pop("dimensions")
    if "messages" in native:
        native["messages"] = [
            {**m, "role": "system"} if m.get("role") == "developer" else m for m in native["messages"]
        ]
    return native


def to_openai_result(line: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI batch result line from a line of Mistral's output or error file."""
    custom_id = str(line.get("custom_id"))
    response = line.get("response") if isinstance(line.get("response"), dict) else None
    status = response.get("status_code") if response else None
    body = response.get("body") if response else None
    if response and isinstance(status, int) and status < 400 and isinstance(body, dict):
        translated = to_openai_body(body) if "choices" in body else body
        return success_line(custom_id, translated, request_id=response.get("request_id") or line.get("id"))
    error = line.get("error")
    if isinstance(status, int) and status >= 400:
        code = (body or {}).get("code") or (body or {}).get("type") if isinstance(body, dict) else None
        message = _api_message(body) or _api_message(error)
        return api_error_line(custom_id, status, message, code=_code(code, status), kind=REFUSED)
    return not_run_line(custom_id, "mistral_error", _api_message(error) or "no answer given")


def to_openai_body(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's ``chat.completion`` from Mistral's chat answer."""
    choices = []
    for index, choice in enumerate(body.get("choices") or []):
        message = choice.get("message") or {}
        translated: dict[str, Any] = {"role": "assistant", "content": text_of(message.get("content"))}
        if message.get("tool_calls"):
            translated["tool_calls"] = [_tool_call(call) for call in message["tool_calls"]]
        reason = choice.get("finish_reason")
        choices.append(
            {
                "index": choice.get("index", index),
                "message": translated,
                "finish_reason": FINISH_REASONS.get(reason, reason),
                "logprobs": None,
            }
        )
    usage = body.get("usage") or {}
    return {
        "id": body.get("id"),
        "object": "chat.completion",
        "created": body.get("created"),
        "model": body.get("model"),
        "choices": choices,
        "usage": {
            "prompt_tokens": usage.get("prompt_tokens", 0),
            "completion_tokens": usage.get("completion_tokens", 0),
            "total_tokens": usage.get("total_tokens", 0),
        },
    }


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments).decode()
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {"name": function.get("name"), "arguments": arguments},
    }


def to_job(batch: Any) -> Job:
    """A ``Job`` from a ``mistralai`` ``BatchJob``, counts in OpenAI's words (completed = succeeded)."""
    return Job(
        id=batch.id,
        status=STATUSES.get(str(batch.status), "in_progress"),
        metadata={str(k): str(v) for k, v in (batch.metadata or {}).items()},
        created_at=float(batch.created_at),
        input_file_id=batch.input_files[0] if batch.input_files else None,
        output_file_id=batch.output_file or None,
        error_file_id=batch.error_file or None,
        request_counts={
            "total": int(batch.total_requests),
            "completed": int(batch.succeeded_requests),
            "failed": int(batch.failed_requests),
        },
        errors=[
            {"code": "mistral_batch_error", "message": _counted(e.message, e.count)}
            for e in batch.errors or []
        ],
    )


def _counted(message: str, count: int | None) -> str:
    return f"{message} ({count} requests)" if count and count > 1 else message


def _code(code: Any, status: int) -> str:
    return str(code) if code else f"http_{status}"


def _api_message(body: Any) -> str:
    """The message of a Mistral error body (a JSON text or object): ``message``, ``detail`` or ``error``."""
    if isinstance(body, str):
        text = body
        try:
            body = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text.strip()[:500]
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            value = body.get(key)
            if isinstance(value, dict | list):
                return _api_message(value)
            if value:
                return str(value)
    if isinstance(body, list) and body:
        first = body[0]
        return str(first.get("msg", first)) if isinstance(first, dict) else str(first)
    return ""
