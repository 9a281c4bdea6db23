"""The CLI's connections: ``--connection`` (a kind, or a saved connection's name) and
``langbatch connections list|add|remove``, over the core's registry of kinds and saved connections.

    langbatch connections add my-vllm --base-url http://gpu-box:8000/v1 --api-key-env VLLM_KEY
    langbatch create requests.jsonl --connection my-vllm
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import click
import orjson

from langbatch_core.providers import Connection, connection_kinds, find_kind
from langbatch_core.providers import saved as saved_store


class ConnectionName(click.ParamType):
    """A connection kind's name or, unless ``kinds_only``, a saved connection's; the choices are read when
    asked for, so installed providers and connections saved since appear."""

    name = "connection"

    def __init__(self, kinds_only: bool = False) -> None:
        self.kinds_only = kinds_only

    def choices(self) -> list[str]:
        kinds = [kind.name for kind in connection_kinds()]
        saved = [] if self.kinds_only else [c.name for c in saved_store.saved_connections() if c.name]
        return kinds + saved

    def get_metavar(self, param: click.Parameter, *args: Any, **kwargs: Any) -> str:
        return "[" + "|".join(self.choices()) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        choices = self.choices()
        if value in choices:
            return value
        what = (
            "not a connection kind" if self.kinds_only else "neither a connection kind nor a saved connection"
        )
        self.fail(
            f"{value!r} is {what}. Choose one of: {', '.join(choices)} (`langbatch connections list`).",
            param,
            ctx,
        )

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        return [click.shell_completion.CompletionItem(c) for c in self.choices() if c.startswith(incomplete)]


CONNECTION_OPTION = click.option(
    "--connection",
    "kind",
    type=ConnectionName(),
    default="local",
    show_default=True,
    help="Where to run: a kind (the local engine, OpenAI, Azure OpenAI, any OpenAI-compatible API, or an "
    "installed provider's), or the name of a saved connection (`langbatch connections list`).",
)


def make_connection(kind: str, base_url: str | None, api_key_env: str | None, api_version: str | None,
                    max_requests: int | None) -> Connection:  # fmt: skip
    """The connection ``--connection`` names: a kind's, or a saved one; the other options given replace
    what they name."""
    from langbatch_core.requests import Limits

    if find_kind(kind):
        connection = Connection(
            kind, base_url=base_url or None, api_key_env=api_key_env or None, api_version=api_version or None
        )
    else:
        saved = saved_store.saved_connection(kind)
        connection = replace(
            saved,
            base_url=base_url or saved.base_url,
            api_key_env=api_key_env or saved.api_key_env,
            api_version=api_version or saved.api_version,
        )
    if max_requests:
        connection = connection.with_limits(replace(connection.limits or Limits(), max_requests=max_requests))
    return connection


@click.group(name="connections")
def connections() -> None:
    """Saved connections: a name for a kind, URL, key variable and limits, used as --connection NAME by
    create, start and validate, and listed in the dashboard. Keys are never saved: only their variable's
    name.

    Example:

        \b
        langbatch connections add groq --base-url https://api.groq.com/openai/v1
        langbatch create requests.jsonl --connection groq
    """


@connections.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print the kinds and saved connections as JSON.")
def list_connections(as_json: bool) -> None:
    """The connection kinds, then the saved connections (whether each key is set; never its value).

    Example:

        \b
        langbatch connections list
    """
    kinds, saved = connection_kinds(), saved_store.saved_connections()
    if as_json:
        rows = [{**saved_store.to_entry(c), "key_set": _key_set(c)} for c in saved]
        kind_rows = [{"name": k.name, "label": k.label, "default_key_env": k.default_key_env} for k in kinds]
        click.echo(orjson.dumps({"kinds": kind_rows, "saved": rows}, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo("Kinds (--connection KIND):")
    for kind in kinds:
        needs = "  needs --base-url" if kind.needs_base_url else ""
        click.echo(f"  {kind.name:<12}{kind.label}{needs}")
    click.echo(f"Saved ({saved_store.store_path()}):" if saved else "No saved connections yet.")
    for conn in saved:
        key = (
            f"key {conn.api_key_env} {'set' if _key_set(conn) else 'NOT set'}"
            if conn.api_key_env
            else "no key"
        )
        click.echo(f"  {conn.name:<12}{conn.describe().removeprefix(f'{conn.name}: ')}  {key}")


def _key_set(connection: Connection) -> bool:
    return bool(connection.api_key_env and os.environ.get(connection.api_key_env))


@connections.command(name="add")
@click.argument("name")
@click.option("--kind", type=ConnectionName(kinds_only=True), default="compatible", show_default=True)
@click.option("--base-url", help="API root, like https://api.groq.com/openai/v1 (compatible: required).")
@click.option("--api-key-env", help="NAME of the environment variable holding the key (never the key).")
@click.option("--api-version", help="Azure OpenAI API version.")
@click.option("--model", help="Default model of batches made with it.")
@click.option("--max-requests", type=click.IntRange(min=1), help="Requests per job (the split plan).")
@click.option(
    "--max-enqueued-tokens", type=click.IntRange(min=1), help="The provider's enqueued-token limit."
)
def add_connection(name: str, kind: str, max_requests: int | None, max_enqueued_tokens: int | None,
                   **fields: Any) -> None:  # fmt: skip
    """Save (or replace) the connection NAME; the key stays in the variable --api-key-env names.

    Example:

        \b
        langbatch connections add my-vllm --base-url http://gpu-box:8000/v1
        langbatch connections add eu --kind azure --base-url https://eu.openai.azure.com
    """
    limits = saved_store.limits_of(max_requests, max_enqueued_tokens)
    given = {field: value for field, value in fields.items() if value}
    connection = saved_store.save_connection(name, Connection(kind, limits=limits, **given))
    click.echo(f"Saved {connection.describe()}. Use it: langbatch create requests.jsonl --connection {name}")


@connections.command(name="remove")
@click.argument("name")
def remove_connection(name: str) -> None:
    """Forget the saved connection NAME (batches made with it keep their own copy).

    Example:

        \b
        langbatch connections remove my-vllm
    """
    if not saved_store.delete_connection(name):
        saved_store.saved_connection(name)  # there is none: raises the error naming the saved ones
    click.echo(f"Removed the saved connection {name}.")
