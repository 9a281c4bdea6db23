"""The engine's upstream HTTP client: a POST is sent again only when no byte of an answer came back (an idle
keep-alive connection the server had closed), never after the upstream began to answer; proxies are not
used, and the engine says so."""

from __future__ import annotations

import asyncio

import pytest

from langbatch_core.local.backends import UpstreamBackend
from langbatch_core.local.http import ConnectionPool, NothingReceivedError, proxy_ignored

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class ScriptedServer:
    """A raw HTTP server that answers the n-th request it reads with ``answers[n]`` and closes the connection
    when the answer is not a whole one; ``.requests`` counts the requests it read."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers, self.requests = answers, 0

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            answer = self.answers[min(self.requests, len(self.answers) - 1)]
            self.requests += 1
            writer.write(answer)
            await writer.drain()
            if answer != OK:
                break
        writer.close()


def post_twice(answers: list[bytes]) -> tuple[int, object]:
    """Two POSTs through one pool (the second on the first's kept-alive connection): (requests the server
    read, the second POST's outcome or exception)."""

    async def run() -> tuple[int, object]:
        server = ScriptedServer(answers)
        async with server as url:
            pool = ConnectionPool(url)
            await pool.post("/chat/completions", b"{}")
            try:
                outcome: object = (await pool.post("/chat/completions", b"{}"))[0]
            except Exception as exc:
                outcome = exc
            await pool.aclose()
            return server.requests, outcome

    return asyncio.run(run())


def test_a_post_is_not_sent_again_once_the_upstream_began_to_answer():
    requests, outcome = post_twice([OK, b"HTTP/1.1 200 OK\r\nContent-Le", OK])
    assert requests == 2  # the upstream ran it: sending it again could run it twice
    assert isinstance(outcome, asyncio.IncompleteReadError | ConnectionError)
    assert not isinstance(outcome, NothingReceivedError)


def test_a_post_on_a_connection_closed_before_any_answer_is_sent_once_more():
    requests, outcome = post_twice([OK, b"", OK])  # the server drops the kept-alive connection, no answer
    assert (requests, outcome) == (3, 200)


def test_a_fresh_connection_closed_before_an_answer_is_not_retried():
    async def run() -> int:
        server = ScriptedServer([b""])
        async with server as url:
            with pytest.raises(NothingReceivedError):
                await ConnectionPool(url).post("/chat/completions", b"{}")
        return server.requests

    assert asyncio.run(run()) == 1


def test_an_upstream_behind_a_proxy_is_reached_directly_and_the_engine_says_so(monkeypatch, capsys):
    secret_proxy = "http://user:hunter2@proxy.example:3128"
    monkeypatch.setenv("HTTP_PROXY", secret_proxy)
    monkeypatch.setenv("NO_PROXY", "localhost")
    assert proxy_ignored("http://gpu-box:8000/v1") == secret_proxy
    UpstreamBackend("http://gpu-box:8000/v1")
    warning = capsys.readouterr().err
    assert "connects to it directly" in warning and "gpu-box" in warning
    assert "hunter2" not in warning

    assert proxy_ignored("http://localhost:8000/v1") is None  # NO_PROXY: intended, no warning
    UpstreamBackend("http://localhost:8000/v1")
    assert capsys.readouterr().err == ""
