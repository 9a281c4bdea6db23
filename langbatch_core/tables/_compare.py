"""Two batches on the same rows, side by side: agreement per answer field, confusion of enum fields, cost.

    comparison = compare_batches(batch_a, batch_b)
    comparison.agreement            # {"sentiment": 0.92, ...}: share of rows answered by both that agree
    comparison.confusion["sentiment"]   # counts: rows = A's value, columns = B's
    comparison.rows[~comparison.rows["agree"]]   # where they disagree

Rows are matched by custom_id (the id column, or the row number), so the two batches may come from two
prompt versions or two models over the same table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from langbatch_core.errors import BatchStateError
from langbatch_core.tables._build import custom_ids


@dataclass
class Comparison:
    """What ``compare_batches`` found (see the module docstring)."""

    labels: tuple[str, str]
    fields: list[str]
    rows: pd.DataFrame
    agreement: dict[str, float | None] = field(default_factory=dict)
    confusion: dict[str, pd.DataFrame] = field(default_factory=dict)
    totals: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def disagreements(self) -> pd.DataFrame:
        return self.rows[~self.rows["agree"]]


def compare_batches(left: Any, right: Any) -> Comparison:
    """Compares two batches made from tables (``from_table``) on the rows both have."""
    specs = [batch.table_spec for batch in (left, right)]
    if any(spec is None for spec in specs):
        raise BatchStateError("Compare takes two batches made from tables (from_table).")
    labels = (_label(left), _label(right))
    if labels[0] == labels[1]:
        labels = (f"{labels[0]} (A)", f"{labels[1]} (B)")
    tables, ids = [], []
    for batch, spec in zip((left, right), specs, strict=True):
        table = batch.get_results_table()
        every = custom_ids(batch.source_table(), spec.id_column)
        tables.append(table)
        ids.append([every[position] for position in table.index])  # the joined table keeps row positions
    fields = [f for f in specs[0].fields if f in specs[1].fields] or ["answer"]
    return compare_tables(tables, ids, fields, labels)


def compare_tables(
    tables: list[pd.DataFrame], ids: list[list[str]], fields: list[str], labels: tuple[str, str]
) -> Comparison:
    """The comparison of two joined tables whose rows have these custom_ids."""
    left, right = (_keyed(t, i) for t, i in zip(tables, ids, strict=True))
    common = left.index.intersection(right.index, sort=False)
    left, right = left.loc[common], right.loc[common]
    rows = pd.DataFrame(index=common)
    rows.index.name = "custom_id"
    original = [c for c in tables[0].columns if c not in tables[0].attrs.get("answer_columns", {}).values()]
    for column in original:
        rows[column] = left[column]
    agree = pd.Series(True, index=common)
    agreement, confusion = {}, {}
    for name in fields:
        a, b = _column(left, name), _column(right, name)
        rows[f"{name} · {labels[0]}"], rows[f"{name} · {labels[1]}"] = a, b
        both = a.notna() & b.notna()
        same = both & (_normal(a) == _normal(b)).fillna(False)
        agree &= same | ~both
        agreement[name] = float(same.sum() / both.sum()) if both.sum() else None
        if _is_categorical(a, b):
            confusion[name] = pd.crosstab(a[both].rename(labels[0]), b[both].rename(labels[1]))
    rows["agree"] = agree
    for side, table in zip(labels, (left, right), strict=True):
        rows[f"status · {side}"] = _column(table, "status")
        rows[f"cost · {side}"] = _column(table, "cost_usd")
    totals = pd.DataFrame(
        {
            "batch": list(labels),
            "rows": [len(left), len(right)],
            "succeeded": [int((_column(t, "status") == "succeeded").sum()) for t in (left, right)],
            "total tokens": [int(_column(t, "total_tokens").fillna(0).sum()) for t in (left, right)],
            "cost (USD)": [float(_column(t, "cost_usd").fillna(0).sum()) for t in (left, right)],
        }
    )
    return Comparison(labels, fields, rows.reset_index(), agreement, confusion, totals)


def _keyed(table: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    keyed = table.copy(deep=False)
    keyed.index = pd.Index(ids, name="custom_id")
    return keyed


def _column(table: pd.DataFrame, role: str) -> pd.Series:
    names = table.attrs.get("answer_columns", {})
    return table[names.get(f"field:{role}") or names.get(role) or role]


def _normal(values: pd.Series) -> pd.Series:
    if pd.api.types.is_string_dtype(values.dtype) or values.dtype == object:
        return values.astype("string").str.strip().str.casefold()
    return values


def _is_categorical(a: pd.Series, b: pd.Series) -> bool:
    kinds = pd.concat([a, b]).dropna()
    return bool(len(kinds)) and (pd.api.types.is_bool_dtype(kinds.dtype) or kinds.nunique() <= 20)


def _label(batch: Any) -> str:
    return str(batch.name or batch.id)
