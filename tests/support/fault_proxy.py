"""A real HTTP proxy that makes a healthy API look like a provider having a bad day.

    with FaultProxy(engine.base_url, seed=7, rates=OUTAGE) as proxy:   # http://127.0.0.1:<port>/v1
        Connection.compatible(proxy.base_url)      # every call goes through the faults
        proxy.faults                               # Counter: how many of each fault it served
        proxy.script("POST", "/v1/batches", "reset_after")   # the next matching request gets this fault

Each request is forwarded to ``target`` or answered with a fault drawn from ``rates`` (a seeded random
choice, so a run is reproducible), after the ``script``ed faults are used up:

    503            503 Service Unavailable, not forwarded (refused)
    429            429 Too Many Requests, not forwarded; half carry ``Retry-After`` (seconds or an HTTP date)
    reset_before   the connection is reset before forwarding (the request never arrives)
    reset_after    forwarded, then the connection is reset (the request was done, its answer lost)
    slow_after     forwarded, then the answer is held ``slow_seconds`` (beyond the client's timeout)
    500_after      forwarded, then answered 500 instead of the real answer

``always`` (a fault name, or None) answers every request with that fault, e.g. for a provider that is down.
"""

from __future__ import annotations

import collections
import email.utils
import http.client
import random
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

OUTAGE = {"503": 0.3, "429": 0.2, "reset_before": 0.03, "reset_after": 0.03, "slow_after": 0.03}
FAULTS = frozenset({"503", "429", "reset_before", "reset_after", "slow_after", "500_after"})
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "proxy-connection"}


class FaultProxy:
    """A threaded HTTP/1.1 proxy to ``target`` (a base URL such as ``http://127.0.0.1:8765/v1``)."""

    def __init__(
        self,
        target: str,
        *,
        seed: int = 0,
        rates: dict[str, float] | None = None,
        retry_after: str = "0.01",
        slow_seconds: float = 1.0,
    ) -> None:
        unknown = set(rates or {}) - FAULTS
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {sorted(FAULTS)}")
        url = urlsplit(target)
        self.target_host, self.target_port = url.hostname or "127.0.0.1", url.port or 80
        self.rates = dict(rates or {})
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.always: str | None = None
        self.faults: collections.Counter[str] = collections.Counter()
        self.forwarded: list[tuple[str, str]] = []
        self._random = random.Random(seed)
        self._scripted: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, method: str, path_prefix: str, fault: str) -> None:
        """The next request of ``method`` whose path starts with ``path_prefix`` gets ``fault``."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._scripted.append((method, path_prefix, fault))

    def reset(self) -> None:
        """Forget the scripted faults not used yet, and the counts."""
        with self._lock:
            self._scripted.clear()
            self.faults.clear()
            self.forwarded.clear()

    def choose(self, method: str, path: str) -> str | None:
        """The fault for this request (None: forward it as it is), and count it."""
        with self._lock:
            fault = self.always or self._take_scripted(method, path) or self._draw()
            if fault:
                self.faults[fault] += 1
            return fault

    def _take_scripted(self, method: str, path: str) -> str | None:
        for index, (want_method, prefix, fault) in enumerate(self._scripted):
            if method == want_method and path.startswith(prefix):
                del self._scripted[index]
                return fault
        return None

    def _draw(self) -> str | None:
        roll, total = self._random.random(), 0.0
        for fault, rate in self.rates.items():
            total += rate
            if roll < total:
                return fault
        return None

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def _handle(self) -> None:
            body = self._read_body()
            fault = proxy.choose(self.command, self.path)
            if fault in ("503", "429"):
                return self._refuse(int(fault))
            if fault == "reset_before":
                return self._reset()
            status, headers, payload = self._forward(body)
            if fault == "reset_after":
                return self._reset()
            if fault == "slow_after":
                time.sleep(proxy.slow_seconds)
            if fault == "500_after":
                status, headers, payload = 500, [("Content-Type", "application/json")], b'{"error": {}}'
            self._reply(status, headers, payload)

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    chunk = self.rfile.read(size)
                    self.rfile.readline()
                    if not size:
                        break
                    chunks.append(chunk)
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            upstream = http.client.HTTPConnection(proxy.target_host, proxy.target_port, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
                kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP]
                with proxy._lock:
                    proxy.forwarded.append((self.command, self.path))
                return answer.status, kept, payload
            finally:
                upstream.close()

        def _refuse(self, status: int) -> None:
            headers = [("Content-Type", "application/json")]
            count = proxy.faults["429"]
            if status == 429 and count % 4 == 1:
                headers.append(("Retry-After", proxy.retry_after))
            elif status == 429 and count % 4 == 3:
                headers.append(("Retry-After", email.utils.formatdate(time.time(), usegmt=True)))
            message = b'{"error": {"message": "try later", "type": "server_error", "code": null}}'
            self._reply(status, headers, message)

        def _reply(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
            try:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
            except OSError:
                self.close_connection = True  # the client gave up (a slow answer): nothing to do

        def _reset(self) -> None:
            """Close with a TCP reset, as a crashed load balancer would."""
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

    return Handler
