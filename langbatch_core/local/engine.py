"""Starting and stopping the local engine: in a thread (``LocalEngine``) or as a shared process.

with LocalEngine(backend="upstream:http://127.0.0.1:8000/v1") as engine:   # a free port on 127.0.0.1
    client = openai.OpenAI(base_url=engine.base_url, api_key="local")

base_url = ensure_local_engine()   # the engine serving the data dir, started detached if none answers
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from langbatch_core.errors import ProviderUnavailableError
from langbatch_core.local.backends import Backend, make_backend
from langbatch_core.local.batches import MAX_FILE_BYTES, EngineSettings
from langbatch_core.local.executor import ExecutorSettings, require_positive
from langbatch_core.local.read_deadlines import READ_TIMEOUT, deadline_protocol
from langbatch_core.local.server import EngineCore, build_app
from langbatch_core.local.state import write_atomic

ENGINE_DIR = "engine"
INFO_FILE = "engine.json"


def engine_root(data_dir: str | os.PathLike[str] | None) -> Path:
    """``<data dir>/engine`` (the data dir defaults to ``$LANGBATCH_DATA_DIR`` or ``~/.langbatch``)."""
    if data_dir is None:
        from langbatch_core.config import data_dir as default_data_dir

        data_dir = default_data_dir()
    root = Path(data_dir).expanduser() / ENGINE_DIR
    root.mkdir(parents=True, exist_ok=True)
    return root


class LocalEngine:
    """The engine's HTTP server running in a background thread of this process.

    ``backend`` is a ``Backend`` or a spec for ``make_backend`` ("model", "upstream:URL", a URL).
    ``completion_window`` (seconds) replaces the length of "24h" windows; ``rpm``/``tpm`` cap the
    request and token rates sent to the backend; ``max_enqueued_tokens`` fails batches over it;
    ``max_file_bytes`` refuses larger uploads (413); ``read_timeout`` (seconds) closes connections whose
    request headers or body arrive too slowly (``read_deadlines``).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        backend: Backend | str = "model",
        host: str = "127.0.0.1",
        port: int = 0,
        completion_window: float | None = None,
        concurrency: int = 64,
        rpm: float | None = None,
        tpm: float | None = None,
        max_enqueued_tokens: int | None = None,
        *,
        request_timeout: float = 600.0,
        max_retries: int = 5,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 60.0,
        sync_interval: float = 0.5,
        max_file_bytes: int = MAX_FILE_BYTES,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        require_positive(read_timeout=read_timeout)
        self.read_timeout = read_timeout
        self.root = engine_root(data_dir)
        self.backend = make_backend(backend)
        self.host, self.port = host, port
        self.executor_settings = ExecutorSettings(
            concurrency=concurrency,
            rpm=rpm,
            tpm=tpm,
            request_timeout=request_timeout,
            max_retries=max_retries,
            retry_base_delay=retry_base_delay,
            retry_max_delay=retry_max_delay,
        )
        self.engine_settings = EngineSettings(
            completion_window, max_enqueued_tokens, sync_interval, max_file_bytes
        )
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def data_dir(self) -> Path:
        return self.root.parent

    def core(self) -> EngineCore:
        return EngineCore(self.root, self.backend, self.executor_settings, self.engine_settings)

    def start(self) -> LocalEngine:
        """Start serving (returns once the server answers); raises ProviderUnavailableError on failure."""
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._server = make_server(build_app(self.core()), self.read_timeout)
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name="langbatch-engine", daemon=True
        )
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise ProviderUnavailableError(f"The local engine failed to start: {self._error!r}")
            time.sleep(0.002)
        return self

    def _serve(self, sock: socket.socket) -> None:
        try:
            self._server.run(sockets=[sock])
        except BaseException as exc:  # reported by start()
            self._error = exc
        finally:
            sock.close()

    def serve_forever(self) -> None:
        """Serve in this thread until SIGINT/SIGTERM, announced in ``engine.json`` for other processes
        (``ensure_local_engine``, the CLI, the dashboard) while it answers."""
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        server = make_server(build_app(self.core()), self.read_timeout)
        info = {
            "base_url": self.base_url,
            "host": self.host,
            "port": self.port,
            "pid": os.getpid(),
            "backend": self.backend.describe(),
            "started_at": int(time.time()),
        }
        original_startup, original_shutdown = server.startup, server.shutdown

        async def startup(sockets: Any = None) -> None:
            await original_startup(sockets=sockets)
            write_info(self.root, info)  # announce the address only once the server answers
            print(f"LangBatch local engine serving {self.base_url} (data: {self.data_dir})", flush=True)
            if not is_loopback(self.host):
                print(EXPOSED_WARNING.format(host=self.host, port=self.port), file=sys.stderr, flush=True)

        async def shutdown(sockets: Any = None) -> None:
            clear_info(self.root, os.getpid())  # before uvicorn re-raises SIGTERM to end the process
            await original_shutdown(sockets=sockets)

        server.startup, server.shutdown = startup, shutdown
        try:
            server.run(sockets=[sock])
        finally:
            clear_info(self.root, os.getpid())

    def stop(self) -> None:
        """Stop serving; running batches are left as they are and resume at the next start."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(30)
            self._server = self._thread = None

    def __enter__(self) -> LocalEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


EXPOSED_WARNING = (
    "warning: the local engine has no authentication and listens on {host}:{port}: anyone who can reach it "
    "can read your files and run batches on your backend. Bind 127.0.0.1 unless that is what you want."
)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ProviderUnavailableError(f"The local engine cannot listen on {host}:{port}: {exc}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_server(app: Any, read_timeout: float = READ_TIMEOUT) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app,
        http=deadline_protocol(read_timeout),
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        backlog=2048,
    )
    return uvicorn.Server(config)


# --- one shared engine process per data directory -----------------------------------------------------------
def read_info(root: Path) -> dict[str, Any] | None:
    """The running engine's address file (``<data>/engine/engine.json``), or None."""
    try:
        info = orjson.loads((root / INFO_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return info if isinstance(info, dict) and "base_url" in info else None


def write_info(root: Path, info: dict[str, Any]) -> None:
    write_atomic(root / INFO_FILE, orjson.dumps(info))


def clear_info(root: Path, pid: int | None) -> None:
    """Remove the address file if it is still ``pid``'s (None: a file that names no process)."""
    info = read_info(root)
    if info is not None and info.get("pid") == pid:
        (root / INFO_FILE).unlink(missing_ok=True)


def health(base_url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """The engine's /health answer, or None when nothing answers there."""
    import httpx

    try:
        answer = httpx.get(base_url.rstrip("/") + "/health", timeout=timeout)
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None


def running_engine(data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The address file of the engine serving ``data_dir`` if it answers, else None (stale files removed)."""
    root = engine_root(data_dir)
    info = read_info(root)
    if info is None:
        return None
    answer = health(info["base_url"])
    if answer is not None and Path(answer.get("data_dir", "")).resolve() == root.parent.resolve():
        return info
    clear_info(root, info.get("pid"))  # stale: the process is gone, or the port now belongs to another one
    return None


def ensure_local_engine(data_dir: str | os.PathLike[str] | None = None, backend: str = "model") -> str:
    """Base URL of the engine serving ``data_dir``; starts one detached (``python -m langbatch_core.local
    serve``) when none answers. The CLI and the dashboard share it; an engine already running keeps its
    backend. Raises ProviderUnavailableError (with its log) if it cannot start.
    """
    root = engine_root(data_dir)
    with open(root / "engine.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two callers at once start one engine
        info = running_engine(root.parent)
        if info is not None:
            return info["base_url"]
        return _spawn(root, backend)


def _spawn(root: Path, backend: str, wait: float = 60.0) -> str:
    log_path = root / "engine.log"
    command = [sys.executable, "-m", "langbatch_core.local", "serve", "--data-dir", str(root.parent)]
    command += ["--backend", backend, "--port", "0"]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True
        )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        info = read_info(root)
        if info is not None and info.get("pid") == process.pid and health(info["base_url"]) is not None:
            return info["base_url"]
        if process.poll() is not None:
            break
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        if process.poll() is None:
            process.kill()
    tail = log_path.read_text(errors="replace")[-2000:]
    raise ProviderUnavailableError(
        f"The local engine did not start (command: {' '.join(command)}). "
        f"Its log ({log_path}) ends with:\n{tail}"
    )
