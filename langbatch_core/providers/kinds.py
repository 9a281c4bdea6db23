"""The one registry of connection kinds: what each is called, what it needs, and which provider serves it.

    from langbatch_core.providers import connection_kind, connection_kinds
    [kind.name for kind in connection_kinds()]    # local, openai, azure, compatible, then third-party kinds
    connection_kind("azure").label                # 'Azure OpenAI'

The CLI's ``--connection``, the dashboard's pickers and ``Connection`` all read it. A third-party provider
adds its kind with ``register_provider(kind, ProviderClass, label=...)``, or without any code of ours through
the ``langbatch.providers`` entry point group (name: the kind; object: a ``Provider`` subclass, whose
``connection_kind`` class attribute may describe it, or a ``ConnectionKind``).
"""

from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from langbatch_core import config
from langbatch_core.errors import ConfigurationError

if TYPE_CHECKING:
    from langbatch_core.providers.base import Provider

ENTRY_POINT_GROUP = "langbatch.providers"
_OPENAI = "langbatch_core.providers.openai:OpenAIProvider"  # imported when first used: the SDK is heavy
log = logging.getLogger("langbatch.providers")


@dataclass(frozen=True)
class ConnectionKind:
    """A kind of connection: ``name`` (what ``Connection(kind=...)`` and ``--connection`` take), ``label``
    for people, ``provider`` (the class, or ``"module:Class"``), ``default_key_env`` (the key's variable
    when a connection names none), ``needs_key``, ``needs_base_url``, ``base_url_env`` (the variable read
    for the URL when a connection gives none), ``takes_api_version`` (Azure's dated APIs)."""

    name: str
    label: str
    provider: str | type[Provider] = _OPENAI
    default_key_env: str | None = None
    needs_key: bool = True
    needs_base_url: bool = False
    base_url_env: str | None = None
    takes_api_version: bool = False

    def provider_class(self) -> type[Provider]:
        """The class serving this kind (imported now if it was named by ``"module:Class"``)."""
        if isinstance(self.provider, str):
            module, _, attribute = self.provider.partition(":")
            named: type[Provider] = getattr(importlib.import_module(module), attribute)
            return named
        return self.provider


BUILTIN_KINDS = (
    ConnectionKind("local", "Local engine", needs_key=False, base_url_env=config.ENGINE_URL_ENV),
    ConnectionKind("openai", "OpenAI", default_key_env="OPENAI_API_KEY"),
    ConnectionKind(
        "azure",
        "Azure OpenAI",
        default_key_env="AZURE_OPENAI_API_KEY",
        base_url_env="AZURE_OPENAI_ENDPOINT",
        takes_api_version=True,
    ),
    ConnectionKind("compatible", "OpenAI-compatible API", needs_base_url=True),
    ConnectionKind(
        "anthropic",
        "Anthropic",
        "langbatch_core.providers.anthropic:AnthropicProvider",
        default_key_env="ANTHROPIC_API_KEY",
        base_url_env="ANTHROPIC_BASE_URL",
    ),
    ConnectionKind(
        "bedrock",
        "AWS Bedrock",
        "langbatch_core.providers.bedrock:BedrockProvider",
        default_key_env="AWS_ACCESS_KEY_ID",
        needs_key=False,  # boto3 also finds credentials in profiles and instance roles
    ),
    ConnectionKind(
        "mistral",
        "Mistral",
        "langbatch_core.providers.mistral:MistralProvider",
        default_key_env="MISTRAL_API_KEY",
    ),
    ConnectionKind(
        "gemini",
        "Google Gemini",
        "langbatch_core.providers.gemini:GeminiProvider",
        default_key_env="GEMINI_API_KEY",
    ),
)
_REGISTERED: dict[str, ConnectionKind] = {kind.name: kind for kind in BUILTIN_KINDS}
_PLUGINS: dict[str, ConnectionKind] = {}
_plugins_path: tuple[str, ...] | None = None  # the sys.path the entry points were read for


def register_provider(kind: str, cls: type[Provider], **description: Any) -> ConnectionKind:
    """Serve connections of ``kind`` with ``cls``; ``description``: the other ``ConnectionKind`` fields
    (``label``, ``default_key_env``, ...). Registering a known kind again replaces its provider and keeps
    what was said about it unless said again."""
    known = _REGISTERED.get(kind) or _PLUGINS.get(kind)
    entry = (
        replace(known, provider=cls, **description)
        if known
        else ConnectionKind(kind, description.pop("label", kind), cls, **description)
    )
    _REGISTERED[kind] = entry
    return entry


def connection_kinds() -> list[ConnectionKind]:
    """Every kind: the built-in ones, those registered in code, then those of installed entry points."""
    _load_entry_points()
    return [*_REGISTERED.values(), *(kind for name, kind in _PLUGINS.items() if name not in _REGISTERED)]


def find_kind(name: str) -> ConnectionKind | None:
    """The kind called ``name``, None if no one registered it (entry points are read only when needed)."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    _load_entry_points()
    return _PLUGINS.get(name)


def connection_kind(name: str) -> ConnectionKind:
    """The kind called ``name``; ConfigurationError naming the known ones."""
    kind = find_kind(name)
    if kind is None:
        known = ", ".join(k.name for k in connection_kinds())
        raise ConfigurationError(
            f"Unknown connection kind {name!r}. Known kinds: {known}. A new provider registers itself with "
            "langbatch_core.providers.register_provider(kind, ProviderClass), or through the "
            f"'{ENTRY_POINT_GROUP}' entry point group of its package.",
            field="kind",
        )
    return kind


def _load_entry_points() -> None:
    """Read the ``langbatch.providers`` entry points (again when ``sys.path`` changed); a plugin that fails
    to load is logged and left out, so it cannot break LangBatch."""
    global _plugins_path
    if _plugins_path == tuple(sys.path):
        return
    _plugins_path = tuple(sys.path)
    _PLUGINS.clear()
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            _PLUGINS[point.name] = _describe(point.name, point.load())
        except Exception:
            log.warning(
                "The LangBatch provider plugin %r could not be loaded; left out.", point.value, exc_info=True
            )


def _describe(name: str, loaded: Any) -> ConnectionKind:
    if isinstance(loaded, ConnectionKind):
        return replace(loaded, name=name)
    described = getattr(loaded, "connection_kind", None)
    if isinstance(described, ConnectionKind):
        return replace(described, name=name, provider=loaded)
    return ConnectionKind(name, name, loaded)
