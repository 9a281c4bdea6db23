"""A small, fast, real HTTP server speaking OpenAI's realtime API, with faults on request.

    with Upstream() as upstream:          # http://127.0.0.1:<port>/v1
        ...                               # POST /v1/chat/completions -> "echo: <last user message>"
        upstream.received                 # every request it got: [{"endpoint", "body"}, ...]
        upstream.authorizations           # the Authorization headers it got

Answers are deterministic: chat and completions echo the last user message (``"echo: <text>"``), embeddings
are fixed-length vectors derived from the text. A marker anywhere in the request body asks for a fault:

    [[429]]  429 with Retry-After (``retry_after`` seconds)   [[500]]  500 server error
    [[400]]  400 invalid request (not retryable)               [[timeout]]  never answers
    [[garbage]]  200 with a body that is not JSON              [[slow:0.5]]  answers after 0.5 s
    [[429date]]  429, Retry-After as an HTTP date             [[429junk]]  429, Retry-After "soon"
    [[error200]]  200 with an OpenAI error body                [[close]]  drops the connection unanswered
    [[huge]]  200 with a valid answer of ``huge_bytes`` bytes (default 1 MB)

A count after a status fault (``[[500x2]]``) fails only the first 2 times that exact body is seen, then
answers normally. ``rpm_limit`` makes it enforce a rate like a provider does (a token bucket: ``rpm_limit/60``
requests a second, bursts up to one second's worth; 429 beyond); ``rejected`` counts those 429s.

Runs in a thread (``start``/``stop``, a context manager) or as a process:
``python tests/support/upstream.py --port 0`` prints its base URL on the first line.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import email.utils
import hashlib
import re
import sys
import threading
import time
from typing import Any

import orjson

FAULT = re.compile(
    rb"\[\[(429date|429junk|429|500|400|timeout|garbage|error200|close|huge|slow:[0-9.]+)(?:x(\d+))?\]\]"
)
CLOSE = -1  # a status meaning: drop the connection without answering
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Server Error"}


class Upstream:
    """An OpenAI-compatible realtime server on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        retry_after: float = 0.05,
        rpm_limit: float | None = None,
        embedding_dim: int = 8,
        model: str | None = None,
        record: bool = True,
        huge_bytes: int = 1 << 20,
    ) -> None:
        self.huge_bytes = huge_bytes
        self.host, self.port = host, port
        self.retry_after = retry_after
        self.rpm_limit = rpm_limit
        self.embedding_dim = embedding_dim
        self.model = model
        self.record = record
        self.received: list[dict[str, Any]] = []
        self.authorizations: list[str] = []  # Authorization headers received
        self.served = 0
        self.rejected = 0
        self._seen: collections.Counter[bytes] = collections.Counter()
        self._tokens = max(1.0, (rpm_limit or 0) / 60.0)
        self._refilled = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def reset(self) -> None:
        """Forget what was received (and the fault counts)."""
        self.received.clear()
        self.authorizations.clear()
        self._seen.clear()
        self.served = self.rejected = 0

    def bodies(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """The request bodies received (optionally only those sent to ``endpoint``)."""
        return [r["body"] for r in list(self.received) if endpoint is None or r["endpoint"] == endpoint]

    # --- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> Upstream:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="test-upstream", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the test upstream did not start within 10 s")
        return self

    def _run(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(self.serve())
        ready.set()
        self._loop.run_forever()
        self._server.close()
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        self._loop.run_until_complete(asyncio.sleep(0))
        self._loop.close()

    async def serve(self) -> asyncio.AbstractServer:
        """Start listening in the running loop (sets ``port``)."""
        server = await asyncio.start_server(self._connection, self.host, self.port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        return server

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop = self._thread = None

    def __enter__(self) -> Upstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- HTTP ------------------------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                method, path, _ = lines[0].split(b" ", 2)
                length = 0
                for line in lines[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                    elif line[:14].lower() == b"authorization:" and self.record:
                        self.authorizations.append(line[14:].strip().decode("latin-1"))
                body = await reader.readexactly(length) if length else b""
                status, headers, payload = await self._answer(method, path.decode(), body)
                if status is None:  # [[timeout]]: hold the connection, never answer
                    await asyncio.sleep(3600)
                    return
                if status == CLOSE:
                    return
                writer.write(_response(status, headers, payload))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:  # the upstream is stopping
            pass
        finally:
            writer.close()

    async def _answer(self, method: bytes, path: str, raw: bytes) -> tuple[int | None, dict, bytes]:
        endpoint = path.split("?", 1)[0]
        if method != b"POST" or endpoint not in HANDLERS:
            return 404, {}, _error(f"Unknown endpoint {method.decode()} {endpoint}", "invalid_request_error")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return (
                400,
                {},
                _error("We could not parse the JSON body of your request.", "invalid_request_error"),
            )
        if self.record:
            self.received.append({"endpoint": endpoint, "body": body, "time": time.monotonic()})
        if self._over_rate():
            self.rejected += 1
            return (
                429,
                {"Retry-After": str(self.retry_after)},
                _error("Rate limit reached", "rate_limit_error"),
            )
        fault = FAULT.search(raw)
        if fault is not None:
            answer = await self._fault(fault, raw)
            if answer is not None:
                return answer
        self.served += 1
        return 200, {}, orjson.dumps(HANDLERS[endpoint](self, body))

    async def _fault(self, fault: re.Match, raw: bytes) -> tuple[int | None, dict, bytes] | None:
        kind, times = fault.group(1), fault.group(2)
        if kind.startswith(b"slow:"):
            await asyncio.sleep(float(kind[5:]))
            return None
        if times is not None:
            key = hashlib.blake2b(raw, digest_size=16).digest()
            self._seen[key] += 1
            if self._seen[key] > int(times):
                return None
        if kind == b"timeout":
            return None, {}, b""
        if kind == b"close":
            return CLOSE, {}, b""
        if kind == b"error200":
            return 200, {}, _error("The model is overloaded (an error sent with 200)", "server_error")
        if kind == b"huge":
            return 200, {}, orjson.dumps({"object": "chat.completion", "padding": "x" * self.huge_bytes})
        if kind in (b"429date", b"429junk"):
            when = email.utils.formatdate(time.time() + self.retry_after, usegmt=True)
            headers = {"Retry-After": when if kind == b"429date" else "soon"}
            return 429, headers, _error("Rate limit reached for requests", "rate_limit_error")
        if kind == b"garbage":
            return 200, {}, b"<html>502 Bad Gateway from a proxy</html>"
        if kind == b"429":
            headers = {"Retry-After": str(self.retry_after)}
            return (
                429,
                headers,
                _error("Rate limit reached for requests", "rate_limit_error", "rate_limit_exceeded"),
            )
        if kind == b"400":
            return 400, {}, _error("Invalid request (fault injected by [[400]])", "invalid_request_error")
        return 500, {}, _error("The server had an error while processing your request.", "server_error")

    def _over_rate(self) -> bool:
        # a token bucket, as providers enforce limits: rpm/60 requests a second, bursts of one second's worth
        if self.rpm_limit is None:
            return False
        now = time.monotonic()
        per_second = self.rpm_limit / 60.0
        capacity = max(1.0, per_second)
        self._tokens = min(capacity, self._tokens + (now - self._refilled) * per_second)
        self._refilled = now
        if self._tokens < 1.0:
            return True
        self._tokens -= 1.0
        return False


def _response(status: int, headers: dict[str, str], payload: bytes) -> bytes:
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}", "Content-Type: application/json"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


def _error(message: str, type_: str, code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})


def _text_of(content: Any) -> str:
    if isinstance(content, list):  # content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _chat(up: Upstream, body: dict) -> dict:
    messages = body.get("messages") or []
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    text = "echo: " + (_text_of(users[-1].get("content")) if users else "")
    prompt_tokens = sum(len(_text_of(m.get("content")).split()) for m in messages if isinstance(m, dict))
    return {
        "id": f"chatcmpl-{up.served}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": up.model or body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(prompt_tokens, len(text.split())),
        "system_fingerprint": None,
    }


def _completion(up: Upstream, body: dict) -> dict:
    prompt = body.get("prompt")
    prompt = prompt if isinstance(prompt, str) else " ".join(map(str, prompt or []))
    text = "echo: " + prompt
    return {
        "id": f"cmpl-{up.served}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": up.model or body.get("model"),
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
        "usage": _usage(len(prompt.split()), len(text.split())),
    }


def _embeddings(up: Upstream, body: dict) -> dict:
    inputs = body.get("input")
    inputs = inputs if isinstance(inputs, list) else [inputs]
    data = [
        {"object": "embedding", "index": i, "embedding": _vector(str(text), up.embedding_dim)}
        for i, text in enumerate(inputs)
    ]
    tokens = sum(len(str(t).split()) for t in inputs)
    return {
        "object": "list",
        "data": data,
        "model": up.model or body.get("model"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _vector(text: str, dim: int) -> list[float]:
    digest = hashlib.blake2b(text.encode(), digest_size=dim).digest()
    return [round(b / 255.0 - 0.5, 6) for b in digest]


def _usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


HANDLERS = {"/v1/chat/completions": _chat, "/v1/completions": _completion, "/v1/embeddings": _embeddings}


def main(argv: list[str] | None = None) -> None:
    """Run the upstream as a process (for benchmarks): prints its base URL, serves until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rpm-limit", type=float, default=None)
    parser.add_argument("--retry-after", type=float, default=1.0)
    args = parser.parse_args(argv)
    upstream = Upstream(port=args.port, rpm_limit=args.rpm_limit, retry_after=args.retry_after, record=False)

    async def run() -> None:
        server = await upstream.serve()
        print(upstream.base_url, flush=True)
        asyncio.get_running_loop().add_reader(sys.stdin.fileno(), _report, upstream)
        await server.serve_forever()

    asyncio.run(run())


def _report(upstream: Upstream) -> None:
    # the parent writes a line on stdin to ask for the counts (or closes stdin to stop us)
    line = sys.stdin.readline()
    if not line:
        raise SystemExit(0)
    print(orjson.dumps({"served": upstream.served, "rejected": upstream.rejected}).decode(), flush=True)


if __name__ == "__main__":
    main()
