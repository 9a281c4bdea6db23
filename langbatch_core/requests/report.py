"""The report types of request-file validation (re-exported by ``langbatch_core.requests``).

Issue(3, "missing_model", "body.model is missing: ...", "body.model")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from langbatch_core.errors import ConfigurationError, InvalidRequestsError
from langbatch_core.requests import pricing


@dataclass(frozen=True)
class Issue:
    """One problem in a request file, like an entry of OpenAI's ``errors.data``.

    ``Issue(3, "missing_model", "body.model is missing: ...", "body.model")``
    """

    line: int | None  # 1-based line number (None: the file as a whole)
    code: str
    message: str
    param: str | None = None
    severity: str = "error"  # "error" | "warning"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        return f"{where}: {self.code}: {self.message}"


@dataclass
class Limits:
    """A provider's limits per job; they shape the split plan, they are not errors.

    ``Limits(max_requests=1000)`` splits a 2,500-request file into 3 jobs. ``min_requests`` is the one limit
    that is an error: a planned job with fewer requests (Bedrock runs none under 100) is reported on its
    first line (``too_few_requests``).
    """

    max_requests: int = 50_000
    max_bytes: int = 200 * 1024 * 1024
    max_embedding_inputs: int = 50_000
    max_enqueued_tokens: int | None = None
    min_requests: int = 1

    def __post_init__(self) -> None:
        names = ("max_requests", "max_bytes", "max_embedding_inputs", "max_enqueued_tokens", "min_requests")
        for name in names:
            value = getattr(self, name)
            if value is None and name == "max_enqueued_tokens":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(
                    f"Limits.{name} must be a whole number of at least 1, not {value!r}"
                    + (" (or None for no token limit)." if name == "max_enqueued_tokens" else ".")
                )


@dataclass(frozen=True)
class Capabilities:
    """What the model behind a connection refuses although OpenAI's API takes it, as a check of one body.

    ``refusal(endpoint, body)`` gives ``(param, message)`` for the first thing the model cannot honour
    (param relative to the body, None for the body as a whole), or None. ``validate_file(path,
    capabilities=provider.capabilities)`` reports each refusal on its line (``unsupported_parameter``)
    before a batch starts, rather than as 400 answers after it ran.

        Capabilities("the bundled local model", bundled_model_refusal)

    ``custom_id(custom_id)``, when given, says what is wrong with a custom_id the provider refuses although
    OpenAI takes it (Anthropic's ``^[a-zA-Z0-9_-]{1,64}$``), or None.
    """

    name: str
    refusal: Callable[[str, dict[str, Any]], tuple[str | None, str] | None]
    custom_id: Callable[[str], str | None] | None = None


@dataclass
class JobPlan:
    """One planned job: a contiguous run of lines of the request file."""

    first_line: int
    last_line: int
    request_count: int
    bytes: int  # size of the job file write_job_files writes (LF endings, no BOM)
    input_tokens: int


@dataclass
class ValidationReport:
    """What ``validate_file`` found: every problem (capped list, total counts) and the file's figures."""

    path: Path
    endpoint: str | None
    model: str | None
    models: list[str]
    request_count: int
    bytes: int
    issues: list[Issue]
    error_count: int
    warning_count: int
    input_tokens: int
    max_output_tokens: int | None
    estimated_cost_usd: float | None
    jobs: list[JobPlan]
    token_method: str = ""  # how input_tokens was estimated, in words
    requests_without_max_tokens: int = 0  # their output is not in max_output_tokens nor in the cost
    embedding_inputs: int = 0
    prices_as_of: str = pricing.PRICES_AS_OF

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    @property
    def errors(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.severity == "warning"]

    def raise_for_errors(self) -> None:
        """Raises ``InvalidRequestsError`` (carrying the issues and this report) when there is any error."""
        if self.ok:
            return
        shown = self.errors[:5]
        lines = "\n".join(f"  {issue}" for issue in shown)
        more = f"\n  … and {self.error_count - len(shown)} more" if self.error_count > len(shown) else ""
        noun = "error" if self.error_count == 1 else "errors"
        raise InvalidRequestsError(
            f"{self.path} has {self.error_count} {noun}; fix them and validate again:\n{lines}{more}",
            self.errors,
            self,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["ok"] = self.ok
        return data
