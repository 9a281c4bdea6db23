"""A real HTTP server following the Gemini API's Files + Batch Mode contract, for ``google-genai`` to talk to.

    with GeminiServer() as gemini:             # gemini.url: the SDK's base_url (it adds /v1/ or /v1beta/)
        Connection.gemini(base_url=gemini.url)        # key: GEMINI_API_KEY=test-gemini-key
        gemini.batches                                # id -> batch state
        gemini.fail_next("POST", "/v1/models/", 429)   # the next such call answers 429

Files are uploaded with Google's resumable protocol (a ``start`` call answering ``x-goog-upload-url``, then
``upload, finalize``) and listed, read and downloaded (``files/<id>:download?alt=media``). A batch
(``models/<model>:batchGenerateContent``, an operation whose ``metadata`` is the batch) moves on as it is
read: BATCH_STATE_PENDING, then RUNNING (``per_poll`` requests answered a read), then SUCCEEDED with a
results file of ``{key, response | error}`` lines; EXPIRED after ``expire_after`` reads (no results, as
documented); a cancel makes it CANCELLED (the answers so far in its results file). An answer echoes the
last user text (``echo: <text>``); markers: ``[[400]]`` a refused request, ``[[length]]`` MAX_TOKENS,
``[[safety]]`` SAFETY; a request with tools answers with a functionCall.
"""

from __future__ import annotations

import datetime
import itertools
import uuid
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from support.app_server import AppServer, lose_answer

KEY = "test-gemini-key"
LOST = -1  # a fault: do the call, answer 502
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"}


class GeminiServer(AppServer):
    def __init__(self, *, per_poll: int | None = None, expire_after: int | None = None) -> None:
        self.per_poll, self.expire_after = per_poll, expire_after
        self.files: dict[str, dict[str, Any]] = {}  # "files/<id>" -> File JSON
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}  # "batches/<id>" -> state
        self.faults: list[tuple[str, str, int]] = []
        self._sessions: dict[str, dict[str, Any]] = {}
        self._ticks = itertools.count()
        super().__init__(self._app())

    def fail_next(self, method: str, path_prefix: str, status: int) -> None:
        self.faults.append((method, path_prefix, status))

    def lose_next(self, method: str, path_prefix: str) -> None:
        """The next such call is done, but its answer is lost: the client gets a 502."""
        self.faults.append((method, path_prefix, LOST))

    def received_requests(self) -> list[dict[str, Any]]:
        """Every request of every uploaded batch file (``{key, request}``), in order."""
        lines: list[dict[str, Any]] = []
        for name, data in self.contents.items():
            if self.files[name]["source"] == "UPLOADED":
                lines += _lines(data)
        return lines

    def _app(self) -> Starlette:
        routes = []
        for version in ("v1", "v1beta"):  # google-genai 3.x speaks v1 unless told otherwise
            routes += [
                Route(f"/upload/{version}/files", self.upload, methods=["POST"]),
                Route(f"/{version}/files", self.list_files, methods=["GET"]),
                Route(f"/{version}/files/{{rest}}", self.file, methods=["GET"]),
                Route(f"/{version}/models/{{rest}}", self.create, methods=["POST"]),
                Route(f"/{version}/batches", self.list_batches, methods=["GET"]),
                Route(f"/{version}/batches/{{rest}}", self.batch, methods=["GET", "POST"]),
            ]
        app = Starlette(routes=routes)
        app.add_middleware(_Guard, server=self)  # type: ignore[arg-type]
        return app

    async def upload(self, request: Request) -> Response:
        command = request.headers.get("x-goog-upload-command", "")
        if command == "start":
            spec = orjson.loads(await request.body() or b"{}").get("file", {})
            session = uuid.uuid4().hex
            self._sessions[session] = {"spec": spec, "data": b""}
            url = f"{self.url}{request.url.path}?upload_id={session}&upload_protocol=resumable"
            return JSONResponse({}, headers={"x-goog-upload-url": url, "x-goog-upload-status": "active"})
        session = self._sessions[request.query_params["upload_id"]]
        session["data"] += await request.body()
        if "finalize" not in command:
            return JSONResponse({}, headers={"x-goog-upload-status": "active"})
        name = f"files/{uuid.uuid4().hex[:12]}"
        spec = session["spec"]  # proto3 JSON: either field name is accepted
        self._store(name, session["data"], spec.get("displayName", spec.get("display_name")), "UPLOADED")
        return JSONResponse({"file": self.files[name]}, headers={"x-goog-upload-status": "final"})

    async def list_files(self, request: Request) -> Response:
        return JSONResponse({"files": list(self.files.values())})

    async def file(self, request: Request) -> Response:
        rest = request.path_params["rest"]
        name = f"files/{rest.partition(':')[0]}"
        if name not in self.files:
            return _error(404, f"File {name} not found", "NOT_FOUND")
        if rest.endswith(":download"):
            return Response(self.contents[name], media_type="application/octet-stream")
        return JSONResponse(self.files[name])

    async def create(self, request: Request) -> Response:
        model, _, verb = request.path_params["rest"].partition(":")
        if verb != "batchGenerateContent":
            return _error(404, f"Method {verb} not found", "NOT_FOUND")
        spec = orjson.loads(await request.body())["batch"]
        file_name = spec["inputConfig"]["fileName"]
        if file_name not in self.contents:
            return _error(404, f"File {file_name} not found", "NOT_FOUND")
        name = f"batches/{uuid.uuid4().hex[:12]}"
        self.batches[name] = {
            "model": f"models/{model}", "spec": spec, "lines": _lines(self.contents[file_name]), "done": [],
            "state": "PENDING", "reads": 0, "created": self._now(), "output": None,
        }  # fmt: skip
        return JSONResponse(self._operation(name))

    async def list_batches(self, request: Request) -> Response:
        names = sorted(self.batches, key=lambda n: self.batches[n]["created"], reverse=True)
        return JSONResponse({"operations": [self._operation(n) for n in names]})

    async def batch(self, request: Request) -> Response:
        rest = request.path_params["rest"]
        name = f"batches/{rest.partition(':')[0]}"
        if name not in self.batches:
            return _error(404, f"Batch {name} not found", "NOT_FOUND")
        if request.method == "POST" and rest.endswith(":cancel"):
            state = self.batches[name]
            if state["state"] not in TERMINAL:
                self._finish(state, "CANCELLED")
            return JSONResponse({})
        self._advance(self.batches[name])
        return JSONResponse(self._operation(name))

    def _advance(self, state: dict[str, Any]) -> None:
        if state["state"] == "PENDING":
            state["state"] = "RUNNING"
            return
        if state["state"] != "RUNNING":
            return
        state["reads"] += 1
        if self.expire_after is not None and state["reads"] > self.expire_after:
            state["state"] = "EXPIRED"  # no results: the documented contract of an expired batch
            return
        todo = state["lines"][len(state["done"]) :]
        for line in todo[: self.per_poll or len(todo)]:
            state["done"].append(_answer(line, state["model"]))
        if len(state["done"]) == len(state["lines"]):
            self._finish(state, "SUCCEEDED")

    def _finish(self, state: dict[str, Any], final: str) -> None:
        state["state"] = final
        if state["done"]:
            name = f"files/batch-{uuid.uuid4().hex[:12]}"
            data = b"".join(orjson.dumps(line) + b"\n" for line in state["done"])
            self._store(name, data, None, "GENERATED")
            state["output"] = name

    def _operation(self, name: str) -> dict[str, Any]:
        state = self.batches[name]
        failed = sum(1 for line in state["done"] if "error" in line)
        total, done = len(state["lines"]), len(state["done"])
        batch = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
            "model": state["model"], "name": name, "displayName": state["spec"].get("displayName"),
            "inputConfig": state["spec"]["inputConfig"], "createTime": state["created"],
            "updateTime": self._now(), "state": f"BATCH_STATE_{state['state']}",
            "batchStats": {
                "requestCount": str(total), "successfulRequestCount": str(done - failed),
                "failedRequestCount": str(failed), "pendingRequestCount": str(total - done),
            },
        }  # fmt: skip
        if state["output"]:
            batch["output"] = {"responsesFile": state["output"]}
        return {"name": name, "metadata": batch, "done": state["state"] in TERMINAL}

    def _store(self, name: str, data: bytes, display: str | None, source: str) -> None:
        self.contents[name] = data
        self.files[name] = {
            "name": name, "displayName": display, "mimeType": "application/jsonl",
            "sizeBytes": str(len(data)), "createTime": self._now(), "updateTime": self._now(),
            "state": "ACTIVE", "source": source,
            "uri": f"{self.url}/v1/{name}",
        }  # fmt: skip
        if source == "GENERATED":
            self.files[name]["downloadUri"] = f"{self.url}/v1/{name}:download?alt=media"

    def _now(self) -> str:
        """RFC 3339 with nanoseconds, as Google sends them; strictly increasing."""
        moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(microseconds=next(self._ticks))
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


class _Guard:
    """Checks the key (a wrong one: 400 API_KEY_INVALID, as Google answers) and plays scripted faults."""

    def __init__(self, app: Any, server: GeminiServer) -> None:
        self.app, self.server = app, server

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method, path = scope["method"], scope["path"]
        session = b"upload_id=" in scope.get("query_string", b"")  # an upload session's URL is its credential
        if not session and dict(scope["headers"]).get(b"x-goog-api-key") != KEY.encode():
            details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
            answer = _error(
                400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT", details
            )
            return await answer(scope, receive, send)
        for fault in self.server.faults:
            if fault[0] == method and path.startswith(fault[1]):
                self.server.faults.remove(fault)
                if fault[2] == LOST:
                    lost = _error(502, "Bad Gateway", "UNAVAILABLE")
                    return await lose_answer(self.app, scope, receive, send, lost)
                answer = _error(fault[2], f"scripted {fault[2]}", "RESOURCE_EXHAUSTED")
                return await answer(scope, receive, send)
        await self.app(scope, receive, send)


def _error(code: int, message: str, status: str, details: list[Any] | None = None) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, code)


def _lines(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in data.splitlines() if raw.strip()]


def _answer(line: dict[str, Any], model: str) -> dict[str, Any]:
    request = line["request"]
    user = [c for c in request["contents"] if c["role"] == "user"][-1]
    text = "".join(part.get("text", "") for part in user["parts"])
    if "[[400]]" in text:
        error = {
            "code": 400,
            "message": "Request contains an invalid argument.",
            "status": "INVALID_ARGUMENT",
        }
        return {"key": line["key"], "error": error}
    parts: list[dict[str, Any]] = [{"text": f"echo: {text}"}]
    reason = "MAX_TOKENS" if "[[length]]" in text else "SAFETY" if "[[safety]]" in text else "STOP"
    if request.get("tools"):
        name = request["tools"][0]["functionDeclarations"][0]["name"]
        parts = [{"functionCall": {"name": name, "args": {"text": text}}}]
    response = {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": reason, "index": 0}],
        "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3, "totalTokenCount": 10},
        "modelVersion": model.removeprefix("models/"), "responseId": uuid.uuid4().hex[:10],
    }  # fmt: skip
    return {"key": line["key"], "response": response}
