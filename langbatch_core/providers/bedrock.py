"""AWS Bedrock batch inference through ``boto3``, from OpenAI-format request files (Claude models).

    from langbatch_core.providers import Connection, provider_for
    provider = provider_for(Connection.bedrock(region="us-east-1", bucket="my-bucket", role_arn="arn:..."))

``upload`` writes the job's records (``{recordId, modelInput}``, modelInput in Claude's Messages format from
``claude_requests``) to ``s3://<bucket>/langbatch/<batch>/<job>/input.jsonl``; ``create`` starts a model
invocation job named after the batch and job, tagged with the metadata, with an idempotency token; results
(``<output>/<job id>/input.jsonl.out``) come back as OpenAI result lines (``claude_results``). Contract points
and sources: docs/providers.md.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import boto3
import orjson
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, NoCredentialsError

from langbatch_core import errors
from langbatch_core.providers._native import write_chunks
from langbatch_core.providers.base import Job, Provider
from langbatch_core.providers.claude_requests import CHAT, claude_refusal, to_claude, translated
from langbatch_core.providers.claude_results import chat_completion
from langbatch_core.providers.connection import Connection
from langbatch_core.providers.result_lines import api_error_line, not_run_line, success_line
from langbatch_core.providers.retry import Transient, parse_retry_after
from langbatch_core.requests import Capabilities, Limits

ANTHROPIC_VERSION = "bedrock-2023-05-31"
# Bedrock's default quotas per job (adjustable per account: pass Limits on the connection)
MIN_RECORDS, MAX_RECORDS, MAX_INPUT_BYTES = 100, 50_000, 1_000_000_000
STATUSES = {
    "Submitted": "validating",
    "Validating": "validating",
    "Scheduled": "validating",
    "InProgress": "in_progress",
    "Completed": "completed",
    "PartiallyCompleted": "completed",
    "Failed": "failed",
    "Stopping": "cancelling",
    "Stopped": "cancelled",
    "Expired": "expired",
}
_NOT_RUN = {"cancelled": ("batch_cancelled", "stopped"), "expired": ("batch_expired", "expired")}
_AGAIN_WAIT = "run `langbatch wait <batch id>` (or batch.wait()) again later"
_AGAIN_START = "run `langbatch start <batch id>` (or batch.start() / retry()) again later"
T = TypeVar("T")


def bedrock_refusal(endpoint: str, body: dict[str, Any]) -> tuple[str | None, str] | None:
    """What Claude on Bedrock batch inference cannot take: Claude's limits, and no tools or structured
    output (Bedrock's batch inference supports neither)."""
    for name in ("tools", "tool_choice", "response_format"):
        value = body.get(name)
        if value and not (name == "response_format" and value.get("type") == "text"):
            return name, f"Bedrock's batch inference takes no {name}: remove it (or use another connection)."
    for index, message in enumerate(body.get("messages") or []):
        if message.get("role") == "tool" or message.get("tool_calls"):
            return f"messages[{index}]", "Bedrock's batch inference takes no tool calls or tool results."
    return claude_refusal(endpoint, body)


def record_id(custom_id: str) -> str:
    """Bedrock's recordId is alphanumeric: the custom_id's UTF-8 bytes in hex (reversible)."""
    return custom_id.encode().hex()


def custom_id_of(record: str) -> str:
    return bytes.fromhex(record).decode()


def model_input(body: dict[str, Any]) -> dict[str, Any]:
    params = to_claude(body)
    params.pop("model", None)  # the model is the job's
    return {"anthropic_version": ANTHROPIC_VERSION, **params}


def _model_and_input(body: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    return body.get("model"), model_input(body)


class BedrockProvider(Provider):
    """Model invocation jobs at AWS Bedrock (kind ``bedrock``)."""

    def __init__(self, connection: Connection, *, client: Any = None, data_dir: Path | None = None) -> None:
        super().__init__(connection, client=client, data_dir=data_dir)
        self._bedrock = client
        self._s3: Any = None

    def _setting(self, name: str, variable: str) -> str:
        value = (self.connection.options or {}).get(name) or os.environ.get(variable)
        if not value and name == "region":
            value = os.environ.get("AWS_DEFAULT_REGION")
        if not value:
            raise errors.ConfigurationError(
                f"A Bedrock connection needs its {name}: pass Connection.bedrock({name}=...) or set "
                f"{variable}.",
                field=name,
            )
        return value

    @property
    def bucket(self) -> str:
        return self._setting("bucket", "LANGBATCH_BEDROCK_BUCKET")

    @property
    def bedrock(self) -> Any:
        if self._bedrock is None:
            self._bedrock = self._client("bedrock")
        return self._bedrock

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = self._client("s3")
        return self._s3

    def _client(self, service: str) -> Any:
        config = Config(
            retries={"total_max_attempts": 1},  # LangBatch's Retrying rides out trouble
            connect_timeout=self.retrying.attempt_timeout,
            read_timeout=self.retrying.attempt_timeout,
            s3={"addressing_style": "path"} if self.connection.base_url else None,
        )
        region = self._setting("region", "AWS_REGION")
        return boto3.client(service, region_name=region, endpoint_url=self.connection.base_url, config=config)

    @property
    def limits(self) -> Limits:
        default = Limits(max_requests=MAX_RECORDS, max_bytes=MAX_INPUT_BYTES, min_requests=MIN_RECORDS)
        return self.connection.limits or default

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities("Bedrock", bedrock_refusal)

    def check(self) -> None:
        self._setting("role_arn", "LANGBATCH_BEDROCK_ROLE_ARN")
        _ = self.bucket
        if boto3.session.Session().get_credentials() is None:
            raise errors.MissingAPIKeyError("AWS_ACCESS_KEY_ID", provider="AWS")

    def submit(self, input_path: Path, endpoint: str, metadata: dict[str, str]) -> Job:
        return self.create(self.upload(input_path, metadata), endpoint, metadata)

    def upload(self, input_path: Path, metadata: dict[str, str]) -> str:
        """The records, translated, at ``s3://<bucket>/langbatch/<batch>/<job>/input.jsonl`` (the same key
        each time: writing it again after a lost answer replaces it, nothing is left behind)."""
        key = f"{_prefix(metadata)}/input.jsonl"
        model = None
        with tempfile.TemporaryFile() as records:
            for custom_id, (model_id, record) in translated(input_path, _model_and_input):
                model = model or model_id
                records.write(orjson.dumps({"recordId": record_id(custom_id), "modelInput": record}) + b"\n")

            def put() -> str:
                records.seek(0)
                self.s3.put_object(
                    Bucket=self.bucket, Key=key, Body=records, Metadata={"langbatch-model": model or ""}
                )
                return f"s3://{self.bucket}/{key}"

            return self._call("upload the records to S3", put, _AGAIN_START)

    def create(self, input_file_id: str, endpoint: str, metadata: dict[str, str]) -> Job:
        """A model invocation job for the uploaded records: named after the batch and job (found again by
        ``find``), tagged with the metadata, with a token that makes a resent create a no-op."""
        if endpoint != CHAT:
            raise errors.ConfigurationError(f"Bedrock batches run chat completions ({CHAT}), not {endpoint}.")
        bucket, key = _split(input_file_id)
        name = job_name(metadata, key)

        def send() -> Job:
            found = self._jobs_named(name)
            if found:
                return found[0]
            model = self.s3.head_object(Bucket=bucket, Key=key)["Metadata"].get("langbatch-model")
            created = self.bedrock.create_model_invocation_job(
                jobName=name,
                roleArn=self._setting("role_arn", "LANGBATCH_BEDROCK_ROLE_ARN"),
                clientRequestToken=hashlib.sha256(name.encode()).hexdigest()[:64],
                modelId=model,
                inputDataConfig={"s3InputDataConfig": {"s3Uri": input_file_id, "s3InputFormat": "JSONL"}},
                outputDataConfig={
                    "s3OutputDataConfig": {"s3Uri": input_file_id.rsplit("/", 1)[0] + "/output/"}
                },
                timeoutDurationInHours=24,
                tags=[{"key": k, "value": v} for k, v in metadata.items()],
            )
            return self.poll(created["jobArn"], metadata)

        return self._call("create the batch inference job", send, _AGAIN_START)

    def poll(self, job_id: str, metadata: dict[str, str] | None = None) -> Job:
        return self._call(
            f"read job {job_id}",
            lambda: to_job(self.bedrock.get_model_invocation_job(jobIdentifier=job_id), metadata),
            _AGAIN_WAIT,
        )

    def cancel(self, job_id: str) -> Job:
        self._call(
            f"stop job {job_id}",
            lambda: self.bedrock.stop_model_invocation_job(jobIdentifier=job_id),
            "run `langbatch cancel <batch id>` again later",
        )
        return self.poll(job_id)

    def find(self, metadata: dict[str, str], created_after: float | None = None) -> list[Job]:
        batch_id = metadata.get("langbatch_batch_id")
        if not batch_id:
            return []
        return self._call(
            "list batch inference jobs", lambda: self._jobs_named(_name(batch_id), created_after), _AGAIN_WAIT
        )

    def _jobs_named(self, prefix: str, created_after: float | None = None) -> list[Job]:
        arguments: dict[str, Any] = {"nameContains": prefix, "maxResults": 100}
        if created_after is not None:
            arguments["submitTimeAfter"] = datetime.fromtimestamp(created_after, UTC)
        jobs = []
        while True:
            page = self.bedrock.list_model_invocation_jobs(**arguments)
            for summary in page.get("invocationJobSummaries", []):
                name = summary["jobName"]
                if name == prefix or name.startswith(prefix + "-"):
                    jobs.append(to_job(summary))
            if not page.get("nextToken"):
                return jobs
            arguments["nextToken"] = page["nextToken"]

    def download(self, job: Job, out_dir: Path) -> tuple[Path | None, Path | None]:
        """The ``.jsonl.out`` records, translated; records with no output (a stopped or expired job) are
        written as never run, so the counts stay exact."""
        if job.status not in ("completed", "cancelled", "expired") or not job.input_file_id:
            return None, None
        out_dir.mkdir(parents=True, exist_ok=True)
        output, failures = out_dir / "output.jsonl", out_dir / "errors.jsonl"
        return self._call(
            f"download the results of job {job.id}",
            lambda: self._download(job, output, failures),
            _AGAIN_WAIT,
        )

    def _download(self, job: Job, output: Path, failures: Path) -> tuple[Path | None, Path | None]:
        bucket, key = _split(job.output_file_id or "")
        answered: dict[str, dict[str, Any]] = {}
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
            for raw in body.iter_lines():
                if raw.strip():
                    record = orjson.loads(raw)
                    answered[record["recordId"]] = record
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise
        in_bucket, in_key = _split(job.input_file_id or "")
        records = self.s3.get_object(Bucket=in_bucket, Key=in_key)["Body"].iter_lines()
        ids = [orjson.loads(raw)["recordId"] for raw in records if raw.strip()]
        created = int(job.created_at) if job.created_at else None
        lines: list[list[bytes]] = [[], []]
        for rid in ids:
            line = _result(rid, answered.get(rid), job, created)
            ok = line["response"] is not None and line["response"]["status_code"] == 200
            lines[0 if ok else 1].append(orjson.dumps(line) + b"\n")
        return _write(output, lines[0]), _write(failures, lines[1])

    def _call(self, action: str, send: Callable[[], T], next_step: str) -> T:
        where = self.connection.describe()
        try:
            return self.retrying.run(send, transient_failure, action=action, where=where, next_step=next_step)
        except NoCredentialsError as exc:
            raise errors.MissingAPIKeyError("AWS_ACCESS_KEY_ID", provider="AWS") from exc
        except ClientError as exc:
            raise translate_error(exc, where, action) from exc
        except BotoCoreError as exc:
            raise errors.ProviderUnavailableError(
                f"Could not {action}: {where} ({exc}). Try again later."
            ) from exc


def job_name(metadata: dict[str, str], key: str) -> str:
    """``lb-<hex>-a1-j1``: Bedrock's job names take letters, digits, - + and . (at most 63)."""
    batch_id, job = metadata.get("langbatch_batch_id"), metadata.get("langbatch_job")
    if batch_id and job:
        return f"{_name(batch_id)}-{job}"[:63]
    return "langbatch-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _name(batch_id: str) -> str:
    return batch_id.replace("_", "-")


def _prefix(metadata: dict[str, str]) -> str:
    batch_id, job = metadata.get("langbatch_batch_id"), metadata.get("langbatch_job")
    if batch_id and job:
        return f"langbatch/{batch_id}/{job}"
    return f"langbatch/direct/{os.urandom(8).hex()}"


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def to_job(native: dict[str, Any], metadata: dict[str, str] | None = None) -> Job:
    """A ``Job`` from ``get_model_invocation_job`` (or a list summary): status in OpenAI's vocabulary, the
    record counts Bedrock gives, the input and output S3 URIs as the file ids."""
    status = STATUSES.get(native.get("status", ""), "in_progress")
    arn, name = native["jobArn"], native.get("jobName", "")
    input_uri = native["inputDataConfig"]["s3InputDataConfig"]["s3Uri"]
    output_root = native["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"].rstrip("/")
    total = native.get("totalRecordCount")
    succeeded, failed = native.get("successRecordCount") or 0, native.get("errorRecordCount") or 0
    if status in ("cancelled", "expired") and total is not None:
        failed = total - succeeded  # records never run count with the failures, as OpenAI counts them
    parts = name.split("-")
    found = (
        {"langbatch_batch_id": "_".join(parts[:2]), "langbatch_job": "-".join(parts[2:])}
        if len(parts) > 3
        else {}
    )
    submitted = native.get("submitTime")
    return Job(
        id=arn,
        status=status,
        metadata=metadata or found,
        created_at=submitted.timestamp() if isinstance(submitted, datetime) else None,
        input_file_id=input_uri,
        output_file_id=f"{output_root}/{arn.rsplit('/', 1)[-1]}/{input_uri.rsplit('/', 1)[-1]}.out",
        request_counts={"total": total or 0, "completed": succeeded, "failed": failed},
        errors=[{"code": "job_failed", "message": native.get("message") or ""}] if status == "failed" else [],
    )


def _result(rid: str, record: dict[str, Any] | None, job: Job, created: int | None) -> dict[str, Any]:
    custom_id = custom_id_of(rid)
    if record is None:
        code, how = _NOT_RUN.get(job.status, ("batch_expired", "ended"))
        return not_run_line(custom_id, code, f"The Bedrock job {how} before this record ran.", native=None)
    if "modelOutput" in record:
        native = {"recordId": rid, "modelOutput": record["modelOutput"]}
        body = chat_completion(record["modelOutput"], created)
        return success_line(custom_id, body, request_id=job.id, native=native)
    error = record.get("error") or {}
    status = error.get("errorCode")
    status = status if isinstance(status, int) else 500
    return api_error_line(
        custom_id, status, str(error.get("errorMessage") or ""), code="model_invocation_error",
        native={"recordId": rid, "error": error},
    )  # fmt: skip


def _write(path: Path, lines: list[bytes]) -> Path | None:
    if not lines:
        return None
    return write_chunks(path, iter(lines))


def transient_failure(exc: BaseException) -> Transient | None:
    """Throttling, 5xx, timeouts and connection errors are worth trying again; the rest are not."""
    if isinstance(exc, ConnectionError):
        return Transient(f"connection error ({type(exc).__name__})")
    if not isinstance(exc, ClientError):
        return None
    meta = exc.response.get("ResponseMetadata", {})
    status = meta.get("HTTPStatusCode") or 0
    code = exc.response.get("Error", {}).get("Code", "")
    if status in (408, 429) or status >= 500 or code in ("ThrottlingException", "TooManyRequestsException"):
        retry_after = parse_retry_after((meta.get("HTTPHeaders") or {}).get("retry-after"))
        return Transient(f"{status} {code}", retry_after=retry_after, status_code=status)
    return None


def translate_error(exc: ClientError, where: str, action: str) -> errors.LangBatchError:
    error = exc.response.get("Error", {})
    code, message = error.get("Code"), error.get("Message") or str(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    kind: type[errors.ProviderError]
    if code in ("AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException"):
        kind = errors.AuthenticationError
        meaning = f"refused the AWS credentials ({message}). Check them and the role's permissions."
    elif code in ("ResourceNotFoundException", "NoSuchKey", "NoSuchBucket"):
        kind, meaning = errors.ProviderNotFoundError, f"does not know it ({message})."
    elif code in ("ThrottlingException", "ServiceQuotaExceededException"):
        kind, meaning = errors.RateLimitError, f"is throttling ({message}). Wait and try again."
    else:
        kind, meaning = errors.ProviderError, f"answered {code} ({message})."
    return kind(f"Could not {action}: {where} {meaning}", status_code=status, code=code)
