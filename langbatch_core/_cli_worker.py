"""``langbatch worker``: the CLI's view of ``langbatch_core.worker`` (imported only when used)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import click

from langbatch_core.worker import RETRY_REASONS


@click.command(name="worker")
@click.option("--name", help="Recorded on every batch it advances (default: <host>:<pid>).")
@click.option("--interval", type=float, default=10.0, show_default=True, help="Seconds between cycles.")
@click.option("--once", is_flag=True, help="Run one cycle and exit.")
@click.option(
    "--retry-on",
    multiple=True,
    type=click.Choice(RETRY_REASONS),
    help="Retry a finished batch by itself when requests failed for this reason (repeat for several).",
)
@click.option(
    "--max-attempts", type=int, default=3, show_default=True, help="Submissions at most, retries included."
)
@click.option("--webhook", help="POST a JSON message here when a batch finishes or fails too much.")
@click.option("--email-to", multiple=True, help="E-mail this address too (needs LANGBATCH_SMTP_HOST).")
@click.option(
    "--failure-threshold",
    type=float,
    default=0.1,
    show_default=True,
    help="Share of requests failed or not run from which to notify.",
)
@click.pass_context
def worker_command(
    ctx: click.Context,
    name: str | None,
    interval: float,
    once: bool,
    retry_on: tuple[str, ...],
    max_attempts: int,
    webhook: str | None,
    email_to: tuple[str, ...],
    failure_threshold: float,
) -> None:
    """Advance every running batch without a browser: refresh, download results, retry, notify.

    Several workers may share a PostgreSQL store (LANGBATCH_STORE); the embedded store has one. Stops
    after the current batch on Ctrl-C or SIGTERM. Notifications also read LANGBATCH_NOTIFY_WEBHOOK,
    LANGBATCH_NOTIFY_EMAIL and LANGBATCH_SMTP_* (README, "Workers").

    Example:

        \b
        langbatch worker --name worker-1 --retry-on server_error --retry-on expired --max-attempts 3
    """
    from langbatch_core.cli import _storage
    from langbatch_core.notify import Notifier
    from langbatch_core.worker import RetryPolicy, Worker

    notifier = Notifier.from_env(
        webhook_url=webhook, email_to=list(email_to), failure_threshold=failure_threshold
    )
    policy = RetryPolicy(retry_on=retry_on, max_attempts=max_attempts) if retry_on else None
    worker = Worker(_storage(ctx), name=name, poll_interval=interval, retry=policy, notifier=notifier)
    # the worker's own lines; its libraries' (a line per HTTP request, per S3 call) only when they warn
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("langbatch").setLevel(logging.INFO)
    click.echo(f"Worker {worker.name} on {_where(worker.storage)}, every {interval:g} s.")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    worker.run(stop=stop, cycles=1 if once else None)


def _where(storage: Any) -> str:
    return str(getattr(storage, "where", None) or getattr(storage, "path", None) or storage.data_dir)
