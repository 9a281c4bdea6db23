"""Results back onto the user's rows: the joined table, and writing it as CSV, Excel or Parquet.

    joined = join_results(frame, custom_ids, results, schema=schema, model="gpt-4o-mini")
    export_table(joined, "answers.xlsx")

The joined table is the user's table in its order, with its columns and types, plus ``answer`` (the raw
text), one typed column per schema field, ``schema_error`` (why an answer does not fit, else empty),
``status``, ``error_code``, ``error_message``, token counts and ``cost_usd``; embeddings get ``embedding``
(one list per row). A new column whose name the table already uses gets a suffix (``status_2``);
``joined.attrs["answer_columns"]`` maps each role (``status``, ``field:sentiment``, …) to its column.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd

from langbatch_core.errors import ResultsError
from langbatch_core.requests import pricing
from langbatch_core.results import export_results
from langbatch_core.tables._schema import AnswerSchema, schema_types

FIELD = "field:"  # answer_columns role of a schema field: "field:<name>"
_FIELD_DTYPES = {"integer": "Int64", "number": "Float64", "boolean": "boolean", "string": "string"}


def join_results(
    frame: pd.DataFrame,
    custom_ids: Sequence[str],
    results: pd.DataFrame,
    *,
    schema: dict[str, Any] | None = None,
    model: str | None = None,
    free: bool = False,
    unanswered: str = "missing",
    embeddings: dict[str, list[float]] | None = None,
) -> pd.DataFrame:
    """The joined table (see the module docstring). ``results``: ``load_results`` rows (``custom_id``,
    ``status``, ``answer``, tokens, ...); rows without a result get status ``unanswered``."""
    positions = pd.Index(custom_ids).get_indexer(pd.Index(results["custom_id"]))
    keep = (positions >= 0) & ~pd.Index(positions).duplicated(keep="last")
    positions, results = positions[keep], results[keep]
    part: dict[str, Any] = {}
    if embeddings is not None:
        part["embedding"] = pd.Series([embeddings.get(i) for i in results["custom_id"]], dtype=object)
    else:
        part["answer"] = results["answer"].astype("string")
        if schema is not None:
            part.update(_field_columns(results, schema))
    part["status"] = results["status"].astype("string")
    for role in ("error_code", "error_message"):
        part[role] = results[role].astype("string")
    for role in ("prompt_tokens", "completion_tokens", "total_tokens"):
        part[role] = results[role].astype("Int64")
    part["cost_usd"] = _costs(results, model, free)
    added = pd.DataFrame({k: _values(v) for k, v in part.items()}, index=positions)
    added = added.reindex(pd.RangeIndex(len(frame)))
    added["status"] = added["status"].fillna(unanswered)
    if embeddings is not None:  # a row without a vector holds None (the reindex gave NaN), as Parquet does
        added["embedding"] = pd.Series(
            [v if isinstance(v, list) else None for v in added["embedding"]], dtype=object
        )
    joined = frame.reset_index(drop=True).copy(deep=False)
    names = {}
    for role in added.columns:
        names[role] = _free_name(role.removeprefix(FIELD), joined.columns)
        joined[names[role]] = added[role].array
    joined.index = frame.index
    joined.attrs = {"answer_columns": names}
    return joined


def _values(column: Any) -> Any:
    return column.array if isinstance(column, pd.Series) else column


def _field_columns(results: pd.DataFrame, schema: dict[str, Any]) -> dict[str, Any]:
    checker = AnswerSchema(schema)
    properties = schema.get("properties") or {}
    answered = (results["status"] == "succeeded").to_numpy(dtype=bool) & results["answer"].notna().to_numpy(
        dtype=bool
    )
    texts = [text if ok else None for text, ok in zip(results["answer"].tolist(), answered, strict=True)]
    values, errors = checker.columns(texts)
    columns: dict[str, Any] = {}
    for name in checker.fields:
        prop = properties.get(name) or {}
        dtype: Any = _field_dtype(prop)  # pandas-stubs type pd.array per literal dtype; this one is data
        columns[FIELD + name] = pd.array(_field_values(values[name], prop), dtype=dtype)
    columns["schema_error"] = pd.array(errors, dtype="string")
    return columns


def _field_dtype(prop: dict[str, Any]) -> str:
    types = schema_types(prop)
    base = [t for t in types if t != "null"]
    return _FIELD_DTYPES.get(base[0], "object") if len(base) == 1 else "object"


def _field_values(values: list[Any], prop: dict[str, Any]) -> list[Any]:
    if _field_dtype(prop) == "object":
        return [None if v is None else msgspec.json.encode(v).decode() for v in values]
    return values


def _costs(results: pd.DataFrame, model: str | None, free: bool) -> Any:
    answered = results["total_tokens"].notna().to_numpy(dtype=bool)
    if free:
        costs = np.zeros(len(results))
    else:
        price = pricing.price_for(model)
        if price is None:
            return pd.array([None] * len(results), dtype="Float64")
        prompt = results["prompt_tokens"].fillna(0).to_numpy(dtype=float)
        completion = results["completion_tokens"].fillna(0).to_numpy(dtype=float)
        costs = np.round((prompt * price.input + completion * price.output) / 1_000_000, 8)
    return pd.arrays.FloatingArray(costs, ~answered)


def _free_name(name: str, taken: Any) -> str:
    taken = {str(c) for c in taken}
    if name not in taken:
        return name
    number = 2
    while f"{name}_{number}" in taken:
        number += 1
    return f"{name}_{number}"


def export_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Writes a (joined) table as ``.csv``, ``.xlsx`` or ``.parquet`` (also ``.jsonl``), by suffix.

    CSV cells a spreadsheet would run as formulas start with ``'`` (as ``export_results`` does); Excel cells
    are written as text, never as formulas. Nothing half-written: a temporary file is renamed.
    """
    target = Path(path)
    if target.suffix.lower() != ".xlsx":
        return export_results(_lists_as_json(frame) if target.suffix.lower() == ".csv" else frame, target)
    if not target.parent.is_dir():
        raise ResultsError(f"Cannot write {target}: the folder {target.parent} does not exist; create it.")
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write_xlsx(frame, temp)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


def _lists_as_json(frame: pd.DataFrame) -> pd.DataFrame:
    """List cells (embeddings) as JSON text for a CSV; Parquet and JSONL keep them as arrays."""
    out = frame
    for column in frame.columns:
        if frame[column].dtype == object and isinstance(_first(frame[column]), list | tuple | np.ndarray):
            out = out.copy(deep=False) if out is frame else out
            out[column] = [_excel_value(v) for v in frame[column]]
    return out


def _first(series: pd.Series) -> Any:
    present = series.dropna()
    return present.iloc[0] if len(present) else None


def write_xlsx(frame: pd.DataFrame, target: Any) -> None:
    """Writes ``frame`` as one sheet (``target``: a path or a binary file object)."""
    import xlsxwriter

    options = {"strings_to_formulas": False, "strings_to_urls": False, "nan_inf_to_errors": True}
    with xlsxwriter.Workbook(target, {**options, "in_memory": True}) as book:
        sheet = book.add_worksheet("answers")
        bold = book.add_format({"bold": True})
        sheet.write_row(0, 0, [str(c) for c in frame.columns], bold)
        for index, column in enumerate(frame.columns):
            for row, value in enumerate(_excel_values(frame[column]), start=1):
                if value is not None:
                    sheet.write(row, index, value)
        sheet.freeze_panes(1, 0)


def _excel_values(series: pd.Series) -> list[Any]:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        series = series.dt.tz_localize(None) if getattr(series.dt, "tz", None) else series
        return [None if pd.isna(v) else v.to_pydatetime() for v in series]
    values = series.astype(object).where(series.notna(), None).tolist()
    return [_excel_value(v) for v in values]


def _excel_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple | dict | np.ndarray):
        return msgspec.json.encode(value.tolist() if isinstance(value, np.ndarray) else value).decode()
    return str(value)
