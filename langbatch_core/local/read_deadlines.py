"""Read deadlines for the engine's HTTP connections: a client that sends its headers or its body too slowly
is disconnected, so slow or stalled clients cannot hold connections (and memory) open forever.

    config = uvicorn.Config(app, http=deadline_protocol(read_timeout=30.0))

uvicorn has no such limit: its keep-alive timeout only covers a connection idle between requests, and any
byte received cancels it. Here, as in Apache's mod_reqtimeout:

- headers: the request line and headers must all arrive within ``read_timeout`` seconds of the connection
  opening, or of the first byte of a later request on it; if not, the engine answers 408 and closes the
  connection (between requests, uvicorn's keep-alive timeout closes an idle connection);
- body: it must start within ``read_timeout`` seconds, and every ``MIN_BODY_RATE`` bytes received give one
  more second, so a 200 MB upload on a slow but steady link finishes while a byte a second does not;
- while the engine itself is still reading what it was sent (uvicorn paused the socket), the client is not
  blamed: the clock restarts when reading resumes.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

READ_TIMEOUT = 30.0  # seconds a client has to send a request's headers, and to start its body
MIN_BODY_RATE = 500.0  # bytes a second a request body must keep up, on average, after its first read_timeout
_TIMED_OUT_TEXT = b"The request headers did not arrive in time: send them at once.\n"
TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_TIMED_OUT_TEXT), _TIMED_OUT_TEXT)
)


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with read deadlines for headers and bodies (see the module doc)."""

    read_timeout: ClassVar[float] = READ_TIMEOUT
    min_body_rate: ClassVar[float] = MIN_BODY_RATE

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._phase: str | None = None  # "headers", "body", or None (the engine's turn)
        self._since = 0.0
        self._body_bytes = 0
        self._timer: asyncio.TimerHandle | None = None

    # uvicorn's H11Protocol narrows asyncio's BaseTransport to Transport; this keeps uvicorn's signature
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._enter("headers")

    def data_received(self, data: bytes) -> None:
        if self._phase == "body":
            self._body_bytes += len(data)
        super().data_received(data)
        self._enter(self._phase_now(idle="headers"))  # in IDLE now, what came is part of the next request

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._enter(self._phase_now(idle=None))  # an idle keep-alive connection: uvicorn's own timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def _phase_now(self, idle: str | None) -> str | None:
        state = self.conn.their_state
        return idle if state is h11.IDLE else "body" if state is h11.SEND_BODY else None

    def _enter(self, phase: str | None) -> None:
        """Start, keep or stop the deadline as the request moves on."""
        if phase == self._phase:
            return
        self._stop_timer()
        self._phase, self._since, self._body_bytes = phase, self.loop.time(), 0
        if phase is not None and not self.transport.is_closing():
            self._timer = self.loop.call_at(self._deadline(), self._check)

    def _deadline(self) -> float:
        allowed = self.read_timeout + (self._body_bytes / self.min_body_rate if self._phase == "body" else 0)
        return self._since + allowed

    def _check(self) -> None:
        self._timer = None
        if self._phase is None or self.transport.is_closing():
            return
        if self.flow.read_paused:  # the engine has not read what came: not the client's fault
            self._since, self._body_bytes = self.loop.time(), 0
        elif self._deadline() <= self.loop.time():
            self._give_up()
            return
        self._timer = self.loop.call_at(self._deadline(), self._check)

    def _give_up(self) -> None:
        if self._phase == "headers":
            self.transport.write(TIMED_OUT)  # no request yet, so h11 cannot answer it
        self.logger.info("closed a connection: its request %s did not arrive in time", self._phase)
        self._phase = None
        self.transport.close()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def deadline_protocol(read_timeout: float, min_body_rate: float = MIN_BODY_RATE) -> type[DeadlineProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with these limits."""
    settings = {"read_timeout": read_timeout, "min_body_rate": min_body_rate}
    return type("DeadlineProtocol", (DeadlineProtocol,), settings)
