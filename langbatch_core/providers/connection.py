"""Where a batch runs: a small value object that names a provider, never a secret.

    from langbatch_core import Connection
    Connection.local()                                             # the local engine (started when needed)
    Connection.openai()                                            # OPENAI_API_KEY (+ OPENAI_BASE_URL)
    Connection.azure("https://my-resource.openai.azure.com")      # AZURE_OPENAI_API_KEY, Azure's v1 API
    Connection.compatible("https://api.groq.com/openai/v1", api_key_env="GROQ_API_KEY")
    Connection.mistral()                                           # MISTRAL_API_KEY, Mistral's batch jobs
    Connection.gemini()                                            # GEMINI_API_KEY, Gemini's Batch Mode

``api_key_env`` is the *name* of the environment variable that holds the key, read when a call is made;
``to_dict()`` is what a store keeps. A connection of kind ``local`` without ``base_url`` resolves at run
time to the engine serving the data directory (``ensure_local_engine``), so batches survive engine restarts.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from langbatch_core.errors import ConfigurationError, SecretInSettingError
from langbatch_core.providers.kinds import connection_kinds, find_kind
from langbatch_core.providers.retry import Retrying

if TYPE_CHECKING:
    from langbatch_core.requests import Limits

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_PARAM = re.compile(r"key|token|secret|passw|auth|sig|credential|session", re.IGNORECASE)


@dataclass(frozen=True)
class Connection:
    """A provider connection: ``kind`` (local | openai | azure | compatible, or a registered kind: see
    ``connection_kinds()``),
    ``base_url``, ``api_key_env`` (a variable *name*), ``model`` (default model of ``Batch.create``),
    ``name`` (a label), ``api_version`` (Azure), ``limits`` (per-job ``Limits`` for the split plan),
    ``retrying`` (how long calls ride out provider trouble; default ``Retrying.from_env()``), ``options``
    (a provider's other settings, never secrets: Bedrock's region, bucket and role ARN)."""

    kind: str = "openai"
    base_url: str | None = None
    api_key_env: str | None = None
    model: str | None = None
    name: str | None = None
    api_version: str | None = None
    limits: Limits | None = None
    retrying: Retrying | None = None
    options: dict[str, str] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not self.kind or not isinstance(self.kind, str):
            known = ", ".join(kind.name for kind in connection_kinds())
            raise ConfigurationError(f"A connection needs a kind (one of {known}).", field="kind")
        kind = find_kind(self.kind)  # an unknown kind is refused when a provider is needed, not here
        if self.api_key_env is None and kind and kind.default_key_env:
            object.__setattr__(self, "api_key_env", kind.default_key_env)
        _check_no_secret(self.api_key_env, self.base_url)
        for name, value in (self.options or {}).items():
            if _SECRET_PARAM.search(name) or not isinstance(value, str):
                raise SecretInSettingError(
                    f"Connection option {name!r} must be a plain setting (text), never a credential: a "
                    "connection is stored with the batch, so keep credentials in environment variables.",
                    field="options",
                )
        if self.retrying is not None and not isinstance(self.retrying, Retrying):
            raise ConfigurationError(
                "retrying must be a Retrying, like Retrying(deadline=300) (seconds a call keeps trying).",
                field="retrying",
            )
        if self.base_url and not self.base_url.lower().startswith(("http://", "https://")):
            raise ConfigurationError(
                f"base_url {self.base_url!r} is not an http(s) URL: write it in full, like "
                "'http://127.0.0.1:8765/v1' or 'https://api.groq.com/openai/v1'.",
                field="base_url",
            )
        if kind and kind.needs_base_url and not self.base_url:
            raise ConfigurationError(
                f"A {self.kind!r} connection needs base_url, the API root such as "
                "https://api.groq.com/openai/v1.",
                field="base_url",
            )

    @classmethod
    def local(cls, base_url: str | None = None, **kw: Any) -> Connection:
        """The local engine (``langbatch serve``); without ``base_url`` it is found or started at run time."""
        return cls("local", base_url=base_url, **kw)

    @classmethod
    def openai(
        cls, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY", **kw: Any
    ) -> Connection:
        """OpenAI, or whatever ``OPENAI_BASE_URL`` names when ``base_url`` is None (the seed's default)."""
        return cls("openai", base_url=base_url, api_key_env=api_key_env, **kw)

    @classmethod
    def azure(
        cls, endpoint: str | None = None, *, api_version: str | None = None,
        api_key_env: str = "AZURE_OPENAI_API_KEY", **kw: Any,
    ) -> Connection:  # fmt: skip
        """Azure OpenAI: ``endpoint`` (else ``AZURE_OPENAI_ENDPOINT``). Without ``api_version`` it uses
        Azure's v1 API (``<endpoint>/openai/v1``), which takes OpenAI's batch format unchanged; with one,
        ``openai.AzureOpenAI`` and that dated API. The model of each request is the deployment name."""
        return cls("azure", base_url=endpoint, api_key_env=api_key_env, api_version=api_version, **kw)

    @classmethod
    def compatible(cls, base_url: str, api_key_env: str | None = None, **kw: Any) -> Connection:
        """Any OpenAI-compatible batch API (Groq, Together, a vLLM or LangBatch server, ...)."""
        return cls("compatible", base_url=base_url, api_key_env=api_key_env, **kw)

    @classmethod
    def anthropic(
        cls, api_key_env: str = "ANTHROPIC_API_KEY", base_url: str | None = None, **kw: Any
    ) -> Connection:
        """Anthropic's Message Batches API (``anthropic`` SDK); ``base_url`` (else ``ANTHROPIC_BASE_URL``)
        for a gateway or proxy. Requests stay in OpenAI's format (docs/providers.md: the translation)."""
        return cls("anthropic", base_url=base_url, api_key_env=api_key_env, **kw)

    @classmethod
    def bedrock(
        cls, region: str | None = None, bucket: str | None = None, role_arn: str | None = None,
        base_url: str | None = None, **kw: Any,
    ) -> Connection:  # fmt: skip
        """AWS Bedrock batch inference (``boto3``; AWS credentials from its usual chain: environment,
        profile, instance role). ``region`` (else ``AWS_REGION``), ``bucket`` for the request and result
        files (else ``LANGBATCH_BEDROCK_BUCKET``), ``role_arn`` Bedrock assumes to read and write it (else
        ``LANGBATCH_BEDROCK_ROLE_ARN``); ``base_url`` for an endpoint serving both Bedrock and S3."""
        given = {"region": region, "bucket": bucket, "role_arn": role_arn}
        options = {k: v for k, v in given.items() if v}
        return cls("bedrock", base_url=base_url, options=options or None, **kw)

    @classmethod
    def mistral(
        cls, api_key_env: str = "MISTRAL_API_KEY", base_url: str | None = None, **kw: Any
    ) -> Connection:
        """Mistral's batch API (``https://api.mistral.ai`` unless ``base_url`` names a gateway or proxy)."""
        return cls("mistral", base_url=base_url, api_key_env=api_key_env, **kw)

    @classmethod
    def gemini(
        cls, api_key_env: str = "GEMINI_API_KEY", base_url: str | None = None, **kw: Any
    ) -> Connection:
        """The Gemini API's Batch Mode (Google AI Studio keys; ``base_url`` for a gateway or proxy)."""
        return cls("gemini", base_url=base_url, api_key_env=api_key_env, **kw)

    def with_limits(self, limits: Limits | None) -> Connection:
        return replace(self, limits=limits)

    def describe(self) -> str:
        """A short human label: ``Local engine``, ``OpenAI``, ``Azure OpenAI (url)``, or the URL."""
        kind = find_kind(self.kind)
        label = kind.label if kind else self.kind
        if self.base_url:
            label = self.base_url if kind and kind.needs_base_url else f"{label} ({self.base_url})"
        return f"{self.name}: {label}" if self.name else label

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, no secrets (what a store keeps)."""
        data = asdict(self)
        data["limits"] = asdict(self.limits) if self.limits is not None else None
        data["retrying"] = asdict(self.retrying) if self.retrying is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Connection:
        if not data:
            return cls()
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("limits"):
            from langbatch_core.requests import Limits

            values["limits"] = Limits(**values["limits"])
        if values.get("retrying"):
            values["retrying"] = Retrying(**values["retrying"])
        return cls(**values)


def _check_no_secret(api_key_env: str | None, base_url: str | None) -> None:
    """Refuse what looks like a key where a connection (which is stored) expects none; the message never
    repeats the value."""
    if api_key_env is not None and (not _ENV_NAME.match(api_key_env) or _looks_like_a_key(api_key_env)):
        raise SecretInSettingError(
            "api_key_env is the NAME of the environment variable holding the key (like "
            "'OPENAI_API_KEY'), not the key itself: put the key in that variable.",
            field="api_key_env",
        )
    where = url_credentials(base_url) if base_url else None
    if where:
        raise SecretInSettingError(
            f"base_url holds a credential ({where}), and a connection is stored with the batch: remove it, "
            "put the key in an environment variable and name it with api_key_env instead.",
            field="base_url",
        )


def url_credentials(url: str) -> str | None:
    """Where ``url`` carries a credential (``the user part``, ``query parameter 'api-key'``), None if it
    carries none. The one check for every URL LangBatch keeps or logs; the answer never holds the value."""
    parts = urlsplit(url)
    if parts.username or parts.password or "@" in parts.netloc:
        return "the user part before @"
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if _looks_like_a_key(name):
            return "a query parameter"
        if _SECRET_PARAM.search(name) or _looks_like_a_key(value):
            return f"query parameter {name!r}"
    return None


def _looks_like_a_key(name: str) -> bool:
    """Keys (``gsk_...``, ``sk_live_...``) are long mixes of lower case and digits; variable names are not."""
    return len(name) >= 24 and any(c.islower() for c in name) and any(c.isdigit() for c in name)
