"""From a table + a template (+ a schema) to an ordinary request file, and what the batch remembers of it.

    spec = TableSpec(kind="chat", template="Sentiment of: {{ review }}", schema=schema, model="gpt-4o-mini")
    plan = plan_requests(table, spec)              # TableError / TemplateError / SchemaError before writing
    plan.write("requests.jsonl")                    # one line per row, custom_id from the id column or row

Each line is built from bytes encoded once for the whole file (a template line with two markers), so only
the custom_id and the rendered text are encoded per row; a chunk of rows is rendered, encoded and spilled to
a temporary file at a time, so memory holds the table and one chunk, not every prompt.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from langbatch_core.errors import TableError
from langbatch_core.tables._issues import TableIssue, row_list
from langbatch_core.tables._read import Table
from langbatch_core.tables._schema import check_strict_schema, response_format
from langbatch_core.tables._template import PromptTemplate, empty_rows, texts_of, unknown_column

ENDPOINTS = {"chat": "/v1/chat/completions", "embeddings": "/v1/embeddings"}
RESULT_COLUMNS = ("answer", "status", "error_code", "error_message", "schema_error", "prompt_tokens",
                  "completion_tokens", "total_tokens", "cost_usd", "embedding")  # fmt: skip
_CHUNK_ROWS, _COPY_BYTES = 4_000, 1 << 20
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
    if id_column is None:
        numbers = pa.array(np.arange(1, len(frame) + 1)).cast(pa.string())
        return pa.chunked_array([pc.binary_join_element_wise("row-", numbers, "")])
    if id_column not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:20]))
        raise TableError(f"The id column {id_column!r} is not in the table (columns: {columns}).")
    series = frame[id_column]
    if pd.api.types.is_float_dtype(series.dtype) and (series.dropna() % 1 == 0).all():
        series = series.astype("Int64")
    if isinstance(series.dtype, pd.StringDtype) and series.dtype.storage == "pyarrow":
        texts = pa.chunked_array(series.array._pa_array)  # the frame's own buffers
    else:
        texts = pa.chunked_array([pa.array(texts_of(series), pa.string())])
    ids = pc.utf8_trim_whitespace(pc.fill_null(texts, ""))
    blank = (np.flatnonzero(pc.equal(ids, "").to_numpy(zero_copy_only=False)) + 1).tolist()
    if blank:
        message = f"The id column {id_column!r} is empty on row(s) {row_list(blank)}: every row needs an id."
        raise TableError(message, [TableIssue("missing_id", message, n, id_column) for n in blank[:100]])
    if _has_repeats(ids):
        _report_repeats(ids.to_pylist(), id_column)
    return ids


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


class RequestPlan:
    """The request lines of a table, rendered, checked and encoded a chunk of rows at a time into a temporary
    file (its ``offsets``: where each row's line starts), so a table's prompts are never all in memory."""

    def __init__(self, lines: IO[bytes], offsets: np.ndarray, issues: list[TableIssue]) -> None:
        self._lines, self.offsets, self.issues = lines, offsets, issues

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def write(self, path: str | os.PathLike[str], rows: range | None = None) -> int:
        """Writes the request lines (of ``rows``, consecutive positions, default all); returns how many."""
        chosen = rows if rows is not None else range(len(self))
        if chosen.step != 1 or not 0 <= chosen.start <= chosen.stop <= len(self):
            raise ValueError(f"rows must be consecutive positions within 0..{len(self)}, not {chosen}")
        position, end = int(self.offsets[chosen.start]), int(self.offsets[chosen.stop])
        with Path(path).open("wb") as out:
            while position < end:
                block = os.pread(self._lines.fileno(), min(_COPY_BYTES, end - position), position)
                out.write(block)
                position += len(block)
        return len(chosen)

    def first_requests(self, count: int = 3) -> list[dict[str, Any]]:
        """The first request lines exactly as they will be sent."""
        end = int(self.offsets[min(count, len(self))])
        return [orjson.loads(line) for line in os.pread(self._lines.fileno(), end, 0).splitlines()]


def plan_requests(table: Table, spec: TableSpec, default_model: str | None = None) -> RequestPlan:
    """Renders every row (TemplateError/TableError/SchemaError before anything is written)."""
    frame = table.frame
    ids = id_texts(frame, spec.id_column)
    if spec.kind == "embeddings":
        empty, chunks = _embedding_texts(frame, spec)
    else:
        template = PromptTemplate(spec.template or "")
        empty, chunks = template.empty_cells(frame), template.render_chunks(frame)
    lines, offsets, blank = _spill(ids, chunks, _line_template(spec, default_model))
    try:
        _check_not_blank(blank, spec)
    except TableError:
        lines.close()
        raise
    issues = list(table.issues) + _empty_cell_warnings(empty)
    return RequestPlan(lines, offsets, issues)


def _spill(
    ids: pa.ChunkedArray, chunks: Iterator[tuple[int, list[str]]], line: tuple[bytes, bytes, bytes]
) -> tuple[IO[bytes], np.ndarray, list[int]]:
    """The encoded lines in a temporary file, where each starts (and the end), the rows that render blank."""
    before, between, after = line
    dumps, blank = orjson.dumps, []
    lengths = np.zeros(len(ids) + 1, dtype=np.int64)
    lines = tempfile.TemporaryFile(prefix="langbatch-requests-")  # noqa: SIM115 - the plan owns it
    try:
        for start, texts in chunks:
            blank += [start + n for n, text in enumerate(texts, start=1) if not text or text.isspace()]
            chosen = ids.slice(start, len(texts)).to_pylist()
            encoded = [
                b"".join((before, dumps(i), between, dumps(t), after))
                for i, t in zip(chosen, texts, strict=True)
            ]
            lengths[start + 1 : start + 1 + len(encoded)] = [len(line) for line in encoded]
            lines.writelines(encoded)
        lines.flush()
    except BaseException:
        lines.close()
        raise
    return lines, np.cumsum(lengths), blank


def _embedding_texts(frame: pd.DataFrame, spec: TableSpec) -> tuple[dict[str, list[int]], Iterator[Any]]:
    if spec.template:
        template = PromptTemplate(spec.template)
        return template.empty_cells(frame), template.render_chunks(frame)
    column = spec.text_column
    if not column:
        raise TableError("An embedding batch needs text_column= (the column whose text is embedded).")
    if column not in frame.columns:
        message = unknown_column(column, [str(c) for c in frame.columns], "text column")
        raise TableError(message, [TableIssue("unknown_column", message, None, column)])
    empty = empty_rows(frame[column])
    chunks = ((start, texts_of(frame[column].iloc[start : start + _CHUNK_ROWS]))
              for start in range(0, len(frame), _CHUNK_ROWS))  # fmt: skip
    return ({column: empty} if empty else {}), chunks


def _check_not_blank(blank: list[int], spec: TableSpec) -> None:
    if not blank:
        return
    what = "text column" if spec.kind == "embeddings" and not spec.template else "template"
    message = (
        f"The {what} renders to nothing on row(s) {row_list(blank)} (the cells it uses are empty there): "
        "fill those cells, drop those rows, or add fixed text to the template."
    )
    raise TableError(message, [TableIssue("empty_prompt", message, n) for n in blank[:100]])


def _empty_cell_warnings(empty: dict[str, list[int]]) -> list[TableIssue]:
    return [
        TableIssue(
            "empty_cells",
            f"column {column!r} is empty on {len(rows)} row(s) ({row_list(rows)}): rendered as nothing",
            rows[0],
            column,
            "warning",
        )
        for column, rows in empty.items()
    ]


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


def _line_template(spec: TableSpec, default_model: str | None) -> tuple[bytes, bytes, bytes]:
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
