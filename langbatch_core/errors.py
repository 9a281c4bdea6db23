"""The one exception tree of LangBatch.

Every error LangBatch raises is a ``LangBatchError``; its message says what went wrong, where, and what to
do next. Errors of the layers below (the ``openai`` SDK, DuckDB, the file system) are translated where they
enter LangBatch (``raise Mapped(msg) from exc``)::

    LangBatchError
    ├── InvalidRequestsError      a request file or list is not a valid batch (carries every issue)
    ├── ConfigurationError        a connection or setting is missing or wrong (``field`` names it)
    │   ├── MissingAPIKeyError    no API key where one is needed (names the variable to set)
    │   └── SecretInSettingError  a key, or a URL with a credential, where a stored setting expects none
    ├── BatchStateError           the call does not fit the batch's state (start twice, results too early)
    ├── BudgetExceededError       a start or retry would pass a monthly spend cap or the batch's own cap
    ├── NotOwnerError             acting on another person's batch where team settings restrict access
    ├── ProviderError             a provider answered with an error, or could not be reached
    │   ├── AuthenticationError   the key was refused
    │   ├── RateLimitError        too many requests or tokens; try later
    │   ├── ProviderNotFoundError the provider does not know the job or file
    │   ├── ProviderUnavailableError  the provider (or local engine) cannot be reached
    │   └── JobFailedError        a job failed at the provider (carries its ``errors.data``)
    ├── ResultsError              a result file is unreadable or does not belong to the batch
    ├── TableError                a table, its template or its answer schema cannot make a batch (``issues``)
    │   ├── TemplateError         the prompt template names a column the table lacks, or does not compile
    │   └── SchemaError           the answer schema is invalid or a provider's strict mode would refuse it
    └── StorageError              the batch store cannot be read or written
        ├── BatchNotFoundError    no batch with that id in the store
        └── StaleRecordError      another writer saved the batch first (a save on an older version)
"""

from __future__ import annotations

from typing import Any


class LangBatchError(Exception):
    """Base of every error LangBatch raises."""


class InvalidRequestsError(LangBatchError, ValueError):
    """A request file or list is not a valid batch.

    ``issues`` holds every problem found (each with ``line``, ``code``, ``message``, ``param``), ``report``
    the whole validation report when there is one.
    """

    def __init__(self, message: str, issues: list[Any] | None = None, report: Any = None) -> None:
        super().__init__(message)
        self.issues = list(issues or [])
        self.report = report


class ConfigurationError(LangBatchError):
    """A connection or setting is missing or wrong; ``field`` names the setting at fault when one is
    (``kind``, ``base_url``, ``api_key_env``, ``name``, ...), so callers can point at it without reading
    the message."""

    def __init__(self, message: str = "", *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class MissingAPIKeyError(ConfigurationError):
    """No API key was found where one is needed."""

    def __init__(self, variable: str, provider: str = "OpenAI") -> None:
        super().__init__(
            f"No {provider} API key found. Set the {variable} environment variable "
            f"(or put it in .streamlit/secrets.toml for the dashboard), or pass client=... "
            "with a configured client.",
            field="api_key_env",
        )
        self.variable = variable


class SecretInSettingError(ConfigurationError):
    """A key where the *name* of its variable goes (``field="api_key_env"``), or a credential in a URL
    (``field="base_url"``): refused, because connections are stored. The message never repeats it."""


class BatchStateError(LangBatchError):
    """The call does not fit the state of the batch."""


class BudgetExceededError(LangBatchError):
    """A start or retry would pass a spend cap (the person's or team's monthly cap, or the batch's own
    ``max_cost_usd``); the message gives the cap, what is spent and what the run would add. ``cap`` names
    which one (``"batch"``, ``"user"`` or ``"team"``)."""

    def __init__(self, message: str, *, cap: str = "batch") -> None:
        super().__init__(message)
        self.cap = cap


class NotOwnerError(LangBatchError):
    """Someone acted on a batch that is not theirs (started, retried, cancelled, deleted, saved over it, read
    its results) where team settings restrict access: only its owner and admins may. ``batch_id``,
    ``owner`` (None: not recorded), ``user`` (who tried) and ``action`` say who and what."""

    def __init__(self, message: str, *, batch_id: str, owner: str | None, user: str, action: str) -> None:
        super().__init__(message)
        self.batch_id, self.owner, self.user, self.action = batch_id, owner, user, action


class ProviderError(LangBatchError):
    """A provider answered with an error, or could not be reached."""

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code


class AuthenticationError(ProviderError):
    """The provider refused the API key."""


class RateLimitError(ProviderError):
    """The provider's rate or token limit was hit."""


class ProviderNotFoundError(ProviderError):
    """The provider does not know the job or file."""


class ProviderUnavailableError(ProviderError):
    """The provider (or the local engine) cannot be reached."""


class JobFailedError(ProviderError):
    """A job failed at the provider; ``errors`` holds its ``errors.data`` entries."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.errors = list(errors or [])


class ResultsError(LangBatchError):
    """A result file is unreadable or does not belong to the batch."""


class TableError(LangBatchError, ValueError):
    """A table (CSV, Excel, Parquet, JSON lines), its prompt template or answer schema cannot make a batch.

    ``issues`` holds every problem found (``TableIssue``: row, column, code, message, severity).
    """

    def __init__(self, message: str, issues: list[Any] | None = None) -> None:
        super().__init__(message)
        self.issues = list(issues or [])


class TemplateError(TableError):
    """The prompt template does not compile, or names a column the table does not have."""


class SchemaError(TableError):
    """The answer schema (fields or JSON Schema) is invalid, or a provider's strict mode would refuse it."""


class StorageError(LangBatchError):
    """The batch store cannot be read or written."""


class BatchNotFoundError(StorageError, KeyError):
    """No batch with that id is in the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "batch not found"


class StaleRecordError(StorageError):
    """A save was refused: the stored record of the batch is newer than the one it was based on (a writer
    that did not hold the batch's lock). Load the batch again and repeat the change."""


__all__ = [
    "AuthenticationError",
    "BatchNotFoundError",
    "BatchStateError",
    "BudgetExceededError",
    "ConfigurationError",
    "InvalidRequestsError",
    "JobFailedError",
    "LangBatchError",
    "MissingAPIKeyError",
    "NotOwnerError",
    "ProviderError",
    "ProviderNotFoundError",
    "ProviderUnavailableError",
    "RateLimitError",
    "ResultsError",
    "SchemaError",
    "SecretInSettingError",
    "StaleRecordError",
    "StorageError",
    "TableError",
    "TemplateError",
]
