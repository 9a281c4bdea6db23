"""A real HTTP server following Mistral's Files + Batch API, for the official ``mistralai`` SDK to talk to.

    with MistralServer() as mistral:          # mistral.url: the server URL (the SDK adds /v1/...)
        Connection.mistral(base_url=mistral.url)     # key: MISTRAL_API_KEY=test-mistral-key
        mistral.jobs                                # id -> job state (status, lines done, ...)
        mistral.fail_next("POST", "/v1/batch/jobs", 429)   # the next such call answers 429 (Retry-After)

Statuses move on as jobs are read: QUEUED, then RUNNING (``per_poll`` requests answered at each read),
then SUCCESS (all answered), TIMEOUT_EXCEEDED (after ``timeout_after`` reads of a running job: partial
results) or CANCELLED (a read after a cancel: CANCELLATION_REQUESTED first). Results go to an output file
(answered lines) and an error file (refused lines); requests never run are in neither, as Mistral does.
A chat answer echoes the last user message (``echo: <text>``); markers in it: ``[[400]]`` refuses the
request, ``[[length]]`` ends it with ``model_length``; a request with tools answers with a tool call.
"""

from __future__ import annotations

import datetime
import itertools
import time
import uuid
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from support.app_server import AppServer, lose_answer

KEY = "test-mistral-key"
LOST = -1  # a fault: do the call, answer 502
TERMINAL = {"SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED"}


class MistralServer(AppServer):
    def __init__(self, *, per_poll: int | None = None, timeout_after: int | None = None) -> None:
        self.per_poll, self.timeout_after = per_poll, timeout_after
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.faults: list[tuple[str, str, int]] = []
        self.calls: list[tuple[str, str]] = []
        self._clock = itertools.count(int(time.time()))
        super().__init__(self._app())

    def fail_next(self, method: str, path_prefix: str, status: int) -> None:
        self.faults.append((method, path_prefix, status))

    def lose_next(self, method: str, path_prefix: str) -> None:
        """The next such call is done, but its answer is lost: the client gets a 502."""
        self.faults.append((method, path_prefix, LOST))

    def received_bodies(self) -> list[dict[str, Any]]:
        """Every request body of every uploaded batch file, in order."""
        return [line["body"] for data in self.contents.values() for line in _lines(data) if "body" in line]

    def _app(self) -> Starlette:
        routes = [
            Route("/v1/files", self.upload, methods=["POST"]),
            Route("/v1/files", self.list_files, methods=["GET"]),
            Route("/v1/files/{file_id}/content", self.content, methods=["GET"]),
            Route("/v1/batch/jobs", self.create, methods=["POST"]),
            Route("/v1/batch/jobs", self.list_jobs, methods=["GET"]),
            Route("/v1/batch/jobs/{job_id}", self.get, methods=["GET"]),
            Route("/v1/batch/jobs/{job_id}/cancel", self.cancel, methods=["POST"]),
        ]
        app = Starlette(routes=routes)
        app.add_middleware(_Guard, server=self)  # type: ignore[arg-type]
        return app

    async def upload(self, request: Request) -> Response:
        form = await request.form()
        upload = form["file"]
        data = await upload.read()  # type: ignore[union-attr]
        file_id = str(uuid.uuid4())
        self.contents[file_id] = data
        self.files[file_id] = self._file(file_id, upload.filename, data, "batch_request")  # type: ignore[union-attr]
        return JSONResponse(self.files[file_id])

    async def list_files(self, request: Request) -> Response:
        search = request.query_params.get("search")
        data = [f for f in self.files.values() if not search or search in f["filename"]]
        return JSONResponse({"data": data, "object": "list", "total": len(data)})

    async def content(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if file_id not in self.contents:
            return _error(404, f"File {file_id} not found")
        return Response(self.contents[file_id], media_type="application/octet-stream")

    async def create(self, request: Request) -> Response:
        spec = orjson.loads(await request.body())
        [file_id] = spec["input_files"]
        if file_id not in self.contents:
            return _error(404, f"Input file {file_id} not found")
        lines = _lines(self.contents[file_id])
        job_id = str(uuid.uuid4())
        self.jobs[job_id] = {
            "spec": spec, "lines": lines, "done": [], "status": "QUEUED", "reads": 0,
            "created_at": next(self._clock), "output_file": None, "error_file": None,
        }  # fmt: skip
        return JSONResponse(self._job(job_id))

    async def list_jobs(self, request: Request) -> Response:
        query = request.query_params
        page, size = int(query.get("page", 0)), int(query.get("page_size", 100))
        after = query.get("created_after")
        since = datetime.datetime.fromisoformat(after).timestamp() if after else 0
        ids = sorted(self.jobs, key=lambda j: self.jobs[j]["created_at"], reverse=True)
        ids = [j for j in ids if self.jobs[j]["created_at"] >= since]
        data = [self._job(j) for j in ids[page * size : (page + 1) * size]]
        return JSONResponse({"data": data, "object": "list", "total": len(ids)})

    async def get(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if job_id not in self.jobs:
            return _error(404, f"Batch job {job_id} not found")
        self._advance(job_id)
        return JSONResponse(self._job(job_id))

    async def cancel(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if job_id not in self.jobs:
            return _error(404, f"Batch job {job_id} not found")
        job = self.jobs[job_id]
        if job["status"] not in TERMINAL:
            job["status"] = "CANCELLATION_REQUESTED"
        return JSONResponse(self._job(job_id))

    def _advance(self, job_id: str) -> None:
        job = self.jobs[job_id]
        if job["status"] == "QUEUED":
            job["status"] = "RUNNING"
            return
        if job["status"] == "CANCELLATION_REQUESTED":
            return self._finish(job, "CANCELLED")
        if job["status"] != "RUNNING":
            return
        job["reads"] += 1
        todo = job["lines"][len(job["done"]) :]
        for line in todo[: self.per_poll or len(todo)]:
            job["done"].append(_answer(line, job["spec"].get("model")))
        if len(job["done"]) == len(job["lines"]):
            self._finish(job, "SUCCESS")
        elif self.timeout_after is not None and job["reads"] >= self.timeout_after:
            self._finish(job, "TIMEOUT_EXCEEDED")

    def _finish(self, job: dict[str, Any], status: str) -> None:
        job["status"] = status
        ok = [line for line in job["done"] if line["response"]["status_code"] < 400]
        refused = [line for line in job["done"] if line["response"]["status_code"] >= 400]
        for name, lines, kind in (
            ("output_file", ok, "batch_result"),
            ("error_file", refused, "batch_error"),
        ):
            if lines:
                file_id = str(uuid.uuid4())
                data = b"".join(orjson.dumps(line) + b"\n" for line in lines)
                self.contents[file_id] = data
                self.files[file_id] = self._file(file_id, f"{file_id}.jsonl", data, kind)
                job[name] = file_id

    def _job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        done = job["done"]
        failed = sum(1 for line in done if line["response"]["status_code"] >= 400)
        return {
            "id": job_id, "object": "batch", "input_files": job["spec"]["input_files"],
            "metadata": job["spec"].get("metadata"), "endpoint": job["spec"]["endpoint"],
            "model": job["spec"].get("model"), "output_file": job["output_file"],
            "error_file": job["error_file"],
            "errors": [], "status": job["status"], "created_at": job["created_at"],
            "total_requests": len(job["lines"]), "completed_requests": len(done),
            "succeeded_requests": len(done) - failed, "failed_requests": failed,
            "started_at": job["created_at"], "completed_at": None,
        }  # fmt: skip

    def _file(self, file_id: str, name: str, data: bytes, kind: str) -> dict[str, Any]:
        return {
            "id": file_id, "object": "file", "size_bytes": len(data), "created_at": int(time.time()),
            "filename": name, "purpose": "batch", "sample_type": kind, "source": "upload",
            "num_lines": data.count(b"\n"),
        }  # fmt: skip


class _Guard:
    """Checks the key, records the call, and plays scripted faults (a 429 carries Retry-After)."""

    def __init__(self, app: Any, server: MistralServer) -> None:
        self.app, self.server = app, server

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method, path = scope["method"], scope["path"]
        self.server.calls.append((method, path))
        headers = dict(scope["headers"])
        if headers.get(b"authorization") != f"Bearer {KEY}".encode():
            return await JSONResponse({"message": "Unauthorized", "request_id": "r"}, 401)(
                scope, receive, send
            )
        for fault in self.server.faults:
            if fault[0] == method and path.startswith(fault[1]):
                self.server.faults.remove(fault)
                if fault[2] == LOST:
                    return await lose_answer(self.app, scope, receive, send, _error(502, "Bad Gateway"))
                extra = {"Retry-After": "0"} if fault[2] == 429 else {}
                answer = _error(fault[2], f"scripted {fault[2]}", extra)
                return await answer(scope, receive, send)
        await self.app(scope, receive, send)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"object": "error", "message": message, "type": "invalid_request_error", "code": str(status)}
    return JSONResponse(body, status, headers=headers)


def _lines(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in data.splitlines() if raw.strip()]


def _answer(line: dict[str, Any], job_model: str | None) -> dict[str, Any]:
    body = line["body"]
    model = job_model or body.get("model")
    if "input" in body:
        data = [{"object": "embedding", "embedding": [0.5, 0.25], "index": 0}]
        answer = {"id": "e1", "object": "list", "data": data, "model": model, "usage": _usage()}
        return {
            "id": str(uuid.uuid4()),
            "custom_id": line["custom_id"],
            "response": _ok(answer),
            "error": None,
        }
    last = body["messages"][-1].get("content")
    text = last if isinstance(last, str) else "".join(p.get("text", "") for p in last if isinstance(p, dict))
    if "[[400]]" in text:
        refusal = {
            "object": "error",
            "message": "Invalid model: no such model",
            "type": "invalid_model",
            "code": "1500",
        }
        response = {"status_code": 400, "body": refusal}
        return {"id": str(uuid.uuid4()), "custom_id": line["custom_id"], "response": response, "error": None}
    message: dict[str, Any] = {"role": "assistant", "content": f"echo: {text}", "tool_calls": None}
    reason = "model_length" if "[[length]]" in text else "stop"
    if body.get("tools"):
        name = body["tools"][0]["function"]["name"]
        call = {"id": "call1", "type": "function", "function": {"name": name, "arguments": {"text": text}}}
        message, reason = {"role": "assistant", "content": "", "tool_calls": [call]}, "tool_calls"
    answer = {
        "id": f"cmpl-{uuid.uuid4().hex[:8]}", "object": "chat.completion", "model": model,
        "created": int(time.time()), "usage": _usage(),
        "choices": [{"index": 0, "message": message, "finish_reason": reason}],
    }  # fmt: skip
    return {"id": str(uuid.uuid4()), "custom_id": line["custom_id"], "response": _ok(answer), "error": None}


def _ok(body: dict[str, Any]) -> dict[str, Any]:
    return {"status_code": 200, "body": body}


def _usage() -> dict[str, int]:
    return {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
