"""The audit log: who created, started, retried, cancelled, deleted or downloaded which batch, and when; and
who was refused acting on a batch not theirs (``refused``: the detail says what and whose).

    from langbatch_core import audit
    audit.record(storage, "ann@example.com", "downloaded", "lb_3f2a…", "results.csv")
    for event in audit.events(storage, actor="ann@example.com", action="started"):
        print(event.when, event.actor, event.action, event.batch_id, event.detail)
    Path("audit.csv").write_bytes(audit.to_csv(audit.events(storage)))

The batch lifecycle records its own events (``Batch.actor`` is who acts: ``$LANGBATCH_USER`` or the OS user
in Python and the CLI, the signed-in e-mail in the dashboard); downloads are recorded by the door that hands
the file out. Events are kept by the store (``BatchStorage.append_audit`` / ``read_audit``): a table in the
DuckDB store, ``<data dir>/audit.jsonl`` in the file store.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from langbatch_core.storage import BatchStorage

ACTIONS = ("created", "started", "retried", "cancelled", "deleted", "downloaded", "refused")
COLUMNS = ("when", "actor", "action", "batch_id", "detail")


@dataclass(frozen=True)
class AuditEvent:
    at: float  # epoch seconds
    actor: str
    action: str
    batch_id: str | None = None
    detail: str = ""

    @property
    def when(self) -> str:
        """The time in UTC, ``2026-11-29 06:01:02``."""
        return datetime.fromtimestamp(self.at, UTC).strftime("%Y-%m-%d %H:%M:%S")

    def row(self) -> dict[str, Any]:
        return {"when": self.when, **{k: v for k, v in asdict(self).items() if k != "at"}}


def record(
    storage: BatchStorage, actor: str, action: str, batch_id: str | None = None, detail: str = ""
) -> AuditEvent:
    """Add one event to ``storage``'s log and return it."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; one of {', '.join(ACTIONS)}")
    event = AuditEvent(time.time(), actor or "unknown", action, batch_id, detail or "")
    storage.append_audit(asdict(event))
    return event


def events(
    storage: BatchStorage,
    *,
    actor: str | None = None,
    action: str | None = None,
    batch_id: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> list[AuditEvent]:
    """The events of ``storage``'s log matching every filter given, newest first."""
    found = []
    for data in storage.read_audit():
        event = AuditEvent(
            float(data.get("at") or 0),
            str(data.get("actor") or ""),
            str(data.get("action") or ""),
            data.get("batch_id"),
            str(data.get("detail") or ""),
        )
        if (
            (actor is None or event.actor == actor)
            and (action is None or event.action == action)
            and (batch_id is None or event.batch_id == batch_id)
            and (since is None or event.at >= since)
            and (until is None or event.at < until)
        ):
            found.append(event)
    return sorted(found, key=lambda e: e.at, reverse=True)


def to_csv(found: list[AuditEvent]) -> bytes:
    """The events as CSV (when in UTC, actor, action, batch_id, detail)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    for event in found:
        writer.writerow({k: _no_formula(v) for k, v in event.row().items()})
    return out.getvalue().encode("utf-8")


def _no_formula(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula starts with ``'`` (a detail is user text)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
