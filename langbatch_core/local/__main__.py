"""Run the local engine: ``python -m langbatch_core.local serve [--upstream URL] [--port 8765] ...``.

Example:
    python -m langbatch_core.local serve --upstream http://127.0.0.1:11434/v1 --rpm 600
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from langbatch_core.errors import LangBatchError
from langbatch_core.local.batches import MAX_FILE_BYTES
from langbatch_core.local.read_deadlines import READ_TIMEOUT


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m langbatch_core.local", description=__doc__.splitlines()[0])
    commands = main.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the OpenAI-compatible Files + Batches API")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (0: a free one; default 8765)")
    serve.add_argument(
        "--data-dir", default=None, help="data directory (default $LANGBATCH_DATA_DIR or ~/.langbatch)"
    )
    source = serve.add_mutually_exclusive_group()
    source.add_argument(
        "--upstream", default=None, help="OpenAI-compatible realtime server, e.g. http://host/v1"
    )
    source.add_argument("--backend", default="model", help="'model' (bundled, default) or 'upstream:URL'")
    serve.add_argument(
        "--upstream-key-env",
        default=None,
        help="environment variable holding the upstream's API key (the key is never stored)",
    )
    serve.add_argument("--concurrency", type=int, default=64, help="requests in flight at once (default 64)")
    serve.add_argument("--rpm", type=float, default=None, help="requests per minute sent to the backend")
    serve.add_argument("--tpm", type=float, default=None, help="tokens per minute sent to the backend")
    serve.add_argument(
        "--completion-window",
        type=float,
        default=None,
        help="seconds a '24h' batch may run before it expires",
    )
    serve.add_argument(
        "--max-enqueued-tokens", type=int, default=None, help="fail batches over this many tokens"
    )
    serve.add_argument("--request-timeout", type=float, default=600.0, help="seconds to wait for one answer")
    serve.add_argument("--max-retries", type=int, default=5, help="retries of a 429/5xx/timeout (default 5)")
    serve.add_argument(
        "--max-file-bytes", type=int, default=MAX_FILE_BYTES, help="largest upload (default 200 MB)"
    )
    serve.add_argument(
        "--read-timeout",
        type=float,
        default=READ_TIMEOUT,
        help="seconds a client has to send a request's headers, and to start its body (default 30)",
    )
    return main


def build_backend(args: argparse.Namespace):
    """The backend the flags ask for; the upstream's key is read from the environment, never stored."""
    from langbatch_core.errors import ConfigurationError
    from langbatch_core.local.backends import UpstreamBackend, make_backend

    backend = make_backend(args.upstream or args.backend)
    name = args.upstream_key_env
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


def serve(args: argparse.Namespace) -> None:
    from langbatch_core.local.engine import LocalEngine

    engine = LocalEngine(
        args.data_dir,
        build_backend(args),
        host=args.host,
        port=args.port,
        completion_window=args.completion_window,
        concurrency=args.concurrency,
        rpm=args.rpm,
        tpm=args.tpm,
        max_enqueued_tokens=args.max_enqueued_tokens,
        request_timeout=args.request_timeout,
        max_retries=args.max_retries,
        max_file_bytes=args.max_file_bytes,
        read_timeout=args.read_timeout,
    )
    engine.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        serve(args)
    except LangBatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
