"""Named connections kept in the data directory, for Python, the CLI and the dashboard alike.

    from langbatch_core.providers.saved import save_connection, saved_connection
    save_connection("groq", Connection.compatible("https://api.groq.com/openai/v1", api_key_env="GROQ_KEY"))
    saved_connection("groq")            # that Connection, named "groq"
    langbatch create requests.jsonl --connection groq

Kept: the kind, URL, the key's variable NAME, default model, API version and per-job limits; never a key
(``Connection`` refuses keys and credentials in URLs). One JSON list in ``<data>/connections.json``, written
to a temp file and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from langbatch_core import config
from langbatch_core.errors import ConfigurationError
from langbatch_core.providers.connection import Connection
from langbatch_core.providers.kinds import connection_kind, connection_kinds
from langbatch_core.storage.files import write_atomic

STORE_NAME = "connections.json"
_EARLIER_STORE = Path("dashboard") / "connections.json"  # where the dashboard kept them before


def store_path(data_dir: Path | None = None) -> Path:
    """``<data>/connections.json``."""
    return (data_dir or config.data_dir()) / STORE_NAME


def saved_connections(data_dir: Path | None = None) -> list[Connection]:
    """The saved connections, in the order saved. An unreadable file counts as none here (saving refuses to
    overwrite it); an entry that no longer makes a connection (its provider uninstalled) is left out."""
    try:
        entries = _entries(data_dir)
    except ConfigurationError:
        return []
    found = []
    for entry in entries:
        try:
            found.append(_from_entry(entry))
        except (ConfigurationError, TypeError, AttributeError, KeyError):
            continue
    return found


def _entries(data_dir: Path | None) -> list[Any]:
    """The stored entries as they are; ConfigurationError when the file cannot be read."""
    path = store_path(data_dir)
    if not path.exists():
        path = path.parent / _EARLIER_STORE
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        entries = exc
    if not isinstance(entries, list):
        raise ConfigurationError(
            f"The saved connections in {path} cannot be read (not a JSON list): fix the file, or move it "
            "away to start afresh. It is left as it is.",
            field="connections",
        )
    return entries


def saved_connection(name: str, data_dir: Path | None = None) -> Connection:
    """The saved connection called ``name``; ConfigurationError naming the saved ones."""
    for connection in saved_connections(data_dir):
        if connection.name == name:
            return connection
    names = ", ".join(c.name or "" for c in saved_connections(data_dir)) or "none yet"
    raise ConfigurationError(
        f"No saved connection is called {name!r} (saved: {names}). Add it with `langbatch connections add`.",
        field="name",
    )


def check_name(name: str) -> None:
    """Refuse an empty name, or one a kind already answers to (``openai``, ``Azure OpenAI``, ...)."""
    if not name.strip():
        raise ConfigurationError("Give the connection a name.", field="name")
    taken = {word.casefold() for kind in connection_kinds() for word in (kind.name, kind.label)}
    if name.strip().casefold() in taken:
        raise ConfigurationError(f"{name!r} is a built-in connection; choose another name.", field="name")


def save_connection(name: str, connection: Connection, data_dir: Path | None = None) -> Connection:
    """Add or replace (by name) a saved connection; returns it, named ``name``."""
    check_name(name)
    connection_kind(connection.kind)  # a kind nobody serves cannot be used later either
    named = replace(connection, name=name.strip(), retrying=None)
    others = [entry for entry in _entries(data_dir) if _name(entry) != named.name]
    _write([*others, to_entry(named)], data_dir)
    return named


def delete_connection(name: str, data_dir: Path | None = None) -> bool:
    """Forget the saved connection called ``name``; False if there was none."""
    entries = _entries(data_dir)
    kept = [entry for entry in entries if _name(entry) != name]
    if len(kept) == len(entries):
        return False
    _write(kept, data_dir)
    return True


def _name(entry: Any) -> Any:
    return entry.get("name") if isinstance(entry, dict) else None


def _write(entries: list[Any], data_dir: Path | None) -> None:
    """Every entry, kept as read (one whose provider is not installed now is not lost), written at once."""
    write_atomic(store_path(data_dir), json.dumps(entries, indent=2).encode("utf-8"))


def to_entry(connection: Connection) -> dict[str, Any]:
    """What the store keeps of a connection (JSON-ready, no secret)."""
    from langbatch_core.requests import Limits

    limits = connection.limits
    default_requests = Limits().max_requests
    return {
        "name": connection.name,
        "kind": connection.kind,
        "base_url": connection.base_url,
        "api_key_env": connection.api_key_env,
        "model": connection.model,
        "api_version": connection.api_version,
        "max_requests": limits.max_requests if limits and limits.max_requests != default_requests else None,
        "max_enqueued_tokens": limits.max_enqueued_tokens if limits else None,
    }


def limits_of(max_requests: int | None, max_enqueued_tokens: int | None) -> Any:
    """``Limits`` with these two set (None: the provider's), or None when neither is given."""
    if not (max_requests or max_enqueued_tokens):
        return None
    from langbatch_core.requests import Limits

    given = {"max_requests": max_requests} if max_requests else {}
    return Limits(max_enqueued_tokens=max_enqueued_tokens, **given)


def _from_entry(entry: dict[str, Any]) -> Connection:
    return Connection(
        kind=entry.get("kind") or "compatible",
        base_url=entry.get("base_url"),
        api_key_env=entry.get("api_key_env"),
        model=entry.get("model"),
        name=entry["name"],
        api_version=entry.get("api_version"),
        limits=limits_of(entry.get("max_requests"), entry.get("max_enqueued_tokens")),
    )
