"""A minimal HTTP/1.1 keep-alive client for the executor's hot path (POST JSON, read the answer).

    pool = ConnectionPool("http://127.0.0.1:8000")
    status, headers, body = await pool.post("/v1/chat/completions", b'{"model": ...}')

A general client (httpx) costs about 0.5 ms of CPU per request; this one costs a tenth of that, which is what
lets the engine push thousands of requests a second through a fast upstream on two cores. It speaks just what
OpenAI-compatible servers answer: ``Content-Length`` or chunked bodies, keep-alive, http and https. It
connects to the upstream directly: ``HTTP_PROXY`` / ``HTTPS_PROXY`` are not used (``proxy_ignored`` says when
they would have applied, so the engine can warn).
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections import deque
from urllib.parse import urlsplit

MAX_BODY_BYTES = 256 * 1024 * 1024  # far above any realtime answer (2,048 large embeddings: ~80 MB)


class HTTPProtocolError(ConnectionError):
    """The server's answer is not HTTP/1.1 as expected."""


class BodyTooLargeError(ValueError):
    """The server's answer is longer than the pool accepts (a broken or hostile server)."""


class NothingReceivedError(ConnectionError):
    """The connection failed before any byte of an answer arrived (typically an idle keep-alive connection
    the server had closed): the only case in which a POST is sent again."""


class Connection:
    """One keep-alive connection; answers longer than ``max_body`` bytes raise ``BodyTooLargeError``."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_body: int = MAX_BODY_BYTES
    ) -> None:
        self.reader, self.writer = reader, writer
        self.max_body = max_body

    async def request(self, head: bytes, body: bytes) -> tuple[int, dict[str, str], bytes, bool]:
        head_lines = (await self._send(head + body)).split(b"\r\n")
        parts = head_lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HTTPProtocolError(f"not an HTTP/1.x answer: {head_lines[0][:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in head_lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        payload = await self._body(headers)
        keep_alive = headers.get("connection", "").lower() != "close" and parts[0] != b"HTTP/1.0"
        return status, headers, payload, keep_alive

    async def _send(self, request: bytes) -> bytes:
        """Write ``request`` and read the answer's head; NothingReceivedError if the connection failed
        before the first byte of the answer."""
        try:
            self.writer.write(request)
            first = await self.reader.readexactly(1)
        except asyncio.IncompleteReadError as exc:
            raise NothingReceivedError("the connection closed before an answer") from exc
        except ConnectionError as exc:
            raise NothingReceivedError(f"the connection failed before an answer ({exc})") from exc
        return first + await self.reader.readuntil(b"\r\n\r\n")

    async def _body(self, headers: dict[str, str]) -> bytes:
        if "content-length" in headers:
            return await self.reader.readexactly(self._allowed(int(headers["content-length"])))
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                if size == 0:
                    while (await self.reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                        pass
                    return b"".join(chunks)
                total = self._allowed(total + size)
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
        body = bytearray()  # the body ends when the server closes
        while chunk := await self.reader.read(1 << 16):
            body += chunk
            self._allowed(len(body))
        return bytes(body)

    def _allowed(self, size: int) -> int:
        if size > self.max_body:
            raise BodyTooLargeError(f"the answer is longer than {self.max_body:,} bytes")
        return size

    def close(self) -> None:
        self.writer.close()


class ConnectionPool:
    """Keep-alive connections to one origin, opened on demand, reused when idle."""

    def __init__(
        self, base_url: str, headers: dict[str, str] | None = None, max_body: int = MAX_BODY_BYTES
    ) -> None:
        self.max_body = max_body
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = url.hostname
        self.tls = url.scheme == "https"
        self.port = url.port or (443 if self.tls else 80)
        self.prefix = url.path.rstrip("/")
        host_header = url.netloc.rsplit("@", 1)[-1]
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._fixed = f"Host: {host_header}\r\nContent-Type: application/json\r\n{extra}".encode("latin-1")
        self._idle: deque[Connection] = deque()

    async def post(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """POST ``body`` (JSON) to ``prefix + path``; returns (status, lower-cased headers, body)."""
        head = b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n" % (
            (self.prefix + path).encode(),
            self._fixed,
            len(body),
        )
        reused = bool(self._idle)
        conn = self._idle.pop() if reused else await self._open()
        try:
            status, headers, payload, keep_alive = await conn.request(head, body)
        except NothingReceivedError:
            conn.close()
            if not reused:
                raise
            # an idle connection the server had closed before reading ours: send once more on a fresh one.
            # Never after a byte of an answer: the upstream ran the request, a second send may run it twice.
            conn = await self._open()
            try:
                status, headers, payload, keep_alive = await conn.request(head, body)
            except BaseException:
                conn.close()
                raise
        except BaseException:  # cancelled or timed out mid-answer: the connection is unusable
            conn.close()
            raise
        if keep_alive:
            self._idle.append(conn)
        else:
            conn.close()
        return status, headers, payload

    async def _open(self) -> Connection:
        context = ssl.create_default_context() if self.tls else None
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=context, limit=2**24)
        return Connection(reader, writer, self.max_body)

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()


def proxy_ignored(base_url: str) -> str | None:
    """The proxy the environment names for ``base_url`` (which this client does not use), or None."""
    url = urlsplit(base_url)
    proxy = urllib.request.getproxies().get(url.scheme)
    if not proxy or urllib.request.proxy_bypass(url.hostname or ""):
        return None
    return proxy
