"""Clients that send their request too slowly are disconnected (``--read-timeout``); others are not."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest
from test_engine import chat_line, run_batch, wait

READ_TIMEOUT = 1.0


@pytest.fixture
def slow_engine(make_engine):
    return make_engine(read_timeout=READ_TIMEOUT)


def connect(engine) -> socket.socket:
    url = urlsplit(engine.base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=5)
    sock.settimeout(0.05)
    return sock


def trickle(sock: socket.socket, data: bytes, interval: float, limit: float = 10.0) -> tuple[float, bytes]:
    """Send ``data`` a byte every ``interval`` seconds until the server closes the connection; returns
    (seconds until it closed, what it answered)."""
    started, answer = time.monotonic(), b""
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:  # closed under our feet: a reset or a broken pipe
            return time.monotonic() - started, answer
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return time.monotonic() - started, answer
            if not chunk:
                return time.monotonic() - started, answer
            answer += chunk
        assert time.monotonic() - started < limit, "the engine kept a slow client for 10 seconds"
    raise AssertionError("the whole request went through: the data was too short for this test")


def test_headers_sent_a_byte_at_a_time_get_a_408_and_the_connection_closes(slow_engine):
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    seconds, answer = trickle(connect(slow_engine), request, interval=0.2)
    assert READ_TIMEOUT - 0.2 <= seconds < READ_TIMEOUT + 1.0
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout")


def test_a_connection_that_sends_nothing_is_closed(slow_engine):
    sock = connect(slow_engine)
    sock.settimeout(5)
    started = time.monotonic()
    answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - started < READ_TIMEOUT + 1.0


def test_a_body_sent_a_byte_at_a_time_is_cut_off(slow_engine):
    sock = connect(slow_engine)
    sock.sendall(b"POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
    sock.sendall(b"Content-Length: 1000\r\n\r\n")
    seconds, answer = trickle(sock, b"{" + b" " * 999, interval=0.2)
    assert READ_TIMEOUT - 0.2 <= seconds < READ_TIMEOUT + 1.0 and answer == b""


def test_a_slow_but_steady_body_gets_through(slow_engine):
    body = b'{"input_file_id": "file-nope", "padding": "' + b"x" * 3000 + b'"}'
    sock = connect(slow_engine)
    sock.sendall(b"POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
    sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body))
    for start in range(0, len(body), 300):  # 1,500 bytes/s for 2 s: longer than the timeout, but steady
        sock.sendall(body[start : start + 300])
        time.sleep(0.2)
    sock.settimeout(5)
    assert sock.recv(4096).startswith(b"HTTP/1.1 404")  # answered: no file-nope


def test_normal_clients_are_unaffected(slow_engine):
    with httpx.Client(base_url=slow_engine.base_url) as client:
        assert client.get("/health").status_code == 200
        time.sleep(READ_TIMEOUT + 0.5)  # an idle keep-alive connection is not a slow request
        assert client.get("/health").status_code == 200
    import openai

    sdk = openai.OpenAI(base_url=slow_engine.base_url, api_key="test-key", max_retries=0)
    batch = wait(sdk, run_batch(sdk, [chat_line(f"r{i}", f"q{i}") for i in range(20)]).id)
    assert batch.status == "completed" and batch.request_counts.completed == 20
