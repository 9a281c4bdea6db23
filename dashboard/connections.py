"""The connections the dashboard offers: one per kind that needs no URL (the local engine, OpenAI, Azure
OpenAI, and any installed provider's), then the saved ones (``langbatch_core.providers.saved``).

    conns = connections.all_connections()
    connections.key_configured(conns[1])      # True when OPENAI_API_KEY is in the env or st.secrets

A connection names the *variable* that holds its key, never the key: keys come from the environment or
``st.secrets`` and are never written anywhere.
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from langbatch_core import config
from langbatch_core.errors import ConfigurationError, SecretInSettingError
from langbatch_core.providers import Connection, ConnectionKind, connection_kinds, find_kind
from langbatch_core.providers import saved as saved_store
from langbatch_core.requests import Limits

ENGINE_URL_ENV = config.ENGINE_URL_ENV  # use this running engine instead of starting one
DEFAULT_MAX_REQUESTS = Limits().max_requests
KEY_NAME_ONLY = (
    "The key variable must be the *name* of an environment variable (letters, digits, _), such as "
    "GROQ_API_KEY — never the key itself."
)
NO_CREDENTIAL_IN_URL = (
    "The base URL must not hold a credential (a user part before @, or a key in the query): put the key in "
    "an environment variable and name it in the key variable field."
)
URL_WITH_SCHEME = "The base URL must start with http:// or https:// (e.g. https://host/v1)."
# the form's words for what the core names by its Python field
FIELD_MESSAGES: dict[tuple[type[ConfigurationError], str | None], str] = {
    (SecretInSettingError, "api_key_env"): KEY_NAME_ONLY,
    (SecretInSettingError, "base_url"): NO_CREDENTIAL_IN_URL,
    (ConfigurationError, "base_url"): URL_WITH_SCHEME,
}


def kind_labels() -> dict[str, str]:
    """Every connection kind's label by name, from the core's registry."""
    return {kind.name: kind.label for kind in connection_kinds()}


def builtin_connections() -> list[Connection]:
    """The connections that always exist: one per kind that needs no URL, named by its label."""
    return [_builtin(kind) for kind in connection_kinds() if not kind.needs_base_url]


def _builtin(kind: ConnectionKind) -> Connection:
    try:
        return Connection(kind.name, base_url=secret(kind.base_url_env), name=kind.label)
    except ConfigurationError:  # a wrong URL in the variable: the provider says so when it is used
        return Connection(kind.name, name=kind.label)


def saved_connections() -> list[Connection]:
    """The connections saved on the Settings page or with ``langbatch connections add``."""
    return saved_store.saved_connections()


def all_connections() -> list[Connection]:
    """Built-in connections first, then the saved ones."""
    return builtin_connections() + saved_connections()


def make_connection(kind: str, name: str, **fields: Any) -> Connection:
    """The connection the Settings form describes (``max_requests``/``max_enqueued_tokens`` as limits);
    ConfigurationError in the form's words."""
    max_requests, max_tokens = fields.pop("max_requests", None), fields.pop("max_enqueued_tokens", None)
    try:
        return Connection(kind, name=name, limits=saved_store.limits_of(max_requests, max_tokens), **fields)
    except ConfigurationError as exc:
        message = FIELD_MESSAGES.get((type(exc), exc.field))
        raise ConfigurationError(message or str(exc), field=exc.field) from None


def save_connection(conn: Connection) -> None:
    """Add or replace (by name) a saved connection."""
    saved_store.save_connection(conn.name or "", conn)


def delete_connection(name: str) -> None:
    """Forget the saved connection called ``name``."""
    saved_store.delete_connection(name)


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


def needs_key(conn: Connection) -> bool:
    """Whether the connection's kind needs a key (an unknown kind is assumed to)."""
    kind = find_kind(conn.kind)
    return kind is None or kind.needs_key


def key_configured(conn: Connection) -> bool:
    """Whether the key this connection needs can be found (its value is never shown)."""
    return not needs_key(conn) or secret(conn.api_key_env) is not None


def export_key(conn: Connection) -> None:
    """Make a key (or URL) that lives only in ``st.secrets`` visible to ``langbatch_core`` (process memory
    only)."""
    kind = find_kind(conn.kind)
    for name in (conn.api_key_env, kind.base_url_env if kind else None):
        value = secret(name)
        if name and value and not os.environ.get(name):
            os.environ[name] = value


def to_core(conn: Connection) -> Connection:
    """``conn`` ready for ``langbatch_core``: its key (from ``st.secrets`` too) visible to the provider."""
    export_key(conn)
    return conn


def _default_url(conn: Connection) -> str:
    kind = find_kind(conn.kind)
    if conn.kind == "local":
        return "started on demand"
    if conn.kind == "openai":
        return os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
    return f"not set ({kind.base_url_env})" if kind and kind.base_url_env else "not set"


def label(conn: Connection) -> str:
    """``OpenAI`` or ``Groq (OpenAI-compatible API)``: the name, plus the kind unless the name says it."""
    kind = kind_labels().get(conn.kind, conn.kind)
    return conn.name if conn.name == kind else f"{conn.name} ({kind})"


def describe(conn: Connection) -> dict[str, Any]:
    """A row of the Settings page's connections table."""
    limits = conn.limits
    max_requests = limits.max_requests if limits and limits.max_requests != DEFAULT_MAX_REQUESTS else None
    max_tokens = limits.max_enqueued_tokens if limits else None
    return {
        "name": conn.name,
        "kind": kind_labels().get(conn.kind, conn.kind),
        # the key columns first: on a narrow screen the wide table scrolls and hides its last columns
        "key configured": key_configured(conn),
        "key variable": conn.api_key_env or "(no key needed)",
        "base URL": conn.base_url or _default_url(conn),
        "default model": conn.model or "",
        "max requests/job": f"{max_requests:,}" if max_requests else f"provider's ({DEFAULT_MAX_REQUESTS:,})",
        "max enqueued tokens": f"{max_tokens:,}" if max_tokens else "no limit",
    }
