"""The connections the dashboard offers: the local engine, OpenAI, Azure OpenAI and saved compatible APIs.

    configs = connections.all_connections()
    connections.key_configured(configs[1])      # True when OPENAI_API_KEY is in the env or st.secrets

A connection names the *variable* that holds its key, never the key: keys come from the environment or
``st.secrets`` and are never written anywhere. Saved connections: ``<data>/dashboard/connections.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from langbatch_core import config
from langbatch_core.errors import ConfigurationError
from langbatch_core.providers import Connection
from langbatch_core.storage.files import write_atomic

KINDS = {
    "local": "Local engine",
    "openai": "OpenAI",
    "azure": "Azure OpenAI",
    "compatible": "OpenAI-compatible API",
}
ENGINE_URL_ENV = config.ENGINE_URL_ENV  # use this running engine instead of starting one


@dataclass
class ConnectionConfig:
    """One entry of the connection picker: ``ConnectionConfig("Groq", "compatible", base_url=...)``."""

    name: str
    kind: str
    base_url: str | None = None
    api_key_env: str | None = None
    model: str | None = None
    max_requests: int | None = None  # per job; the provider's limit when None (shapes the split plan)
    max_enqueued_tokens: int | None = None  # the provider's enqueued-token limit, if it has one
    builtin: bool = field(default=False, compare=False)

    @property
    def needs_key(self) -> bool:
        return self.kind != "local"


def builtin_connections() -> list[ConnectionConfig]:
    """The three connections that always exist."""
    return [
        ConnectionConfig("Local engine", "local", os.environ.get(ENGINE_URL_ENV), builtin=True),
        # base_url None: the openai client's default, or OPENAI_BASE_URL when set
        ConnectionConfig("OpenAI", "openai", None, "OPENAI_API_KEY", builtin=True),
        ConnectionConfig(
            "Azure OpenAI",
            "azure",
            secret("AZURE_OPENAI_ENDPOINT"),
            "AZURE_OPENAI_API_KEY",
            builtin=True,
        ),
    ]


def _store() -> Path:
    return config.data_dir() / "dashboard" / "connections.json"


def saved_connections() -> list[ConnectionConfig]:
    """The compatible connections saved on the Settings page (an unreadable file counts as none)."""
    try:
        entries = json.loads(_store().read_text(encoding="utf-8"))
        return [ConnectionConfig(**{**entry, "builtin": False}) for entry in entries]
    except (OSError, ValueError, TypeError):
        return []


def all_connections() -> list[ConnectionConfig]:
    """Built-in connections first, then the saved ones."""
    return builtin_connections() + saved_connections()


def check_connection(conn: ConnectionConfig) -> None:
    """Raise ``ConfigurationError`` saying which field is wrong and how to fix it."""
    if not conn.name.strip():
        raise ConfigurationError("Give the connection a name.")
    if conn.name in {c.name for c in builtin_connections()}:
        raise ConfigurationError(f"{conn.name!r} is a built-in connection; choose another name.")
    if not (conn.base_url or "").startswith(("http://", "https://")):
        raise ConfigurationError("The base URL must start with http:// or https:// (e.g. https://host/v1).")
    try:  # the library's checks: a variable *name*, never what looks like a key; no credential in the URL
        Connection(kind="compatible", base_url=conn.base_url, api_key_env=conn.api_key_env or None)
    except ConfigurationError as exc:
        if "api_key_env" in str(exc):
            raise ConfigurationError(
                "The key variable must be the *name* of an environment variable (letters, digits, _), "
                "such as GROQ_API_KEY — never the key itself."
            ) from None
        raise ConfigurationError(
            "The base URL must not hold a credential (a user part before @, or a key in the query): put the "
            "key in an environment variable and name it in the key variable field."
        ) from None
    limits = (("requests per job", conn.max_requests), ("enqueued tokens", conn.max_enqueued_tokens))
    for label, value in limits:
        if value is not None and value <= 0:
            raise ConfigurationError(f"The {label} limit must be a positive number, or left empty.")


def save_connection(conn: ConnectionConfig) -> None:
    """Add or replace (by name) a compatible connection; written to a temp file and renamed."""
    check_connection(conn)
    others = [c for c in saved_connections() if c.name != conn.name]
    _write([*others, conn])


def delete_connection(name: str) -> None:
    """Forget the saved connection called ``name``."""
    _write([c for c in saved_connections() if c.name != name])


def _write(conns: list[ConnectionConfig]) -> None:
    entries = [{k: v for k, v in asdict(c).items() if k != "builtin"} for c in conns]
    write_atomic(_store(), json.dumps(entries, indent=2).encode("utf-8"))


# ---------------------------------------------------------------- keys (read, never stored)


def secret(name: str | None) -> str | None:
    """The value of ``name`` from the environment, else from ``st.secrets``; ``None`` when absent."""
    if not name:
        return None
    if os.environ.get(name):
        return os.environ[name]
    try:
        value = st.secrets.get(name)
    except Exception:  # no secrets.toml at all, or an unreadable one
        return None
    return str(value) if value else None


def key_configured(conn: ConnectionConfig) -> bool:
    """Whether the key this connection needs can be found (its value is never shown)."""
    return not conn.needs_key or secret(conn.api_key_env) is not None


def export_key(conn: ConnectionConfig) -> None:
    """Make a key that lives only in ``st.secrets`` visible to ``langbatch_core`` (process memory only)."""
    for name in (conn.api_key_env, "AZURE_OPENAI_ENDPOINT" if conn.kind == "azure" else None):
        value = secret(name)
        if name and value and not os.environ.get(name):
            os.environ[name] = value


def to_core(conn: ConnectionConfig) -> Any:
    """The ``langbatch_core`` ``Connection`` for this entry (no secret inside)."""
    from langbatch_core.providers import Connection

    export_key(conn)
    limits = None
    if conn.max_requests or conn.max_enqueued_tokens:
        from langbatch_core.requests import Limits

        limits = Limits(max_enqueued_tokens=conn.max_enqueued_tokens)
        if conn.max_requests:
            limits.max_requests = conn.max_requests
    return Connection(
        kind=conn.kind,
        base_url=conn.base_url,
        api_key_env=conn.api_key_env,
        model=conn.model,
        name=conn.name,
        limits=limits,
    )


def _default_url(kind: str) -> str:
    if kind == "local":
        return "started on demand"
    if kind == "openai":
        return os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
    return "not set (AZURE_OPENAI_ENDPOINT)" if kind == "azure" else "not set"


def label(conn: ConnectionConfig) -> str:
    """``OpenAI`` or ``Groq (OpenAI-compatible API)``: the name, plus the kind unless the name says it."""
    kind = KINDS.get(conn.kind, conn.kind)
    return conn.name if conn.name == kind else f"{conn.name} ({kind})"


def describe(conn: ConnectionConfig) -> dict[str, Any]:
    """A row of the Settings page's connections table."""
    return {
        "name": conn.name,
        "kind": KINDS.get(conn.kind, conn.kind),
        # the key columns first: on a narrow screen the wide table scrolls and hides its last columns
        "key configured": key_configured(conn),
        "key variable": conn.api_key_env or "(no key needed)",
        "base URL": conn.base_url or _default_url(conn.kind),
        "default model": conn.model or "",
        "max requests/job": f"{conn.max_requests:,}" if conn.max_requests else "provider's (50,000)",
        "max enqueued tokens": f"{conn.max_enqueued_tokens:,}" if conn.max_enqueued_tokens else "no limit",
    }
