"""The ``serve`` command, one for ``langbatch serve`` and ``python -m langbatch_core.local serve``.

Its options build a ``ServeSettings``; ``serve(settings)`` runs the engine in the foreground:

    serve(ServeSettings(port=0, backend="upstream:http://127.0.0.1:11434/v1", rpm=600))
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import click

from langbatch_core.errors import ConfigurationError, LangBatchError
from langbatch_core.local.batches import MAX_FILE_BYTES
from langbatch_core.local.read_deadlines import READ_TIMEOUT


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``langbatch serve`` is told; ``None`` limits are off. Values that would hang or fail every
    batch (zero, negative) are refused by the engine when it starts, naming the flag."""

    host: str = "127.0.0.1"
    port: int = 8765
    data_dir: str | None = None
    backend: str = "model"
    upstream_key_env: str | None = None
    concurrency: int = 64
    rpm: float | None = None
    tpm: float | None = None
    completion_window: float | None = None
    max_enqueued_tokens: int | None = None
    request_timeout: float = 600.0
    max_retries: int = 5
    max_file_bytes: int = MAX_FILE_BYTES
    read_timeout: float = READ_TIMEOUT


def backend_for(settings: ServeSettings) -> Any:
    """The backend the settings ask for; the upstream's key is read from the environment, never stored."""
    from langbatch_core.local.backends import UpstreamBackend, make_backend

    backend = make_backend(settings.backend)
    name = settings.upstream_key_env
    if not name:
        return backend
    if not isinstance(backend, UpstreamBackend):
        raise ConfigurationError("--upstream-key-env is for an upstream backend: add --upstream URL.")
    key = os.environ.get(name)
    if not key:
        raise ConfigurationError(
            f"--upstream-key-env {name}: the environment variable {name} is not set or empty; "
            f"export {name}=<the upstream's API key> before starting the engine."
        )
    return UpstreamBackend(backend.base_url, api_key=key)


def serve(settings: ServeSettings) -> None:
    """Serve until SIGINT/SIGTERM; ConfigurationError (naming the flag) for settings it cannot run with."""
    from langbatch_core.local.engine import LocalEngine

    engine_options = {
        field.name: getattr(settings, field.name)
        for field in fields(settings)
        if field.name not in ("data_dir", "backend", "upstream_key_env")
    }
    engine = LocalEngine(settings.data_dir, backend_for(settings), **engine_options)
    engine.serve_forever()


def _no_limit(text: str = "no limit") -> dict[str, Any]:
    return {"default": None, "show_default": text}


def _setting(flag: str, kind: type, help: str, show: str | bool = True) -> Callable[[Any], Any]:
    """An option whose default is the ``ServeSettings`` field of the same name (shown in ``--help``)."""
    default = getattr(ServeSettings, flag.removeprefix("--").replace("-", "_"))
    return click.option(flag, type=kind, default=default, show_default=show, help=help)


@click.command(name="serve")
@_setting("--host", str, "Address to bind (keep it local).")
@_setting("--port", int, "Port (0: a free one).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    show_default="$LANGBATCH_DATA_DIR, else ~/.langbatch",
    help="Data directory; the engine keeps its files in <data dir>/engine.",
)
@click.option("--upstream", metavar="URL", help="OpenAI-compatible realtime server, e.g. http://host/v1.")
@click.option(
    "--backend",
    metavar="model|upstream:URL",
    show_default="model",
    help="'model': the bundled models; 'upstream:URL': the same as --upstream URL.",
)
@click.option(
    "--upstream-key-env",
    metavar="VAR",
    help="Environment variable holding the upstream's API key (the key is never stored).",
)
@_setting("--concurrency", int, "Requests in flight.")
@click.option("--rpm", type=float, **_no_limit(), help="Requests per minute sent to the backend.")
@click.option("--tpm", type=float, **_no_limit(), help="Tokens per minute sent to the backend.")
@click.option(
    "--completion-window",
    type=float,
    metavar="SECONDS",
    **_no_limit("24 hours"),
    help="Seconds a '24h' batch may run before it expires.",
)
@click.option("--max-enqueued-tokens", type=int, **_no_limit(), help="Fail batches over this many tokens.")
@_setting("--request-timeout", float, "Seconds to wait for one answer.")
@_setting("--max-retries", int, "Retries of a 429, 5xx or timeout.")
@_setting("--max-file-bytes", int, "Largest upload.", show=f"{MAX_FILE_BYTES // 2**20} MiB")
@_setting("--read-timeout", float, "Seconds a client has to send a request's headers, and to start its body.")
def serve_command(upstream: str | None, backend: str | None, **options: Any) -> None:
    """Run the local engine (OpenAI-compatible Files + Batches API) in the foreground, until Ctrl-C.

    It serves the data directory's batches; running batches resume when it starts again.

    Example:

        \b
        langbatch serve --port 8765 --upstream http://localhost:11434/v1 --rpm 600
    """
    if upstream and backend:
        raise click.UsageError("Give --upstream URL or --backend, not both.")
    source = f"upstream:{upstream}" if upstream else backend or ServeSettings.backend
    try:
        serve(ServeSettings(backend=source, **options))
    except LangBatchError as exc:
        raise click.ClickException(str(exc)) from exc
