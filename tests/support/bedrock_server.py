"""One real HTTP endpoint serving S3 (moto, in server mode) and Bedrock's batch inference control plane
(this module: moto 5.2 has no model invocation jobs), for ``boto3`` pointed at it with ``endpoint_url``.

    with BedrockServer(processing_seconds=0.2) as server:
        server.base_url          # http://127.0.0.1:<port>; S3 calls are passed to moto as they came
        server.jobs              # jobArn -> the job as Bedrock describes it
        server.inject(429, times=2)   # the next 2 control-plane calls are throttled

Contract followed (https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-data.html,
batch-inference-results.html, the boto3 ``bedrock`` service model): a job reads ``{recordId, modelInput}``
JSONL from S3, goes Submitted → Validating → InProgress → Completed (PartiallyCompleted when some records
failed), Failed when it has fewer than ``min_records`` records, Stopping → Stopped on stop, Expired after
``expire_seconds``; it writes ``<output>/<job id>/<input name>.out`` (``modelOutput`` or ``error`` per
record, in input order) and ``manifest.json.out``. ``clientRequestToken`` makes a repeated create return
the first job. Claude answers echo the last user text; ``[[error]]`` fails a record (400), ``[[throttle]]``
(429), ``[[slow]]``
keeps it unprocessed until the job is stopped or expires.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import boto3
import httpx
import orjson
from moto.server import ThreadedMotoServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from support.anthropic_server import last_user_text
from support.app_server import AppServer

ACCOUNT = "123456789012"


class BedrockServer(AppServer):
    def __init__(
        self, *, processing_seconds: float = 0.2, expire_seconds: float = 86_400.0, min_records: int = 100,
        region: str = "us-east-1",
    ) -> None:  # fmt: skip
        self.processing_seconds, self.expire_seconds = processing_seconds, expire_seconds
        self.min_records, self.region = min_records, region
        self.jobs: dict[str, dict[str, Any]] = {}
        self.creates: list[dict[str, Any]] = []
        self._state: dict[str, dict[str, Any]] = {}
        self._faults: list[int] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        methods = ["GET", "POST", "PUT", "HEAD", "DELETE"]
        super().__init__(Starlette(routes=[Route("/{path:path}", self._dispatch, methods=methods)]))

    @property
    def base_url(self) -> str:
        return self.url

    def inject(self, status: int, *, times: int = 1) -> None:
        self._faults += [status] * times

    def s3(self) -> Any:
        host, port = self._moto.get_host_and_port()
        return boto3.client("s3", region_name=self.region, endpoint_url=f"http://{host}:{port}")

    # ------------------------------------------------------------------------------------------ routing

    async def _dispatch(self, request: Request) -> Response:
        scope = request.headers.get("authorization", "")
        if "/bedrock/aws4_request" not in scope:
            return await self._to_moto(request)
        if self._faults:
            status = self._faults.pop(0)
            return _error(
                status, "ThrottlingException" if status == 429 else "InternalServerException", "injected"
            )
        path, method = unquote(request.url.path), request.method
        with self._lock:
            if method == "POST" and path == "/model-invocation-job":
                return self._create(orjson.loads(await request.body()))
            if method == "GET" and path == "/model-invocation-jobs":
                return self._list(request)
            if path.startswith("/model-invocation-job/"):
                rest = path.removeprefix("/model-invocation-job/")
                stop = rest.endswith("/stop")
                job = self._find(rest.removesuffix("/stop"))
                if job is None:
                    return _error(404, "ResourceNotFoundException", "The job does not exist.")
                if stop and method == "POST":
                    self._refresh(job)
                    if job["status"] in ("Submitted", "Validating", "Scheduled", "InProgress"):
                        job["status"], self._state[job["jobArn"]]["stop_at"] = "Stopping", time.time()
                    return _json({})
                return _json(self._view(job))
        return _error(404, "UnknownOperationException", "unknown operation")

    async def _to_moto(self, request: Request) -> Response:
        host, port = self._moto.get_host_and_port()
        url = f"http://{host}:{port}{request.url.path}"
        if request.url.query:
            url += f"?{request.url.query}"
        async with httpx.AsyncClient() as client:
            answer = await client.request(
                request.method, url, headers=dict(request.headers), content=await request.body()
            )
        headers = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        }
        return Response(answer.content, status_code=answer.status_code, headers=headers)

    # ------------------------------------------------------------------------------------------ jobs

    def _create(self, body: dict[str, Any]) -> Response:
        for job in self.jobs.values():
            if body.get("clientRequestToken") and job["clientRequestToken"] == body["clientRequestToken"]:
                return _json({"jobArn": job["jobArn"]})  # the token makes a repeat a no-op
        job_id = f"job{next(self._ids):08d}"
        arn = f"arn:aws:bedrock:{self.region}:{ACCOUNT}:model-invocation-job/{job_id}"
        now = datetime.now(UTC)
        self.jobs[arn] = {
            "jobArn": arn, "jobName": body["jobName"], "modelId": body["modelId"], "roleArn": body["roleArn"],
            "clientRequestToken": body.get("clientRequestToken"), "status": "Submitted", "submitTime": now,
            "lastModifiedTime": now, "inputDataConfig": body["inputDataConfig"],
            "outputDataConfig": body["outputDataConfig"],
            "timeoutDurationInHours": body.get("timeoutDurationInHours", 24),
        }  # fmt: skip
        self._state[arn] = {"created": time.time(), "stop_at": None, "tags": body.get("tags", [])}
        self.creates.append(body)
        return _json({"jobArn": arn})

    def _find(self, identifier: str) -> dict[str, Any] | None:
        return self.jobs.get(identifier) or next(
            (j for a, j in self.jobs.items() if a.endswith("/" + identifier)), None
        )

    def _list(self, request: Request) -> Response:
        contains = request.query_params.get("nameContains") or ""
        jobs = [self._view(j) for j in self.jobs.values() if contains in j["jobName"]]
        return _json({"invocationJobSummaries": sorted(jobs, key=lambda j: j["submitTime"], reverse=True)})

    def _view(self, job: dict[str, Any]) -> dict[str, Any]:
        self._refresh(job)
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in job.items()}

    def _refresh(self, job: dict[str, Any]) -> None:
        state, now = self._state[job["jobArn"]], time.time()
        if job["status"] in ("Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"):
            return
        records = state.get("records")
        if records is None:
            records = state["records"] = self._read_input(job)
            job["totalRecordCount"] = len(records)
            if len(records) < self.min_records:
                job["status"], job["endTime"] = "Failed", datetime.now(UTC)
                job["message"] = (
                    f"The job has {len(records)} records, below the minimum of {self.min_records} records "
                    "per batch inference job."
                )
                return
            job["status"] = "InProgress"
        ready = now >= state["created"] + self.processing_seconds
        done = [r for r in records if ready and "[[slow]]" not in last_user_text(r["modelInput"])]
        if state["stop_at"] is not None:
            self._finish(
                job, done if state["stop_at"] >= state["created"] + self.processing_seconds else [], "Stopped"
            )
        elif now >= state["created"] + self.expire_seconds:
            self._finish(job, done, "Expired")
        elif ready and len(done) == len(records):
            failed = any(
                m in last_user_text(r["modelInput"]) for r in records for m in ("[[error]]", "[[throttle]]")
            )
            self._finish(job, done, "PartiallyCompleted" if failed else "Completed")

    def _read_input(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        bucket, _, key = (
            job["inputDataConfig"]["s3InputDataConfig"]["s3Uri"].removeprefix("s3://").partition("/")
        )
        body = self.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
        return [orjson.loads(line) for line in body.splitlines() if line.strip()]

    def _finish(self, job: dict[str, Any], done: list[dict[str, Any]], status: str) -> None:
        lines, succeeded = [], 0
        for record in done:
            text = last_user_text(record["modelInput"])
            out = {"recordId": record["recordId"], "modelInput": record["modelInput"]}
            if "[[error]]" in text:
                out["error"] = {"errorCode": 400, "errorMessage": "Malformed input request, please reformat."}
            elif "[[throttle]]" in text:
                out["error"] = {"errorCode": 429, "errorMessage": "Too many requests, please wait."}
            else:
                out["modelOutput"] = _message(job["modelId"], text)
                succeeded += 1
            lines.append(orjson.dumps(out))
        job_id = job["jobArn"].rsplit("/", 1)[-1]
        root = job["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"].removeprefix("s3://").rstrip("/")
        bucket, _, prefix = root.partition("/")
        name = job["inputDataConfig"]["s3InputDataConfig"]["s3Uri"].rsplit("/", 1)[-1]
        s3 = self.s3()
        if lines:
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{job_id}/{name}.out", Body=b"\n".join(lines) + b"\n")
        manifest = {
            "totalRecordCount": job["totalRecordCount"], "processedRecordCount": len(done),
            "successRecordCount": succeeded, "errorRecordCount": len(done) - succeeded,
        }  # fmt: skip
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{job_id}/manifest.json.out", Body=orjson.dumps(manifest))
        job.update(
            status=status, endTime=datetime.now(UTC), processedRecordCount=len(done),
            successRecordCount=succeeded, errorRecordCount=len(done) - succeeded,
        )  # fmt: skip

    # ------------------------------------------------------------------------------------------ thread

    def start(self) -> BedrockServer:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
        self._moto.start()
        super().start()
        return self

    def stop(self) -> None:
        super().stop()
        self._moto.stop()


def _message(model: str, text: str) -> dict[str, Any]:
    answer = f"echo: {text}"
    return {
        "id": "msg_bdrk_1", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": len(text.split()) + 3, "output_tokens": len(answer.split())},
    }  # fmt: skip


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    return Response(
        orjson.dumps({"message": message}), status_code=status, media_type="application/json",
        headers={"x-amzn-errortype": code},
    )  # fmt: skip
