"""What a batch will cost and, on the local engine, how long it will take — before it starts.

    report = validate_file("requests.jsonl")
    estimate = estimate_run(report, Connection.local())
    estimate.cost_usd      # 0.0 on the local engine; OpenAI's batch price elsewhere (None: unknown model)
    estimate.seconds       # local engine only: from the speed it measured on earlier batches, else the
                           # bundled model's default speed (None for an upstream that has not run a batch)
    estimate.warning       # "This batch will take about 3 h on the bundled model: ..." when over an hour
    estimate.lines()       # ["cost: $0 on the local engine (...)", "time: about 3 h on ... (estimate ...)"]

The engine's measurement (``langbatch_core.local.speed``) is read from its ``/health`` when the connection
names its URL (or ``LANGBATCH_ENGINE_URL`` does), else from the data directory's engine folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from langbatch_core import config
from langbatch_core.providers import Connection
from langbatch_core.requests import ValidationReport, pricing

CHAT, EMBEDDINGS = "/v1/chat/completions", "/v1/embeddings"
LONG_RUN = 3600.0  # seconds: longer runs get a warning before they start

# The bundled models' speed on a quiet 2-core machine (bench/README.md), rounded down: an estimate errs long.
# Decoding assumes one sequence at a time (34 tokens/s; 80 with 8 together): on a busy machine even that is
# optimistic, and the engine's measured speed replaces these figures after its first batch.
DEFAULT_LOAD_SECONDS = 2.0  # loading the weights, once per engine process
DEFAULT_PROMPT_TOKENS_PER_SECOND = 500.0  # measured 587
DEFAULT_OUTPUT_TOKENS_PER_SECOND = 34.0  # measured 34.4 for one sequence
DEFAULT_ANSWER_TOKENS = 512  # the bundled model's max_tokens when a request sets none
DEFAULT_TEXTS_PER_SECOND = 250.0  # embeddings, measured 279
_UNSET: Any = object()


@dataclass(frozen=True)
class RunEstimate:
    """A batch's cost on its connection and, on the local engine, its duration (see the module doc)."""

    cost_usd: float | None
    list_cost_usd: float | None  # at OpenAI's batch prices (PRICES_AS_OF), whatever the connection
    seconds: float | None
    where: str  # "the local engine", "the bundled model", "OpenAI", ...
    basis: str = ""  # how ``seconds`` was estimated, in words
    local: bool = True  # runs on the local engine (free)

    @property
    def warning(self) -> str | None:
        """A sentence to show before starting a run of more than an hour, else None."""
        if self.seconds is None or self.seconds <= LONG_RUN:
            return None
        return (
            f"This batch will take about {duration_text(self.seconds)} on {self.where}. If that is too "
            "long, split it into smaller batches, lower max_tokens, or run it on a faster backend "
            "(`langbatch serve --upstream URL`) or provider."
        )

    def lines(self) -> list[str]:
        """``cost: …`` and, when known, ``time: …``, as plain text."""
        listed = (
            money_text(self.list_cost_usd) if self.list_cost_usd is not None else "unknown for this model"
        )
        prices = f"OpenAI's batch prices of {pricing.PRICES_AS_OF}"
        if self.local:
            cost = f"cost: $0 on the local engine (at {prices}: {listed})"
        elif self.cost_usd is None:
            cost = f"cost: unknown (no batch price for this model in the table of {pricing.PRICES_AS_OF})"
        else:
            cost = f"cost: {money_text(self.cost_usd)} at {prices}"
        if self.seconds is None:
            return [cost] + ([f"time: unknown ({self.basis})"] if self.basis else [])
        return [cost, f"time: about {duration_text(self.seconds)} on {self.where} ({self.basis})"]


def money_text(usd: float) -> str:
    """``"$0"``, ``"under $0.0001"``, ``"$0.0123"``, ``"$12.50"``."""
    if usd == 0:
        return "$0"
    if usd < 0.0001:
        return "under $0.0001"
    return f"${usd:,.4f}" if usd < 1 else f"${usd:,.2f}"


def duration_text(seconds: float) -> str:
    """``"40 s"``, ``"12 min"``, ``"1.5 h"``, ``"3 h"``, ``"2.5 days"``."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    hours = seconds / 3600
    if hours < 48:
        return f"{hours:.1f} h".replace(".0 h", " h") if hours < 10 else f"{round(hours)} h"
    return f"{hours / 24:.1f} days".replace(".0 days", " days")


def estimate_run(report: ValidationReport, connection: Connection, speed: Any = _UNSET) -> RunEstimate:
    """Cost and duration of running ``report``'s file on ``connection``; ``speed`` is the engine's
    measurement (``read_speed``'s shape; None: nothing measured), looked up when not given."""
    cost = pricing.connection_cost(connection.kind, report.estimated_cost_usd)
    if connection.kind not in pricing.FREE_KINDS:
        return RunEstimate(cost, report.estimated_cost_usd, None, connection.describe(), local=False)
    if speed is _UNSET:
        speed = engine_speed(connection)
    measured = ((speed or {}).get("endpoints") or {}).get(report.endpoint or "")
    if measured and measured.get("requests") and measured.get("seconds"):
        seconds, basis = _measured_seconds(report, measured)
        return RunEstimate(cost, report.estimated_cost_usd, seconds, "the local engine", basis)
    backend = str((speed or {}).get("backend") or "model")
    if not backend.startswith("model"):
        basis = "the engine's upstream has not run a batch yet; its speed is known after the first"
        return RunEstimate(cost, report.estimated_cost_usd, None, "the local engine", basis)
    bundled_seconds, basis = _bundled_seconds(report)
    return RunEstimate(cost, report.estimated_cost_usd, bundled_seconds, "the bundled model", basis)


def _measured_seconds(report: ValidationReport, measured: dict[str, Any]) -> tuple[float, str]:
    """At the measured requests/s; shorter when this file's max_tokens are below the measured answers."""
    per_second = measured["requests"] / measured["seconds"]
    seconds = report.request_count / per_second
    answer_tokens = measured.get("output_tokens", 0) / measured["requests"]
    if report.max_output_tokens and not report.requests_without_max_tokens and answer_tokens > 0:
        seconds *= min(1.0, report.max_output_tokens / report.request_count / answer_tokens)
    batches = int(measured.get("batches", 1))
    noun = "batch" if batches == 1 else "batches"
    return (
        seconds,
        f"estimate from the engine's measured speed: {per_second:,.2f} requests/s over {batches} {noun}",
    )


def _bundled_seconds(report: ValidationReport) -> tuple[float | None, str]:
    """At the bundled model's default speed, every answer as long as its max_tokens allow."""
    if report.endpoint == EMBEDDINGS:
        texts = max(report.embedding_inputs, report.request_count)
        seconds = DEFAULT_LOAD_SECONDS + texts / DEFAULT_TEXTS_PER_SECOND
        return seconds, f"estimate at the bundled model's usual ~{DEFAULT_TEXTS_PER_SECOND:.0f} texts/s"
    if report.endpoint != CHAT:
        return None, ""
    answers = (report.max_output_tokens or 0) + report.requests_without_max_tokens * DEFAULT_ANSWER_TOKENS
    seconds = (
        DEFAULT_LOAD_SECONDS
        + report.input_tokens / DEFAULT_PROMPT_TOKENS_PER_SECOND
        + answers / DEFAULT_OUTPUT_TOKENS_PER_SECOND
    )
    basis = (
        f"estimate at the bundled model's usual ~{DEFAULT_OUTPUT_TOKENS_PER_SECOND:.0f} tokens/s, answers as "
        "long as max_tokens allows; measured from the first batch on"
    )
    return seconds, basis


def engine_speed(connection: Connection) -> dict[str, Any] | None:
    """The local engine's measured speed (``read_speed``'s shape, with ``backend``), or None: from its
    ``/health`` when a URL names it, else from the data directory (no engine needs to run)."""
    from langbatch_core.local.speed import read_speed

    url = connection.base_url or os.environ.get(config.ENGINE_URL_ENV)
    if url:
        return _health_speed(url)
    root = config.data_dir() / "engine"
    speed = read_speed(root)
    if speed is None:  # nothing measured: at least which backend the running engine has
        from langbatch_core.local.engine import read_info
        from langbatch_core.local.speed import backend_key

        info = read_info(root)
        if info is not None and isinstance(info.get("backend"), dict):
            return {"backend": backend_key(info["backend"]), "endpoints": {}}
    return speed


def _health_speed(url: str) -> dict[str, Any] | None:
    import httpx

    from langbatch_core.local.speed import backend_key

    try:
        answer = httpx.get(url.rstrip("/") + "/health", timeout=2.0).json()
    except (httpx.HTTPError, ValueError):
        return None  # not reachable now: the estimate falls back to the bundled model's defaults
    if not isinstance(answer, dict):
        return None
    return answer.get("speed") or {"backend": backend_key(answer), "endpoints": {}}
