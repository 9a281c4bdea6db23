"""A real HTTP server following Anthropic's documented Message Batches contract, for the official
``anthropic`` SDK to talk to (``anthropic.Anthropic(base_url=server.base_url)``).

    with AnthropicServer(processing_seconds=0.2) as server:
        ...                      # POST/GET /v1/messages/batches, /{id}, /{id}/cancel, /{id}/results
        server.created           # the create bodies it accepted, in order
        server.inject(429, times=2, retry_after=0.05)   # the next 2 calls answer 429 with retry-after

Contract followed (https://docs.claude.com/en/api/creating-message-batches and the batch-processing guide):
a batch is ``in_progress`` with every request counted as ``processing`` until processing ends, then
``ended`` with ``succeeded/errored/canceled/expired`` counts and a ``results_url``; results are JSONL in any
order (this server writes them in reverse). ``cancel`` makes it ``canceling`` and then ``ended``, requests not
yet done ``canceled``. A batch still unfinished ``expire_seconds`` after creation ends with the rest
``expired``. Errors are ``{"type": "error", "error": {"type", "message"}}`` with Anthropic's statuses.

Answers are deterministic: ``"echo: <last user text>"`` (a ``tool_use`` of the first tool when
``tool_choice`` forces one; the JSON ``{"answer": "echo: ..."}`` with ``output_config.format``). Markers in
the last user text: ``[[error]]`` errors the request (invalid_request_error), ``[[overloaded]]`` errors it
with overloaded_error, ``[[slow]]`` keeps it processing until the batch expires or is canceled.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from support.app_server import AppServer

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}\Z")
STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "not_found_error": 404,
    "rate_limit_error": 429,
}


def _rfc3339(moment: float | None) -> str | None:
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z") if moment else None


class _Batch:
    def __init__(self, batch_id: str, requests: list[dict[str, Any]], created: float) -> None:
        self.id, self.requests, self.created = batch_id, requests, created
        self.cancel_at: float | None = None
        self.ended_at: float | None = None
        self.outcomes: dict[str, str] = {}


class AnthropicServer(AppServer):
    def __init__(
        self, *, processing_seconds: float = 0.2, expire_seconds: float = 86_400.0,
        cancel_seconds: float = 0.1, api_key: str = "test-key",
    ) -> None:  # fmt: skip
        self.processing_seconds, self.expire_seconds = processing_seconds, expire_seconds
        self.cancel_seconds, self.api_key = cancel_seconds, api_key
        self.batches: dict[str, _Batch] = {}
        self.created: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self._faults: list[tuple[int, float | None]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        route = Route("/v1/messages/batches{rest:path}", self._dispatch, methods=["GET", "POST"])
        super().__init__(Starlette(routes=[route]))

    @property
    def base_url(self) -> str:
        return self.url

    def inject(self, status: int, *, times: int = 1, retry_after: float | None = None) -> None:
        """The next ``times`` calls answer ``status`` (a 429 or 529 with ``retry-after`` when given)."""
        self._faults += [(status, retry_after)] * times

    # ------------------------------------------------------------------------------------------ state

    def _refresh(self, batch: _Batch, now: float) -> None:
        """Moves a batch along its documented life: processing, then ended (done, canceled or expired)."""
        if batch.ended_at is not None:
            return
        done_at = batch.created + self.processing_seconds
        expire_at = batch.created + self.expire_seconds
        cancel_done = batch.cancel_at + self.cancel_seconds if batch.cancel_at is not None else None
        slow = [r for r in batch.requests if "[[slow]]" in last_user_text(r["params"])]
        for request in batch.requests:
            if (
                now >= done_at
                and request not in slow
                and (batch.cancel_at is None or batch.cancel_at >= done_at)
            ):
                batch.outcomes.setdefault(request["custom_id"], _outcome(request))
        if cancel_done is not None and now >= cancel_done:
            batch.ended_at = cancel_done
            rest = "canceled"
        elif now >= expire_at:
            batch.ended_at, rest = expire_at, "expired"
        elif len(batch.outcomes) == len(batch.requests):
            batch.ended_at, rest = max(done_at, batch.created), ""
        else:
            return
        for request in batch.requests:
            batch.outcomes.setdefault(request["custom_id"], rest)

    def _view(self, batch: _Batch) -> dict[str, Any]:
        self._refresh(batch, time.time())
        counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled", "expired"), 0)
        if batch.ended_at is None:
            counts["processing"] = len(batch.requests)
            status = "canceling" if batch.cancel_at is not None else "in_progress"
        else:
            for outcome in batch.outcomes.values():
                counts[outcome] += 1
            status = "ended"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": counts,
            "created_at": _rfc3339(batch.created),
            "expires_at": _rfc3339(batch.created + 86_400),
            "ended_at": _rfc3339(batch.ended_at),
            "cancel_initiated_at": _rfc3339(batch.cancel_at),
            "archived_at": None,
            "results_url": f"{self.base_url}/v1/messages/batches/{batch.id}/results"
            if batch.ended_at
            else None,
        }

    # ------------------------------------------------------------------------------------------ routes

    async def _dispatch(self, request: Request) -> Response:
        self.calls.append(f"{request.method} {request.url.path}")
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_key not in (request.headers.get("x-api-key"), bearer):
            return _error(401, "authentication_error", "invalid x-api-key")
        if self._faults:
            status, retry_after = self._faults.pop(0)
            headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
            kinds = {400: "invalid_request_error", 429: "rate_limit_error", 529: "overloaded_error"}
            kind = kinds.get(status, "api_error")
            return _error(status, kind, f"injected {status}", headers)
        parts = [p for p in request.url.path.split("/") if p][3:]  # after v1/messages/batches
        with self._lock:
            if request.method == "POST" and not parts:
                return self._create(orjson.loads(await request.body()))
            if request.method == "GET" and not parts:
                return self._list(request)
            batch = self.batches.get(parts[0]) if parts else None
            if batch is None:
                return _error(404, "not_found_error", "No such message batch.")
            if request.method == "GET" and len(parts) == 1:
                return _json(self._view(batch))
            if request.method == "POST" and parts[1:] == ["cancel"]:
                self._refresh(batch, time.time())
                if batch.ended_at is None and batch.cancel_at is None:
                    batch.cancel_at = time.time()
                return _json(self._view(batch))
            if request.method == "GET" and parts[1:] == ["results"]:
                return self._results(batch)
        return _error(404, "not_found_error", "Not found.")

    def _create(self, body: dict[str, Any]) -> Response:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            return _error(400, "invalid_request_error", "requests: at least one request is required")
        seen = set()
        for index, entry in enumerate(requests):
            custom_id, params = entry.get("custom_id"), entry.get("params") or {}
            if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
                return _error(
                    400,
                    "invalid_request_error",
                    f"requests.{index}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'",
                )
            if custom_id in seen:
                return _error(400, "invalid_request_error", f"Duplicate custom_id {custom_id}")
            seen.add(custom_id)
            for field in ("model", "max_tokens", "messages"):
                if field not in params:
                    return _error(
                        400, "invalid_request_error", f"requests.{index}.params.{field}: Field required"
                    )
        batch = _Batch(f"msgbatch_{next(self._ids):08d}", requests, time.time())
        self.batches[batch.id] = batch
        self.created.append(body)
        return _json(self._view(batch))

    def _list(self, request: Request) -> Response:
        newest_first = sorted(self.batches.values(), key=lambda b: (b.created, b.id), reverse=True)
        after = request.query_params.get("after_id")
        if after:
            ids = [b.id for b in newest_first]
            newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
        limit = int(request.query_params.get("limit") or 20)
        page = newest_first[:limit]
        data = [self._view(b) for b in page]
        return _json(
            {
                "data": data,
                "has_more": len(newest_first) > limit,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    def _results(self, batch: _Batch) -> Response:
        self._refresh(batch, time.time())
        if batch.ended_at is None:
            return _error(404, "not_found_error", "Results are not available until the batch ends.")
        lines = [
            orjson.dumps({"custom_id": r["custom_id"], "result": _result(r, batch.outcomes[r["custom_id"]])})
            for r in reversed(batch.requests)
        ]
        return Response(b"\n".join(lines) + b"\n", media_type="application/binary")


def last_user_text(params: dict[str, Any]) -> str:
    for message in reversed(params.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "".join(b.get("text", "") for b in content if b.get("type") == "text")
    return ""


def _outcome(request: dict[str, Any]) -> str:
    text = last_user_text(request["params"])
    return "errored" if "[[error]]" in text or "[[overloaded]]" in text else "succeeded"


def _result(request: dict[str, Any], outcome: str) -> dict[str, Any]:
    params = request["params"]
    if outcome == "errored":
        kind = "overloaded_error" if "[[overloaded]]" in last_user_text(params) else "invalid_request_error"
        return {
            "type": "errored",
            "error": {
                "type": "error",
                "error": {"type": kind, "message": f"{kind} for this request"},
                "request_id": "req_test",
            },
        }
    if outcome != "succeeded":
        return {"type": outcome}
    text = f"echo: {last_user_text(params)}"
    choice = params.get("tool_choice") or {}
    if params.get("tools") and choice.get("type") in ("any", "tool"):
        name = choice.get("name") or params["tools"][0]["name"]
        content = [
            {"type": "tool_use", "id": f"toolu_{request['custom_id']}", "name": name, "input": {"text": text}}
        ]
        stop = "tool_use"
    else:
        if (params.get("output_config") or {}).get("format"):
            text = orjson.dumps({"answer": text}).decode()
        content, stop = [{"type": "text", "text": text}], "end_turn"
    usage = {
        "input_tokens": len(last_user_text(params).split()) + 3,
        "output_tokens": len(text.split()),
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }
    message = {
        "id": f"msg_{request['custom_id']}",
        "type": "message",
        "role": "assistant",
        "model": params["model"],
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }
    return {"type": "succeeded", "message": message}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_test"}
    return _json(body, status, headers)
