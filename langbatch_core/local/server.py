"""The local engine's HTTP API: OpenAI's Files + Batches endpoints (a starlette app), plus ``/health``.

    core = EngineCore(Path("/tmp/data/engine"), make_backend("upstream:http://127.0.0.1:8000/v1"))
    app = build_app(core)          # serve with uvicorn; the lifespan starts and stops the batch runs

Errors have OpenAI's shape ``{"error": {"message", "type", "param", "code"}}`` and status codes (400 bad
parameters, 404 unknown ids or routes, 405 wrong method).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from langbatch_core.local.backends import Backend
from langbatch_core.local.batches import TERMINAL, BatchManager, EngineSettings, public
from langbatch_core.local.executor import Executor, ExecutorSettings
from langbatch_core.local.speed import read_speed
from langbatch_core.local.state import EngineState

logger = logging.getLogger(__name__)
BATCH_ENDPOINTS = frozenset({"/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/responses"})
FILE_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
WINDOW = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DAY = 86400.0
MAX_WINDOW = 366 * DAY  # longer windows are typos (and overflow the 64-bit timestamps)
MAX_JSON_BODY = 1024 * 1024  # a batch's parameters take a few KB
MULTIPART_OVERHEAD = 64 * 1024  # room for the multipart headers around a file of the maximum size


class APIError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def response(self) -> Response:
        kind = {404: "invalid_request_error", 405: "invalid_request_error"}.get(
            self.status, "invalid_request_error"
        )
        if self.status >= 500:
            kind = "server_error"
        body = {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}
        return json_response(body, self.status)


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


class EngineCore:
    """Everything one engine serves: its state, batch runs and backend (created in the server's loop)."""

    def __init__(
        self,
        root: Path,
        backend: Backend,
        executor_settings: ExecutorSettings | None = None,
        engine_settings: EngineSettings | None = None,
    ) -> None:
        self.root = Path(root)
        self.backend = backend
        self.executor_settings = executor_settings or ExecutorSettings()
        self.engine_settings = engine_settings or EngineSettings()
        self.started_at = time.time()
        self.state: EngineState
        self.manager: BatchManager

    async def startup(self) -> None:
        self.state = EngineState(self.root)
        executor = Executor(self.backend, self.executor_settings)
        self.manager = BatchManager(self.state, executor, self.engine_settings)
        await self.manager.start()

    async def shutdown(self) -> None:
        await self.manager.stop()
        await self.backend.aclose()
        self.state.close()

    def describe(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "pid": os.getpid(),
            "data_dir": str(self.root.parent),
            "started_at": int(self.started_at),
            **self.backend.describe(),
            "running_batches": len(self.manager.runs),
            "speed": read_speed(self.root),
        }


def build_app(core: EngineCore) -> Starlette:
    """The starlette application serving ``core``."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await core.startup()
        try:
            yield
        finally:
            await core.shutdown()

    def route(path: str, handler: Any, method: str) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(core, request)
            except APIError as exc:
                return exc.response()
            except HTTPException as exc:  # starlette's own refusals (e.g. malformed multipart data)
                return APIError(exc.status_code, f"Bad request: {exc.detail}").response()
            except ClientDisconnect:  # the client is gone: nobody reads the answer, nothing was stored
                logger.info("%s %s: the client disconnected", request.method, request.url.path)
                return Response(status_code=400)
            except Exception as exc:  # a bug or a disk problem: answer in OpenAI's shape, keep serving
                logger.exception("%s %s failed", request.method, request.url.path)
                return APIError(500, f"The local engine failed on this request: {exc!r}").response()

        return Route(path, endpoint, methods=[method])

    routes = [
        route("/health", health, "GET"),
        route("/v1/health", health, "GET"),
        route("/v1/files", create_file, "POST"),
        route("/v1/files", list_files, "GET"),
        route("/v1/files/{file_id}", retrieve_file, "GET"),
        route("/v1/files/{file_id}", delete_file, "DELETE"),
        route("/v1/files/{file_id}/content", file_content, "GET"),
        route("/v1/batches", create_batch, "POST"),
        route("/v1/batches", list_batches, "GET"),
        route("/v1/batches/{batch_id}", retrieve_batch, "GET"),
        route("/v1/batches/{batch_id}/cancel", cancel_batch, "POST"),
    ]

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            return APIError(405, "This method is not allowed on this path of the local engine.").response()
        return APIError(exc.status_code, f"Unknown path: {_request.url.path}", code="unknown_url").response()

    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})


# --- handlers ----------------------------------------------------------------------------------------------
async def health(core: EngineCore, _request: Request) -> Response:
    return json_response(core.describe())


async def create_file(core: EngineCore, request: Request) -> Response:
    limit = core.engine_settings.max_file_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise _too_large(limit)
    limited = _size_limited(request, limit + MULTIPART_OVERHEAD, _too_large(limit))
    form = await limited.form(max_files=1, max_fields=10)
    try:
        upload, purpose = form.get("file"), form.get("purpose")
        if upload is None or isinstance(upload, str):
            raise APIError(400, "Missing the 'file' part: upload the file as multipart form data.", "file")
        if purpose not in FILE_PURPOSES:
            message = (
                f"Invalid purpose {purpose!r}: use one of {', '.join(sorted(FILE_PURPOSES))} ('batch' here)."
            )
            raise APIError(400, message, "purpose")
        if upload.size is not None and upload.size > limit:
            raise _too_large(limit)
        if not upload.size:
            raise APIError(400, "The uploaded file is empty: upload one JSON request per line.", "file")
        obj = await _store_upload(core, upload.file, upload.filename or "upload.jsonl", str(purpose))
    finally:
        await form.close()
    return json_response(obj)


def _too_large(limit: int) -> APIError:
    message = (
        f"The file is larger than {limit:,} bytes, the most one file may hold: split it into smaller files."
    )
    return APIError(413, message, "file", "file_too_large")


def _size_limited(request: Request, limit: int, refusal: APIError) -> Request:
    """``request`` whose body stream raises ``refusal`` once more than ``limit`` bytes arrived (chunked
    bodies declare no length): the form parser stops there and removes what it had spooled."""
    received = 0

    async def receive() -> Any:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise refusal
        return message

    return Request(request.scope, receive)


async def _store_upload(core: EngineCore, source: Any, filename: str, purpose: str) -> dict[str, Any]:
    tmp = core.state.files_dir / f".upload-{os.urandom(6).hex()}.tmp"
    try:
        await asyncio.to_thread(_copy_upload, source, tmp)
        return core.state.add_file(tmp, filename, purpose)
    finally:
        tmp.unlink(missing_ok=True)  # gone already when stored; removes a half-copy after a failure


def _copy_upload(source: Any, target: Path) -> None:
    source.seek(0)
    with target.open("wb") as handle:
        shutil.copyfileobj(source, handle, 1 << 20)
        handle.flush()
        os.fsync(handle.fileno())


async def list_files(core: EngineCore, request: Request) -> Response:
    params = request.query_params
    limit = _int_param(params.get("limit"), "limit", 10_000, 1, 10_000)
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise APIError(400, f"Invalid order {order!r}: use 'asc' or 'desc'.", "order")
    purpose = params.get("purpose")
    files = core.state.all("file")
    if purpose:
        files = [f for f in files if f["purpose"] == purpose]
    files = files if order == "asc" else files[::-1]
    after = params.get("after")
    if after:
        ids = [f["id"] for f in files]
        if after not in ids:
            raise APIError(400, f"The cursor 'after={after}' names no file in this list.", "after")
        files = files[ids.index(after) + 1 :]
    page = files[:limit]
    return json_response(_list_body(page, len(files) > limit))


async def retrieve_file(core: EngineCore, request: Request) -> Response:
    return json_response(_file_or_404(core, request.path_params["file_id"]))


async def delete_file(core: EngineCore, request: Request) -> Response:
    file = _file_or_404(core, request.path_params["file_id"])
    # an unfinished batch still reads its input: the bytes go when that batch ends (as on OpenAI)
    core.state.delete_file(file["id"], keep_bytes=core.manager.uses_input(file["id"]))
    return json_response({"id": file["id"], "object": "file", "deleted": True})


async def file_content(core: EngineCore, request: Request) -> Response:
    file = _file_or_404(core, request.path_params["file_id"])
    return FileResponse(core.state.file_path(file["id"]), media_type="application/octet-stream")


async def create_batch(core: EngineCore, request: Request) -> Response:
    too_large = APIError(413, f"The request body is over {MAX_JSON_BODY:,} bytes.", code="body_too_large")
    body = await _size_limited(request, MAX_JSON_BODY, too_large).body()
    try:
        params = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise APIError(400, "The request body is not valid JSON.") from None
    if not isinstance(params, dict):
        raise APIError(400, "The request body must be a JSON object.")
    input_file_id = params.get("input_file_id")
    if not isinstance(input_file_id, str) or not input_file_id:
        raise APIError(
            400, "Missing required parameter: 'input_file_id'.", "input_file_id", "missing_required_parameter"
        )
    file = core.state.get(input_file_id, "file")
    if file is None:
        raise APIError(404, f"No file found with id '{input_file_id}'.", "input_file_id")
    if file["purpose"] != "batch":
        raise APIError(
            400,
            f"File '{input_file_id}' has purpose {file['purpose']!r}; upload it with purpose 'batch'.",
            "input_file_id",
        )
    endpoint = _batch_endpoint(core, params.get("endpoint"))
    label, window = _completion_window(core, params.get("completion_window"))
    metadata = _metadata(params.get("metadata"))
    batch = core.manager.create(input_file_id, endpoint, window, label, metadata)
    return json_response(public(batch))


async def list_batches(core: EngineCore, request: Request) -> Response:
    limit = _int_param(request.query_params.get("limit"), "limit", 20, 1, 100)
    after = request.query_params.get("after")
    page = core.state.page("batch", after=after, limit=limit)
    if page is None:
        raise APIError(400, f"The cursor 'after={after}' names no batch.", "after")
    batches, has_more = page
    live = [public(core.manager.get(b["id"]) or b) for b in batches]
    return json_response(_list_body(live, has_more))


async def retrieve_batch(core: EngineCore, request: Request) -> Response:
    return json_response(public(_batch_or_404(core, request.path_params["batch_id"])))


async def cancel_batch(core: EngineCore, request: Request) -> Response:
    batch = _batch_or_404(core, request.path_params["batch_id"])
    if batch["status"] in TERMINAL - {"cancelled"} or batch["status"] == "finalizing":
        raise APIError(400, f"Cannot cancel a batch with status '{batch['status']}'.", code="invalid_state")
    return json_response(public(core.manager.cancel(batch)))


# --- parameter checks ---------------------------------------------------------------------------------
def _file_or_404(core: EngineCore, file_id: str) -> dict[str, Any]:
    file = core.state.get(file_id, "file")
    if file is None:
        raise APIError(404, f"No such File object: {file_id}", "id")
    return file


def _batch_or_404(core: EngineCore, batch_id: str) -> dict[str, Any]:
    batch = core.manager.get(batch_id)
    if batch is None:
        raise APIError(404, f"No batch found with id '{batch_id}'.", "batch_id")
    return batch


def _list_body(items: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }


def _int_param(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise APIError(400, f"Invalid '{name}': {value!r}; use an integer from {low} to {high}.", name)
    return number


def _batch_endpoint(core: EngineCore, endpoint: Any) -> str:
    if endpoint not in BATCH_ENDPOINTS:
        supported = ", ".join(sorted(BATCH_ENDPOINTS))
        raise APIError(
            400, f"Invalid 'endpoint': {endpoint!r}; the local engine supports {supported}.", "endpoint"
        )
    served = core.backend.endpoints
    if endpoint not in served:
        served_list = ", ".join(sorted(served))
        message = (
            f"The engine's {core.backend.name} backend does not serve {endpoint}; it serves {served_list}."
        )
        raise APIError(400, message, "endpoint", "unsupported_endpoint")
    return endpoint


def _completion_window(core: EngineCore, value: Any) -> tuple[str, float]:
    """'24h' (stretched or shrunk by the engine's --completion-window), or a local duration like '30s'."""
    if value is None:
        raise APIError(
            400, "Missing required parameter: 'completion_window' (use '24h').", "completion_window"
        )
    match = WINDOW.match(value) if isinstance(value, str) else None
    if match is None:
        message = f"Invalid 'completion_window': {value!r}; use '24h' (this engine also takes e.g. '90s')."
        raise APIError(400, message, "completion_window")
    seconds = float(match.group(1)) * UNITS[match.group(2)]
    if not 0 < seconds <= MAX_WINDOW:
        message = f"Invalid 'completion_window': {value!r}; use a duration above zero and at most 366d."
        raise APIError(400, message, "completion_window")
    if value == "24h" and core.engine_settings.completion_window is not None:
        seconds = core.engine_settings.completion_window
    return value, seconds


def _metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise APIError(400, "'metadata' must be an object of string keys and string values.", "metadata")
    if len(value) > 16:
        raise APIError(400, f"'metadata' has {len(value)} keys; at most 16 are allowed.", "metadata")
    for key, item in value.items():
        if len(key) > 64:
            raise APIError(
                400, f"Metadata key {key[:20]!r}... is {len(key)} characters; at most 64.", "metadata"
            )
        if not isinstance(item, str):
            raise APIError(400, f"Metadata value of {key!r} must be a string.", f"metadata.{key}")
        if len(item) > 512:
            raise APIError(
                400, f"Metadata value of {key!r} is {len(item)} characters; at most 512.", f"metadata.{key}"
            )
    return dict(value)
