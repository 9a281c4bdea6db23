"""The ``langbatch`` command: thin wrappers over ``langbatch_core``.

    langbatch create requests.jsonl --name demo --start
    langbatch wait lb_3f2a...
    langbatch results lb_3f2a... -o results.csv

Batches are kept in the default store shared with Python and the dashboard
(``<data dir>/langbatch.duckdb``) unless ``--store files``; batches run on the local engine unless a
connection option says otherwise. Errors are turned into a message and a non-zero exit here, and only here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import click
import orjson
from click.core import ParameterSource

from langbatch_core import audit as audit_log
from langbatch_core._cli_connections import CONNECTION_OPTION, connections, make_connection
from langbatch_core._cli_tables import (
    create_from_table,
    echo_pilot_hint,
    split_table_options,
    table_options,
    write_results_table,
)
from langbatch_core._cli_team import audit, spend
from langbatch_core.config import DATA_DIR_ENV
from langbatch_core.errors import LangBatchError

DASHBOARD_APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
ENDPOINT_LABELS = {
    "/v1/chat/completions": "chat completions",
    "/v1/embeddings": "embeddings",
    "/v1/completions": "completions",
    "/v1/responses": "responses",
}


class LangBatchGroup(click.Group):
    """A group that turns LangBatchError (and file system errors) into ``Error: <message>``, exit code 1,
    whose help ends with where the batches are, and whose ``lazy_commands`` ({name: "module:attribute"})
    are imported when used, so commands with heavy imports (the engine's server) do not slow the others."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_commands])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.lazy_commands:
            return super().get_command(ctx, name)
        import importlib

        module, attribute = self.lazy_commands[name].split(":")
        return getattr(importlib.import_module(module), attribute)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from langbatch_core.storage import describe_default_storage

        where = describe_default_storage()
        formatter.write_paragraph()
        formatter.write_text("Your batches ($LANGBATCH_DATA_DIR, else ~/.langbatch):")
        for label, key in (("data directory", "data_dir"), ("store", "store"), ("batch files", "batches")):
            formatter.write(f"  {label:<16}{where[key]}\n")  # never wrapped: paths are copied from here

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LangBatchError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:  # a folder or file LangBatch was told to use
            where = f" ({exc.filename})" if exc.filename else ""
            raise click.ClickException(
                f"{exc.strerror or exc}{where}: check the path and its permissions."
            ) from exc


@click.group(
    cls=LangBatchGroup,
    lazy_commands={
        "serve": "langbatch_core.local.command:serve_command",
        "worker": "langbatch_core._cli_worker:worker_command",
    },
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=DATA_DIR_ENV,
    help="Data directory (default: $LANGBATCH_DATA_DIR, else ~/.langbatch).",
)
@click.option(
    "--store",
    type=click.Choice(["duckdb", "files"]),
    default="duckdb",
    show_default=True,
    help="Batch store: the default DuckDB store shared with Python and the dashboard "
    "(<data dir>/langbatch.duckdb), or one batch.json per batch (<data dir>/batches/<id>/batch.json).",
)
@click.version_option(package_name="langbatch-core")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, store: str) -> None:
    """Run large LLM jobs through batch APIs: validate, start, watch, retry and export.

    Batches live in the data directory ($LANGBATCH_DATA_DIR, else ~/.langbatch; or --data-dir): in the
    store <data dir>/langbatch.duckdb shared with Python and the dashboard, their files in
    <data dir>/batches/<id>/. They run on the local engine (`langbatch engine status`) unless
    --connection says otherwise.

    Example:

        \b
        langbatch create requests.jsonl --name demo --start && langbatch list
    """
    if data_dir is not None:
        os.environ[DATA_DIR_ENV] = str(data_dir)
    ctx.obj = {"store": store}


def _storage(ctx: click.Context, other: bool = False) -> Any:
    """The chosen store (``--store``: the default store, or the file store), or with ``other`` the other."""
    from langbatch_core.storage import FileBatchStorage, default_storage

    return default_storage() if (ctx.obj["store"] == "duckdb") != other else FileBatchStorage()


def _load(ctx: click.Context, batch_id: str) -> Any:
    """The batch from the file store with ``--store files``, else as Python loads it (the default store,
    then the file store of earlier versions)."""
    from langbatch_core.batch import Batch
    from langbatch_core.errors import BatchNotFoundError

    if ctx.obj["store"] == "files":
        with contextlib.suppress(BatchNotFoundError):
            return Batch.load(batch_id, storage=_storage(ctx))
    return Batch.load(batch_id)


def batch_command(function: Any) -> Any:
    """A subcommand taking a BATCH_ID argument and the click context."""
    command = click.argument("batch_id")(click.pass_context(function))
    return cli.command(name=function.__name__.removeprefix("cmd_"))(command)


def _endpoint_text(endpoint: str | None) -> str:
    """``chat completions``, ``embeddings``, ... for a known endpoint; else the endpoint, or — when none."""
    return ENDPOINT_LABELS.get(endpoint or "", endpoint or "—")


def _models_text(report: Any) -> str:
    models = report.models or ([report.model] if report.model else [])
    return ", ".join(models) if models else "—"


def _echo_json(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode())


BASE_URL_OPTION = click.option(
    "--base-url", help="API root (compatible: required; azure: the endpoint; local: fixed URL)."
)


# -- validate ---------------------------------------------------------------------------------------------


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--endpoint", help="Expected endpoint (default: the url of the first request).")
@click.option(
    "--max-requests", type=click.IntRange(min=1), help="Requests per job, to preview the split plan."
)
@CONNECTION_OPTION
@BASE_URL_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
def validate(file: Path, endpoint: str | None, max_requests: int | None, kind: str, base_url: str | None,
             as_json: bool) -> None:  # fmt: skip
    """Check a request file line by line, and estimate its cost and (on the local engine) its duration;
    exit 1 if it has errors.

    Example:

        \b
        langbatch validate requests.jsonl
        langbatch validate requests.jsonl --connection openai
    """
    from langbatch_core.estimates import estimate_run
    from langbatch_core.providers import provider_for
    from langbatch_core.requests import validate_file

    connection = make_connection(kind, base_url, None, None, None)
    provider = provider_for(connection)  # its limits shape the plan; what its model refuses is an issue
    limits = replace(provider.limits, max_requests=max_requests) if max_requests else provider.limits
    report = validate_file(file, endpoint=endpoint, limits=limits, capabilities=provider.capabilities)
    estimate = estimate_run(report, connection)
    if as_json:
        _echo_json({**report.to_dict(), "estimate": {**asdict(estimate), "warning": estimate.warning}})
    else:
        click.echo(
            f"{file}: {report.request_count:,} requests, endpoint {_endpoint_text(report.endpoint)}, "
            f"model {_models_text(report)}"
        )
        click.echo(f"~{report.input_tokens:,} input tokens, {len(report.jobs)} job(s)")
        _echo_estimate(estimate)
        for issue in report.issues:
            click.echo(f"  {issue.severity}: {issue}")
        click.echo("OK" if report.ok else f"{report.error_count} error(s), {report.warning_count} warning(s)")
    if not report.ok:
        sys.exit(1)


def _echo_estimate(estimate: Any) -> None:
    for line in estimate.lines():
        click.echo(line)
    if estimate.warning:
        click.echo(f"warning: {estimate.warning}")


# -- create / start ---------------------------------------------------------------------------------------


def connection_options(command: Any) -> Any:
    """--connection, --base-url, --api-key-env, --api-version, --max-requests (used when creating)."""
    options = [
        CONNECTION_OPTION,
        BASE_URL_OPTION,
        click.option(
            "--api-key-env", help="NAME of the environment variable holding the key (never the key)."
        ),
        click.option("--api-version", help="Azure OpenAI API version."),
        click.option(
            "--max-requests",
            type=click.IntRange(min=1),
            help="Split into jobs of at most this many requests.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


MAX_COST_OPTION = click.option(
    "--max-cost-usd",
    type=click.FloatRange(min=0),
    help="The batch's own spend cap: a start whose estimated cost passes it is refused.",
)


def _create(ctx: click.Context, file: Path | None, name: str | None, **options: Any) -> Any:
    from langbatch_core.batch import Batch
    from langbatch_core.estimates import estimate_run

    table = split_table_options(options)
    if table["table"] is not None:
        given = any(ctx.get_parameter_source(o) is not ParameterSource.DEFAULT for o in options)
        connection = make_connection(**options) if given or not table["like"] else None  # else --like's
        batch = create_from_table(_storage(ctx), connection, name, table)
    elif file is None:
        raise click.ClickException("Give a request FILE, or --table with --template (one request per row).")
    else:
        batch = Batch.from_file(file, storage=_storage(ctx), connection=make_connection(**options), name=name)
    batch.save()
    click.echo(
        f"Created batch {batch.id} ({batch.record.request_count:,} requests, "
        f"{_endpoint_text(batch.record.endpoint)})."
    )
    if batch.validation is not None:  # always, for a batch made from a file
        _echo_estimate(estimate_run(batch.validation, batch.connection))
    echo_pilot_hint(batch)
    return batch


@cli.command()
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="A label shown in lists and in the dashboard.")
@click.option("--start", "start_now", is_flag=True, help="Start it right away.")
@MAX_COST_OPTION
@table_options
@connection_options
@click.pass_context
def create(ctx: click.Context, file: Path | None, name: str | None, start_now: bool,
           max_cost_usd: float | None, **options: Any) -> None:  # fmt: skip
    """Validate a request file (or render one from a --table) and store it as a batch (not started unless
    --start); prints its id.

    Example:

        \b
        langbatch create requests.jsonl --name demo --connection openai --start
        langbatch create --table reviews.csv --template 'Sentiment of: {{ review }}' --schema fields.json
        langbatch create --table june.csv --like lb_3f2a9c...
    """
    batch = _create(ctx, file, name, **options)
    if start_now:
        _start(batch, created=True, max_cost_usd=max_cost_usd)


@cli.command()
@click.argument("batch_or_file")
@click.option("--name", help="A label, when starting a file.")
@MAX_COST_OPTION
@connection_options
@click.pass_context
def start(ctx: click.Context, batch_or_file: str, name: str | None, max_cost_usd: float | None,
          **options: Any) -> None:  # fmt: skip
    """Start a stored batch by id, or create and start one from a request file.

    Connection options apply when a file is given.

    Example:

        \b
        langbatch start lb_3f2a9c...
        langbatch start requests.jsonl --connection openai
    """
    from langbatch_core.storage.base import BATCH_ID

    path = Path(batch_or_file)
    if not path.is_file() and not BATCH_ID.match(batch_or_file):
        raise click.ClickException(
            f"{batch_or_file} is neither a request file nor a batch id: check the path, or copy an id from "
            "`langbatch list`."
        )
    if path.is_file():
        _start(_create(ctx, path, name, **options), created=True, max_cost_usd=max_cost_usd)
    else:
        _start(_load(ctx, batch_or_file), max_cost_usd=max_cost_usd)


def _start(batch: Any, created: bool = False, max_cost_usd: float | None = None) -> None:
    """Start a batch. If one just created fails before any job is recorded, it is deleted again (the same
    command can simply be run again); otherwise the message says how to go on."""
    try:
        batch.start(max_cost_usd=max_cost_usd)
    except LangBatchError as exc:
        if not created:
            raise
        if not batch.record.jobs:
            batch.delete()
            raise click.ClickException(
                f"{exc}\nNothing was kept: fix the cause and run the command again."
            ) from exc
        raise click.ClickException(
            f"{exc}\nBatch {batch.id} is stored but its submission did not finish: fix the cause, then "
            f"`langbatch start {batch.id}` (nothing is sent twice), or drop it: "
            f"`langbatch delete {batch.id} --yes --force`."
        ) from exc
    click.echo(f"Started {batch.id}: {len(batch.record.jobs)} job(s), status {batch.record.status}.")


# -- watch ------------------------------------------------------------------------------------------------


@click.option("--json", "as_json", is_flag=True, help="Print the whole record as JSON.")
@batch_command
def status(ctx: click.Context, batch_id: str, as_json: bool) -> None:
    """Refresh a batch from its provider and show its status, counts, error codes and jobs.

    Example:

        \b
        langbatch status lb_3f2a9c...
    """
    batch = _load(ctx, batch_id)
    record = batch.refresh()
    if as_json:
        _echo_json(record.to_dict())
        return
    click.echo(f"{record.id} {record.name or ''}".rstrip())
    click.echo(f"status {record.status}: {_counts(record)}")
    errors = batch.error_counts()
    if errors:
        click.echo("errors: " + " · ".join(f"{code} {count:,}" for code, count in errors.items()))
    for job in record.jobs:
        counts = job.request_counts
        done = f"{counts.get('completed', 0)} ok, {counts.get('failed', 0)} failed" if counts else ""
        click.echo(
            f"  job {job.key} (attempt {job.attempt}) {job.provider_job_id or '—'} {job.status} {done}"
        )


def _counts(record: Any) -> str:
    return (
        f"{record.succeeded:,} succeeded, {record.failed:,} failed, {record.not_run:,} not run, "
        f"{record.pending:,} pending of {record.request_count:,}"
    )


@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Seconds between polls.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    help="Give up waiting after this many seconds (the batch runs on).",
)
@batch_command
def wait(ctx: click.Context, batch_id: str, poll_interval: float, timeout: float | None) -> None:
    """Wait for a batch; exit 1 if its latest jobs failed or --timeout passed first.

    On a terminal it shows a progress bar; otherwise (a log, a pipe, CI) one line each time the counts
    change: lb_… in_progress 1,200/20,361 succeeded · 3 failed · 19,158 pending.

    Example:

        \b
        langbatch wait lb_3f2a9c... --poll-interval 10
    """
    batch = _load(ctx, batch_id)
    shown = _progress_bar if sys.stdout.isatty() else _progress_lines
    with shown(batch) as report:
        try:
            final = batch.wait(poll_interval=poll_interval, callback=report, timeout=timeout)
        except KeyboardInterrupt:
            click.echo(
                f"\nStopped waiting; {batch.id} keeps running. Resume with `langbatch wait {batch.id}`."
            )
            ctx.exit(130)
    click.echo(f"{final}: {_counts(batch.record)}")
    if batch.record.pending:
        raise click.ClickException(
            f"Still {final} after {timeout or 0:g} s; {batch.id} keeps running: "
            f"`langbatch wait {batch.id}` again."
        )
    batch.raise_for_status()


@contextlib.contextmanager
def _progress_bar(batch: Any) -> Iterator[Callable[[dict[str, Any]], None]]:
    """On a terminal: a bar over the requests, with the counts beside it."""
    with click.progressbar(
        length=max(batch.record.request_count, 1), label=batch.id, item_show_func=lambda line: line
    ) as bar:

        def report(progress: dict[str, Any]) -> None:
            finished = progress["succeeded"] + progress["failed"] + progress["not_run"]
            bar.update(finished - bar.pos, _progress_counts(progress))

        yield report


@contextlib.contextmanager
def _progress_lines(batch: Any, quiet_for: float = 300.0) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Off a terminal (a log, a pipe, CI): one line each time the progress changes, and the same line again
    after ``quiet_for`` seconds without change, so a long wait never looks hung."""
    last_line, last_at = "", 0.0

    def report(progress: dict[str, Any]) -> None:
        nonlocal last_line, last_at
        line = f"{progress['batch_id']} {progress['status']} {_progress_counts(progress)}"
        if line != last_line or time.monotonic() - last_at >= quiet_for:
            click.echo(line)
            last_line, last_at = line, time.monotonic()

    yield report


def _progress_counts(progress: dict[str, Any]) -> str:
    return (
        f"{progress['succeeded']:,}/{progress['total']:,} succeeded · {progress['failed']:,} failed · "
        f"{progress['not_run']:,} not run · {progress['pending']:,} pending"
    )


# -- act --------------------------------------------------------------------------------------------------


@click.option("--include-client-errors", is_flag=True, help="Also resubmit requests the API rejected (4xx).")
@batch_command
def retry(ctx: click.Context, batch_id: str, include_client_errors: bool) -> None:
    """Resubmit, as new jobs, only the requests without a successful result.

    Example:

        \b
        langbatch retry lb_3f2a9c...
    """
    batch = _load(ctx, batch_id)
    count = batch.retry(include_client_errors=include_client_errors)
    click.echo(
        f"Resubmitted {count} request(s)." if count else f"Nothing to retry: {_why_no_retry(batch.record)}"
    )


def _why_no_retry(record: Any) -> str:
    if record.pending:
        return f"{record.pending} request(s) still running; `langbatch wait {record.id}` first."
    if record.succeeded == record.request_count:
        return f"all {record.request_count} request(s) succeeded."
    return (
        f"the {record.failed} failed request(s) were rejected as invalid (4xx); fix them, or pass "
        "--include-client-errors to resubmit them as they are."
    )


@batch_command
def cancel(ctx: click.Context, batch_id: str) -> None:
    """Cancel a batch's running jobs (finished results are kept; retry resubmits the rest).

    Example:

        \b
        langbatch cancel lb_3f2a9c...
    """
    click.echo(f"{batch_id}: {_load(ctx, batch_id).cancel()}")


@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Delete even with jobs running (they are not cancelled).")
@batch_command
def delete(ctx: click.Context, batch_id: str, yes: bool, force: bool) -> None:
    """Delete a batch and its files (it must not be running: cancel it first, or --force).

    Example:

        \b
        langbatch delete lb_3f2a9c... --yes
    """
    batch = _load(ctx, batch_id)
    if not yes:
        click.confirm(f"Delete {batch_id} and its files?", abort=True)
    batch.delete(force=force)
    click.echo(f"Deleted {batch_id}.")


@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Export to this file.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]), help="Default: by suffix.")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@click.option("--show", is_flag=True, help="Print the answers (failed rows: the error code and message).")
@click.option("--table", "as_table", is_flag=True, help="Your table, answers joined (-o .xlsx/.csv).")
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Rows --show prints."
)
@batch_command
def results(ctx: click.Context, batch_id: str, output: Path | None, fmt: str | None, force: bool,
            show: bool, as_table: bool, limit: int) -> None:  # fmt: skip
    """Show a batch's result counts and merged result file, print its answers, or export the results table.

    Example:

        \b
        langbatch results lb_3f2a9c... --show --limit 5
        langbatch results lb_3f2a9c... -o answers.parquet
        langbatch results lb_3f2a9c... --table -o answers.xlsx
    """
    if output is not None and output.exists() and not force:
        raise click.ClickException(
            f"{output} already exists: pass --force to overwrite it, or choose another path."
        )
    batch = _load(ctx, batch_id)
    path = batch.get_results_file()
    click.echo(f"{batch.record.status}: {_counts(batch.record)}")
    if as_table:
        write_results_table(batch, output, limit)
        return
    if show:
        _show_rows(batch, limit)
    if output is None:
        click.echo(f"Merged results (OpenAI JSONL): {path}")
        return
    written = batch.export_results(output, format=fmt)
    audit_log.record(batch.storage, batch.actor, "downloaded", batch.id, f"results as {written.name}")
    click.echo(f"Wrote {written}")


def _show_rows(batch: Any, limit: int, width: int = 200) -> None:
    """One line per request (failures last, as in the result file): custom_id, status, answer or error."""
    table = batch.results_table()
    rows = table.head(limit).to_dict("records")
    id_width = min(max((len(row["custom_id"]) for row in rows), default=0), 40)
    for row in rows:
        text = " ".join(_row_text(row).split())
        text = text if len(text) <= width else text[: width - 1] + "…"
        click.echo(f"{row['custom_id']:<{id_width}}  {row['status']:<9}  {text}".rstrip())
    if len(table) > limit:
        click.echo(
            f"… {len(table) - limit:,} more: --limit {len(table)} shows them all, -o answers.csv exports "
            "them."
        )


def _row_text(row: dict[str, Any]) -> str:
    """What a request got, as words: its answer, refusal, tool calls or embedding, or its error."""

    def given(name: str) -> Any:
        value = row.get(name)
        return None if value is None or value != value or value == "" else value  # None, nan, empty

    if row["status"] != "succeeded":
        code, message = given("error_code"), given("error_message")
        return ": ".join(str(part) for part in (code, message) if part is not None) or row["status"]
    if given("answer") is not None:
        return str(row["answer"])
    if given("refusal") is not None:
        return f"refused: {row['refusal']}"
    if given("tool_calls") is not None:
        return f"tool calls: {row['tool_calls']}"
    if given("embedding_dim") is not None:
        return f"embedding ({int(row['embedding_dim']):,} dimensions)"
    return "—"


@click.option("--name", help="A label (default: the pilot's name + ' (rest)').")
@click.option("--start", "start_now", is_flag=True, help="Start it right away.")
@batch_command
def rest(ctx: click.Context, batch_id: str, name: str | None, start_now: bool) -> None:
    """After a pilot (create --table … --pilot N): a batch of the rows the pilot did not send; its results
    table holds every row, the pilot's answers included.

    Example:

        \b
        langbatch rest lb_3f2a9c... --start
    """
    batch = _load(ctx, batch_id).rest(**({"name": name} if name else {}))
    batch.save()
    click.echo(f"Created batch {batch.id} ({batch.record.request_count:,} requests, the rest of {batch_id}).")
    if start_now:
        _start(batch, created=True)


@cli.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@click.pass_context
def list_batches(ctx: click.Context, as_json: bool) -> None:
    """List stored batches, newest first (as stored; `status` refreshes one). Where team settings restrict
    access, yours only ($LANGBATCH_USER, else the OS user) unless you are an admin.

    Example:

        \b
        langbatch list --json
    """
    owner = _access().owner_filter
    if as_json:
        _echo_json([record.summary() for record in _storage(ctx).list(owner=owner)])
        return
    rows = _storage(ctx).summaries(owner=owner)  # the listed columns only: no whole record is read
    if not rows:
        click.echo(_empty_list_hint(ctx, owner))
    for row in rows:
        created = dt.datetime.fromtimestamp(row.created_at).strftime("%Y-%m-%d %H:%M")
        click.echo(
            f"{row.id}  {created}  {row.status:<11} {row.succeeded}/{row.request_count} ok "
            f"{row.failed} failed {row.not_run} not run {row.pending} pending  "
            f"{row.connection or '—'}  {row.model or '—'}  {row.name or ''}".rstrip()
        )


def _access() -> Any:
    """Who runs this command and which batches they may act on (``team.Access``)."""
    from langbatch_core import team

    return team.settings().access(team.current_user())


def _empty_list_hint(ctx: click.Context, owner: str | None) -> str:
    others = len(_storage(ctx, other=True).list(owner=owner))
    if not others and owner is not None:
        return (
            f"No batches of yours ({owner}) yet: `langbatch create requests.jsonl` makes one. Team settings "
            "restrict access: you see your own batches ($LANGBATCH_USER, else the OS user), admins all."
        )
    if not others:
        return "No batches yet: `langbatch create requests.jsonl` makes one."
    other = "files" if ctx.obj["store"] == "duckdb" else "duckdb"
    return (
        f"No batches in the {ctx.obj['store']} store, but {others} in the {other} store (batches saved "
        f"from Python by earlier versions are there): `langbatch --store {other} list`."
    )


# -- servers ----------------------------------------------------------------------------------------------


@cli.command()
@click.option("--port", type=int, default=8501, show_default=True, help="Port of the dashboard.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (keep it local).")
def dashboard(port: int, host: str) -> None:
    """Open the Streamlit dashboard (from this checkout's dashboard/ folder), from any folder.

    It runs with the checkout's .streamlit/config.toml settings (127.0.0.1, XSRF protection, no usage
    statistics, no stack traces, the theme). The pages' libraries are loaded before the server answers, so
    that the first visitor does not wait for them. On Ctrl-C it says whether the local engine keeps running.

    Example:

        \b
        langbatch dashboard --port 8501
    """
    import signal
    import subprocess

    process = subprocess.Popen(dashboard_command(port, host))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches Streamlit too: let it stop, then report
    signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    code = process.wait()
    click.echo(_engine_left_running_note(), err=True)
    sys.exit(0 if code in (0, -signal.SIGINT) else code)


def _engine_left_running_note() -> str:
    from langbatch_core.local.control import engine_status

    status = engine_status()
    if status is None:
        return "Dashboard stopped."
    running = status["running_batches"]
    why = f", {running} batch(es) running, so they finish" if running else ""
    return (
        "Dashboard stopped. The local engine keeps running "
        f"({status['base_url']}, pid {status['pid']}{why}); stop it with `langbatch engine stop` "
        "(or `make stop-engine`)."
    )


def dashboard_command(port: int, host: str, app: Path | None = None) -> list[str]:
    """The command that serves the dashboard: its launcher (``dashboard/launch.py``, which imports what the
    pages need before the server answers, then runs ``streamlit run app.py``) with every setting of the
    checkout's ``.streamlit/config.toml`` as a flag (so the folder it is run from does not matter);
    ClickException when the dashboard is missing."""
    app = app or DASHBOARD_APP
    launcher = app.with_name("launch.py")
    settings = app.parents[1] / ".streamlit" / "config.toml"
    missing = next((path for path in (app, launcher, settings) if not path.is_file()), None)
    if missing is not None:
        raise click.ClickException(
            f"The dashboard is not here ({missing} is missing): it ships in the dashboard/ and .streamlit/ "
            "folders of the LangBatch repository. Run `make run` from a checkout."
        )
    flags = streamlit_flags(settings, {"server.address": host, "server.port": port})
    return [sys.executable, str(launcher), *flags]


def streamlit_flags(settings: Path, overrides: dict[str, Any]) -> list[str]:
    """``--section.key value`` for every setting in the TOML file ``settings``, then ``overrides``."""
    import tomllib

    values: dict[str, Any] = {}

    def flatten(prefix: str, table: dict[str, Any]) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                flatten(f"{prefix}{key}.", value)
            else:
                values[f"{prefix}{key}"] = value

    flatten("", tomllib.loads(settings.read_text()))
    values.update(overrides)
    flags = []
    for name, value in values.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        flags += [f"--{name}", text]
    return flags


# -- the local engine -------------------------------------------------------------------------------------


@cli.group()
def engine() -> None:
    """See and stop the local engine that runs batches on this data directory.

    The dashboard and the CLI start it when a batch on the local engine starts; it keeps running in the
    background so batches finish. Its state is on disk: running batches resume at its next start.

    Example:

        langbatch engine status && langbatch engine stop
    """


@engine.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def engine_status_command(as_json: bool) -> None:
    """Show whether the local engine runs: URL, pid, backend, data directory, running batches.

    Example:

        langbatch engine status
    """
    from langbatch_core.config import data_dir
    from langbatch_core.local.control import engine_status

    status = engine_status()
    if as_json:
        _echo_json(status or {"running": False, "data_dir": str(data_dir())})
        return
    if status is None:
        click.echo(
            f"No local engine is running for {data_dir()}. It starts by itself when a batch on the local "
            "engine starts (or run `langbatch serve`)."
        )
        return
    click.echo("The local engine is running.")
    for label, value in _engine_rows(status):
        click.echo(f"  {label:<17}{value}")
    click.echo("Stop it with `langbatch engine stop` (running batches resume at its next start).")


def _engine_rows(status: dict[str, Any]) -> list[tuple[str, Any]]:
    backend = status.get("backend") or "—"
    if status.get("model"):
        backend = f"{backend} ({status['model']})"
    rows = [("URL", status["base_url"]), ("pid", status["pid"]), ("backend", backend)]
    rows += [("data directory", status["data_dir"]), ("running batches", status["running_batches"])]
    return rows


@engine.command(name="stop")
def engine_stop_command() -> None:
    """Stop the local engine cleanly; running batches resume when it starts again.

    Example:

        langbatch engine stop
    """
    from langbatch_core.config import data_dir
    from langbatch_core.local.control import stop_engine

    status = stop_engine()
    if status is None:
        click.echo(f"No local engine is running for {data_dir()}: nothing to stop.")
        return
    running = status["running_batches"]
    after = f" Its {running} running batch(es) resume when it starts again." if running else ""
    click.echo(f"Stopped the local engine (pid {status['pid']}, {status['base_url']}).{after}")


cli.add_command(connections)
cli.add_command(audit)
cli.add_command(spend)


def main() -> None:
    """Entry point of the ``langbatch`` console script."""
    cli(prog_name="langbatch")


if __name__ == "__main__":
    main()
