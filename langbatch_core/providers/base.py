"""The small protocol every provider implements, and the registry of providers by connection kind.

    from langbatch_core.providers import get_provider, register_provider
    provider = get_provider("openai")(connection)          # an OpenAIProvider (kinds: providers/kinds.py)
    job = provider.submit(Path("input.jsonl"), "/v1/chat/completions", {"langbatch_batch_id": "lb_1"})

A provider turns a request file into a *job* at a batch API and back: ``submit``, ``poll``, ``cancel``,
``download`` (the output and error files) and ``find`` (jobs whose metadata match, to reconcile after a
crash). It translates its SDK's errors into the LangBatchError tree where they enter, and rides out
transient trouble under ``self.retrying`` (a ``Retrying``). A provider with a Files API also splits
``submit`` into ``upload`` + ``create``, so the uploaded file is recorded before the job is created.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from langbatch_core.errors import JobFailedError
from langbatch_core.providers.kinds import ConnectionKind, connection_kind
from langbatch_core.providers.retry import Retrying

if TYPE_CHECKING:
    from langbatch_core.providers.connection import Connection
    from langbatch_core.requests import Capabilities, Limits

TERMINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass
class Job:
    """A provider's batch job, in OpenAI's vocabulary (``status`` is one of OpenAI's batch statuses)."""

    id: str
    status: str
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: float | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    request_counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def failure(self) -> JobFailedError:
        """The JobFailedError describing why this job failed (its ``errors.data``)."""
        details = "; ".join(_describe_error(e) for e in self.errors[:5]) or "no details given"
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        return JobFailedError(
            f"Job {self.id} {self.status} at the provider: {details}{more}. Fix the requests named here "
            "(batch.get_requests_by_custom_ids / the line numbers), then retry.",
            errors=self.errors,
            code=(self.errors[0].get("code") if self.errors else None),
        )


def _describe_error(error: dict[str, Any]) -> str:
    line = f"line {error['line']}: " if error.get("line") is not None else ""
    code = f"[{error['code']}] " if error.get("code") else ""
    return f"{line}{code}{error.get('message', '')}".strip()


class Provider(ABC):
    """A batch API behind LangBatch's five calls. Subclass it and ``register_provider(kind, cls)``, or name
    it in your package's ``langbatch.providers`` entry points (see ``langbatch_core.providers.kinds``)."""

    #: How the kind this class serves is described when it comes from an entry point (label, key, URL).
    connection_kind: ClassVar[ConnectionKind | None] = None

    def __init__(self, connection: Connection, *, client: Any = None, data_dir: Path | None = None) -> None:
        self.connection = connection
        self.data_dir = data_dir
        self.retrying: Retrying = connection.retrying or Retrying.from_env()

    @property
    def limits(self) -> Limits:
        """Per-job limits that shape the split plan (the connection's, else the provider's defaults)."""
        from langbatch_core.requests import Limits

        return self.connection.limits or Limits()

    @property
    def capabilities(self) -> Capabilities | None:
        """What the connection's model refuses although OpenAI's API takes it, for ``validate_file`` to report
        by line before a start; None: nothing known. A provider whose model is narrower overrides it. A
        ``local`` connection asks its engine: its default backend, the bundled model, refuses tools, logprobs,
        images ... (``langbatch_core.local.model.chat_request.BUNDLED_MODEL``)."""
        return local_capabilities(self.connection, self.data_dir) if self.connection.kind == "local" else None

    def check(self) -> None:  # noqa: B027  (optional hook: most providers need no check)
        """Raise ConfigurationError (e.g. MissingAPIKeyError) if a call could not even be made; called by
        ``Batch.start()`` before anything is recorded. The default checks nothing."""

    @abstractmethod
    def submit(self, input_path: Path, endpoint: str, metadata: dict[str, str]) -> Job:
        """Upload ``input_path`` and create a job for ``endpoint`` tagged with ``metadata``."""

    def upload(self, input_path: Path, metadata: dict[str, str]) -> str | None:
        """Upload the request file ahead of ``create`` and return its id at the provider, so the caller can
        record it before the job exists; None (the default): this provider uploads inside ``submit``."""
        return None

    def create(self, input_file_id: str, endpoint: str, metadata: dict[str, str]) -> Job:
        """Create a job from a file ``upload`` returned (only called when ``upload`` returns an id)."""
        raise NotImplementedError(f"{type(self).__name__}.upload returned a file id but create is missing")

    @abstractmethod
    def poll(self, job_id: str) -> Job:
        """The job's current state."""

    @abstractmethod
    def cancel(self, job_id: str) -> Job:
        """Ask the provider to cancel the job; returns its state (usually ``cancelling``)."""

    @abstractmethod
    def download(self, job: Job, out_dir: Path) -> tuple[Path | None, Path | None]:
        """Save the job's output and error files in ``out_dir``; (output path, error path), None if absent."""

    @abstractmethod
    def find(self, metadata: dict[str, str], created_after: float | None = None) -> list[Job]:
        """Jobs whose metadata contain every item of ``metadata`` (created after ``created_after``)."""


def local_capabilities(connection: Connection, data_dir: Path | None = None) -> Capabilities | None:
    """The bundled model's capabilities when the engine a local connection reaches runs it, or will (without
    a base URL, an engine is started with the bundled model); None for an upstream backend or no answer."""
    from langbatch_core import config
    from langbatch_core.local.engine import health, running_engine
    from langbatch_core.local.model.chat_request import BUNDLED_MODEL

    base_url = connection.base_url or os.environ.get(config.ENGINE_URL_ENV)
    try:
        if base_url:
            backend = (health(base_url) or {}).get("backend")
        else:
            described = (running_engine(data_dir) or {}).get("backend", {"backend": "model"})
            backend = described.get("backend") if isinstance(described, dict) else None
    except ValueError:  # something else answers there (not JSON): its model is unknown
        return None
    return BUNDLED_MODEL if backend == "model" else None


def get_provider(kind: str) -> type[Provider]:
    """The provider class serving connections of ``kind``; ConfigurationError naming the known kinds."""
    return connection_kind(kind).provider_class()


def provider_for(connection: Connection, *, client: Any = None, data_dir: Path | None = None) -> Provider:
    """An instance of the provider serving ``connection``."""
    return get_provider(connection.kind)(connection, client=client, data_dir=data_dir)
