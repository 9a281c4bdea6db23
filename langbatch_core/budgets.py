"""Spend caps: a batch's own (``max_cost_usd``), each person's and each team's per calendar month (UTC).

    from langbatch_core import budgets, team
    budgets.check(storage, record, adding=1.20, settings=team.settings())   # BudgetExceededError if over
    for line in budgets.standing(storage, "ann@example.com", team.settings()):
        print(line.who, line.spent, line.cap, line.left)

What a batch has spent: the estimate of what was submitted (its start and retries, ``committed_usd``) while
it runs, and the actual cost from its results' token usage (``cost_usd``) once it has finished. A month's
spend is that of the batches first started in that month. Costs are at OpenAI's batch prices
(``langbatch_core.requests.pricing``); the local engine costs nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from langbatch_core.errors import BudgetExceededError
from langbatch_core.requests import pricing
from langbatch_core.storage import BatchRecord, BatchStorage
from langbatch_core.team import Team, TeamSettings

RUNNING = frozenset({"validating", "in_progress", "finalizing", "cancelling"})
RAISE_CAP = "Ask an admin to raise the cap (team settings), or start a smaller batch."


@dataclass(frozen=True)
class Standing:
    """Where one cap stands this month: ``kind`` is ``"user"`` or ``"team"``."""

    kind: str
    who: str
    cap: float
    spent: float

    @property
    def left(self) -> float:
        return max(self.cap - self.spent, 0.0)


def spent(record: BatchRecord) -> float:
    """What ``record`` has spent: its actual cost once finished, else at least what was submitted."""
    actual = record.cost_usd
    if actual is not None and record.status not in RUNNING:
        return actual
    return max(record.committed_usd or 0.0, actual or 0.0)


def month_start(now: float | None = None) -> float:
    """Epoch seconds of the start of the current calendar month (UTC)."""
    day = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return day.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def spent_this_month(storage: BatchStorage, owners: frozenset[str], now: float | None = None) -> float:
    """What the batches of ``owners`` first started this month have spent."""
    since = month_start(now)
    records = [r for owner in sorted(owners) for r in storage.list(owner=owner)]
    return sum(spent(r) for r in records if r.started_at is not None and r.started_at >= since)


def standing(storage: BatchStorage, user: str | None, settings: TeamSettings) -> list[Standing]:
    """This month's spend against every cap that applies to ``user``: their own, then their teams'."""
    found = []
    cap = settings.user_cap(user)
    if user and cap is not None:
        found.append(Standing("user", user, cap, spent_this_month(storage, frozenset({user}))))
    for group in settings.teams_of(user):
        if group.monthly_usd is not None:
            found.append(Standing("team", group.name, group.monthly_usd, _team_spent(storage, group)))
    return found


def _team_spent(storage: BatchStorage, group: Team) -> float:
    return spent_this_month(storage, group.members)


def check(
    storage: BatchStorage, record: BatchRecord, adding: float | None, settings: TeamSettings, what: str
) -> None:
    """BudgetExceededError when running ``what`` (``"Starting batch lb_…"``), estimated at ``adding``
    dollars (None: unknown), would pass the batch's own cap or a monthly cap of its owner or their teams."""
    caps = standing(storage, record.owner, settings)
    if adding is None:
        if record.max_cost_usd is not None or caps:
            raise BudgetExceededError(
                f"{what}: its cost cannot be estimated (model {record.model or 'unknown'!r} is not in the "
                f"price table, {pricing.PRICES_AS_OF}), so it cannot be checked against the spend cap. Use a "
                f"model with a known price, or ask an admin to lift the cap.",
                cap="batch" if record.max_cost_usd is not None else caps[0].kind,
            )
        return
    if record.max_cost_usd is not None and spent(record) + adding > record.max_cost_usd + 1e-9:
        raise BudgetExceededError(
            f"{what} would cost about {_usd(adding)} (estimated), on top of {_usd(spent(record))} already "
            f"spent by it: more than its own cap of {_usd(record.max_cost_usd)}. Raise max_cost_usd, or run "
            "fewer requests.",
            cap="batch",
        )
    month = datetime.now(UTC).strftime("%B %Y")
    for cap in caps:
        if cap.spent + adding > cap.cap + 1e-9:
            whose = f"{cap.who}'s" if cap.kind == "user" else f"team {cap.who}'s"
            raise BudgetExceededError(
                f"{what} would cost about {_usd(adding)} (estimated), but {whose} monthly cap is "
                f"{_usd(cap.cap)} and {_usd(cap.spent)} is already spent in {month}: {_usd(cap.left)} left. "
                f"{RAISE_CAP}",
                cap=cap.kind,
            )


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _Body(msgspec.Struct):
    model: str | None = None
    usage: _Usage | None = None


class _Response(msgspec.Struct):
    body: _Body | None = None


class _Line(msgspec.Struct):  # only what a cost needs: a typed decode, no dict per line
    response: _Response | None = None


_LINE = msgspec.json.Decoder(_Line)


def actual_cost(record: BatchRecord, results: Path) -> float | None:
    """The cost of the answers in ``results`` from their token usage at batch prices (0 on the local
    engine); None when no answer carries usage or a model's price is unknown."""
    tokens: dict[str | None, list[int]] = {}
    try:
        with results.open("rb") as lines:
            for raw in lines:
                try:
                    body = (_LINE.decode(raw).response or _Response()).body
                except msgspec.DecodeError:  # a garbled line: the results readers report it
                    continue
                if body is None or body.usage is None:
                    continue
                counts = tokens.setdefault(body.model or record.model, [0, 0])
                counts[0] += body.usage.prompt_tokens or 0
                counts[1] += body.usage.completion_tokens or 0
    except FileNotFoundError:
        return None
    if not tokens:
        return None
    total = 0.0
    for model, (inputs, outputs) in tokens.items():
        cost = pricing.estimate_cost(model, inputs, outputs)
        if cost is None:
            return pricing.connection_cost(record.connection.get("kind"), None)
        total += cost
    return pricing.connection_cost(record.connection.get("kind"), round(total, 6))


def share(record: BatchRecord, request_count: int) -> float | None:
    """The estimated cost of submitting ``request_count`` of the batch's requests (a retry's part)."""
    if record.estimated_cost_usd is None:
        return None
    return record.estimated_cost_usd * request_count / max(record.request_count, 1)


def _usd(value: Any) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:,.6f}"
