"""Runs an ASGI app (starlette) with uvicorn on 127.0.0.1 in a thread, for the providers' test servers.

with AppServer(app) as server:
    server.url                      # http://127.0.0.1:<port>
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


async def lose_answer(app: Any, scope: Any, receive: Any, send: Any, instead: Any) -> None:
    """Runs the call in ``app`` but sends ``instead`` (an ASGI response): the client loses the real answer."""

    async def discard(message: Any) -> None:
        return None

    await app(scope, receive, discard)
    await instead(scope, receive, send)


class AppServer:
    def __init__(self, app: Any) -> None:
        self.app = app
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> AppServer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start in 10 s")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
