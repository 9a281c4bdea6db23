"""What is wrong with a table, where: one problem found while reading or rendering it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TableIssue:
    """One problem of a table: ``row`` is the 1-based data row (the header is not counted; None: the
    table as a whole), ``column`` the column's name (None: every column)."""

    code: str
    message: str
    row: int | None = None
    column: str | None = None
    severity: str = "error"  # "error" | "warning"

    def to_dict(self) -> dict[str, object]:
        return {
            "row": self.row,
            "column": self.column,
            "code": self.code,
            "message": self.message,
            "severity": self.severity,
        }


def row_list(rows: Sequence[int], shown: int = 10) -> str:
    """``"3, 7, 9"``, or ``"3, 7, … (25 rows in all)"`` when there are more than ``shown``."""
    text = ", ".join(str(row) for row in rows[:shown])
    return text + (f", … ({len(rows)} rows in all)" if len(rows) > shown else "")
