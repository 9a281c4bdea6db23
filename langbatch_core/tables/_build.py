"""From a table + a template (+ a schema) to an ordinary request file, and what the batch remembers of it.

    spec = TableSpec(kind="chat", template="Sentiment of: {{ review }}", schema=schema, model="gpt-4o-mini")
    custom_ids(frame, spec.id_column)               # the id column's text (checked), else row-1, row-2, …
    request_body(spec, "the prompt")                # what a row's request sends

Each line is built from bytes encoded once for the whole file (``line_template``: a line with two markers),
so only the custom_id and the rendered text are encoded per row (``_plan``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from langbatch_core.errors import TableError
from langbatch_core.tables._issues import TableIssue, row_list
from langbatch_core.tables._schema import check_strict_schema, response_format
from langbatch_core.tables._template import texts_of

ENDPOINTS = {"chat": "/v1/chat/completions", "embeddings": "/v1/embeddings"}
RESULT_COLUMNS = ("answer", "status", "error_code", "error_message", "schema_error", "prompt_tokens",
                  "completion_tokens", "total_tokens", "cost_usd", "embedding")  # fmt: skip
_ID_MARK, _TEXT_MARK = "\x00langbatch-id\x00", "\x00langbatch-text\x00"


@dataclass
class TableSpec:
    """What a batch made from a table remembers (``table.json`` in its folder, beside ``table.parquet``).

    ``rows``: the [first, last) row positions of the table this batch sends (a pilot sends the first N,
    the rest the others); ``pilot_of`` / ``rest_of``: the batch ids of the other part.
    """

    kind: str = "chat"  # "chat" | "embeddings"
    template: str | None = None
    system: str | None = None
    schema: dict[str, Any] | None = None
    schema_name: str = "answer"
    id_column: str | None = None
    text_column: str | None = None
    model: str | None = None
    request_kwargs: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    sheet: str | None = None
    encoding: str | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    pilot_id: str | None = None
    rest_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableSpec:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def fields(self) -> list[str]:
        return list(((self.schema or {}).get("properties") or {}).keys())


def custom_ids(frame: pd.DataFrame, id_column: str | None) -> list[str]:
    """The custom_id of each row: the id column's text (checked: present, filled, unique), else ``row-N``."""
    return id_texts(frame, id_column).to_pylist()


def id_texts(frame: pd.DataFrame, id_column: str | None) -> pa.ChunkedArray:
    """``custom_ids`` as Arrow text (no Python string per row), checked by Arrow's kernels."""
    check_id_column(frame.columns, id_column)
    ids, blank = id_cells(frame, id_column)
    check_ids(ids, blank, id_column)
    return ids


def check_id_column(columns: Any, id_column: str | None) -> None:
    if id_column is not None and id_column not in columns:
        shown = ", ".join(map(str, list(columns)[:20]))
        message = f"The id column {id_column!r} is not in the table (columns: {shown})."
        raise TableError(message, [TableIssue("unknown_column", message, None, id_column)])


def id_cells(frame: pd.DataFrame, id_column: str | None, first: int = 0) -> tuple[pa.ChunkedArray, list[int]]:
    """The custom_ids of a block of rows (``first``: its first row's position in the table), and the 1-based
    rows whose id is empty. A whole number in a column of numbers is written without ``.0``."""
    if id_column is None:
        numbers = pa.array(np.arange(first + 1, first + len(frame) + 1)).cast(pa.string())
        return pa.chunked_array([pc.binary_join_element_wise("row-", numbers, "")]), []
    series = frame[id_column]
    if isinstance(series.dtype, pd.StringDtype) and series.dtype.storage == "pyarrow":
        texts = pa.chunked_array(series.array._pa_array)  # the frame's own buffers
    elif pd.api.types.is_float_dtype(series.dtype):
        texts = pa.chunked_array([pa.array([_number_id(v) for v in series.tolist()], pa.string())])
    else:
        texts = pa.chunked_array([pa.array(texts_of(series), pa.string())])
    ids = pc.utf8_trim_whitespace(pc.fill_null(texts, "")).cast(pa.string())  # blocks' ids join up
    blank = (np.flatnonzero(pc.equal(ids, "").to_numpy(zero_copy_only=False)) + first + 1).tolist()
    return ids, blank


def _number_id(value: float) -> str:
    if value != value:  # NaN: no id
        return ""
    return str(int(value)) if value.is_integer() else str(value)


def check_ids(ids: pa.ChunkedArray, blank: list[int], id_column: str | None) -> None:
    """TableError naming the rows of an empty id, or both rows of a repeated one."""
    if id_column is None:
        return
    if blank:
        message = f"The id column {id_column!r} is empty on row(s) {row_list(blank)}: every row needs an id."
        raise TableError(message, [TableIssue("missing_id", message, n, id_column) for n in blank[:100]])
    if _has_repeats(ids):
        _report_repeats(ids.to_pylist(), id_column)


def _has_repeats(ids: pa.ChunkedArray) -> bool:
    # sorted neighbours: a fraction of the memory of a hash table of every id
    ordered = ids.take(pc.sort_indices(ids))
    return len(ids) > 1 and bool(pc.any(pc.equal(ordered.slice(1), ordered.slice(0, len(ids) - 1))).as_py())


def _report_repeats(ids: list[str], id_column: str) -> None:
    seen: dict[str, int] = {}
    issues = []
    for row, value in enumerate(ids, start=1):
        if value in seen:
            message = f"the id {value!r} is on row {seen[value]} and row {row}"
            issues.append(TableIssue("duplicate_id", message, row, id_column))
        else:
            seen[value] = row
    if issues:
        listed = "; ".join(issue.message for issue in issues[:5])
        more = f" ({len(issues)} repeats in all)" if len(issues) > 5 else ""
        raise TableError(
            f"The id column {id_column!r} must hold a different value on each row: {listed}{more}. "
            "Pick another id column, or none to use row numbers.",
            issues,
        )


def request_body(spec: TableSpec, text: str, default_model: str | None = None) -> dict[str, Any]:
    """The body of one request of this spec (the user's text in it)."""
    model = spec.model or default_model
    body: dict[str, Any] = {"model": model} if model else {}
    if spec.kind == "embeddings":
        body["input"] = text
    else:
        system = [{"role": "system", "content": spec.system}] if spec.system else []
        body["messages"] = [*system, {"role": "user", "content": text}]
        if spec.schema is not None:
            check_strict_schema(spec.schema)
            body["response_format"] = response_format(spec.schema, spec.schema_name)
    return {**spec.request_kwargs, **body} if spec.request_kwargs else body


def line_template(spec: TableSpec, default_model: str | None) -> tuple[bytes, bytes, bytes]:
    line = {
        "custom_id": _ID_MARK,
        "method": "POST",
        "url": ENDPOINTS[spec.kind],
        "body": request_body(spec, _TEXT_MARK, default_model),
    }
    encoded = orjson.dumps(line)
    before, rest = encoded.split(orjson.dumps(_ID_MARK), 1)
    between, after = rest.split(orjson.dumps(_TEXT_MARK), 1)
    return before, between, after + b"\n"
