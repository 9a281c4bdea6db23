"""Rendering a table's request lines a block of rows at a time, with every check, into a request file.

    found = write_requests("reviews.csv", spec, Path("requests.jsonl"), Path("table.parquet"))
    found.rows, found.sent, found.columns, found.issues   # the table's rows, the lines written, warnings
    plan = plan_requests(read_table("reviews.csv"), spec)  # a table in memory: the dashboard's preview
    plan.first_requests(3); plan.write("requests.jsonl", range(0, 20))

``write_requests`` never holds the table: a CSV or Parquet file goes a block at a time into the request
file and the Parquet copy the results are joined onto (``_blocks``). What needs the whole table is kept
small: the custom_ids (checked unique once every row is read), the rows of empty cells and blank prompts.
Every check raises before the caller keeps anything: the files it was given are then to be thrown away.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from langbatch_core.errors import TableError
from langbatch_core.tables._blocks import FrameBlocks, ReadAgain, TableBlocks, open_blocks
from langbatch_core.tables._build import TableSpec, check_id_column, check_ids, id_cells, line_template
from langbatch_core.tables._issues import TableIssue, row_list
from langbatch_core.tables._read import Table
from langbatch_core.tables._template import PromptTemplate, empty_rows, texts_of, unknown_column

_CHUNK_ROWS, _COPY_BYTES, _RETRIES = 1_000, 1 << 20, 10_000


@dataclass
class WrittenTable:
    """What ``write_requests`` found: the table's name, sheet, columns and rows, the lines it wrote."""

    source: str
    sheet: str | None
    columns: list[str]
    rows: int
    sent: int
    issues: list[TableIssue] = field(default_factory=list)


class _Planner:
    """Renders and checks blocks of rows in order, writing the lines of rows ``[first, stop)`` to ``out``."""

    def __init__(
        self, spec: TableSpec, out: IO[bytes], rows: tuple[int, int | None], model: str | None, offsets: bool
    ) -> None:
        self.spec, self.out, (self.first, self.stop) = spec, out, rows
        self.before, self.between, self.after = line_template(spec, model)
        self.template = PromptTemplate(spec.template) if spec.template else None
        self.columns: list[str] | None = None
        self.rows = 0
        self.ids: list[pa.ChunkedArray] = []  # each block's ids, checked together at the end
        self.blank_ids: list[int] = []
        self.blank: list[int] = []  # rows whose prompt renders to nothing
        self.empty: dict[str, list[int]] = {}
        self.lengths: list[np.ndarray] | None = [] if offsets else None  # of each line, when asked
        self.sent = 0

    def add(self, block: pd.DataFrame) -> None:
        if self.columns is None:
            self.columns = [str(c) for c in block.columns]
            self._check_columns(self.columns)
        first, self.rows = self.rows, self.rows + len(block)
        ids, blank = id_cells(block, self.spec.id_column, first)
        if self.spec.id_column is not None:  # kept to check them unique once every row is read
            self.ids.append(ids)
        self.blank_ids += blank
        for column, rows in self._empty(block).items():
            self.empty.setdefault(column, []).extend(n + first for n in rows)
        for start, texts in self._texts(block, first):
            self._write(first + start, texts, ids.slice(start, len(texts)))

    def finish(self) -> list[TableIssue]:
        """Checks what needs every row (ids, blank prompts); the warnings of the whole table."""
        check_ids(pa.chunked_array([c for ids in self.ids for c in ids.chunks], pa.string()),
                  self.blank_ids, self.spec.id_column)  # fmt: skip
        if self.blank:
            what = "text column" if self.spec.kind == "embeddings" and not self.template else "template"
            message = (
                f"The {what} renders to nothing on row(s) {row_list(self.blank)} (the cells it uses are "
                "empty there): fill those cells, drop those rows, or add fixed text to the template."
            )
            raise TableError(message, [TableIssue("empty_prompt", message, n) for n in self.blank[:100]])
        return [
            TableIssue("empty_cells", f"column {column!r} is empty on {len(rows)} row(s) ({row_list(rows)}): "
                       "rendered as nothing", rows[0], column, "warning")
            for column, rows in self.empty.items()
        ]  # fmt: skip

    @property
    def offsets(self) -> np.ndarray:
        """Where each written line starts in ``out``, and its end."""
        return np.concatenate(
            [[0], np.cumsum(np.concatenate([np.zeros(0, np.int64), *(self.lengths or [])]))]
        )

    def _check_columns(self, columns: list[str]) -> None:
        check_id_column(columns, self.spec.id_column)
        if self.template is not None:
            self.template.check(columns)
            return
        column = self.spec.text_column
        if self.spec.kind == "chat":
            raise TableError("A chat batch from a table needs template=, like 'Sentiment of: {{ review }}'.")
        if not column:
            raise TableError("An embedding batch needs text_column= (the column whose text is embedded).")
        if column not in columns:
            message = unknown_column(column, columns, "text column")
            raise TableError(message, [TableIssue("unknown_column", message, None, column)])

    def _empty(self, block: pd.DataFrame) -> dict[str, list[int]]:
        if self.template is not None:
            return self.template.empty_cells(block)
        rows = empty_rows(block[self.spec.text_column])
        return {str(self.spec.text_column): rows} if rows else {}

    def _texts(self, block: pd.DataFrame, first: int) -> Iterator[tuple[int, list[str]]]:
        if self.template is not None:
            return self.template.render_chunks(block, first)
        column = block[self.spec.text_column]
        return ((start, texts_of(column.iloc[start : start + _CHUNK_ROWS]))
                for start in range(0, len(block), _CHUNK_ROWS))  # fmt: skip

    def _write(self, first: int, texts: list[str], ids: pa.ChunkedArray) -> None:
        if self.template is None or not self.template.never_blank:
            self.blank += [first + n for n, text in enumerate(texts, start=1) if not text or text.isspace()]
        low = max(self.first - first, 0)
        high = len(texts) if self.stop is None else min(self.stop - first, len(texts))
        if low >= high:
            return
        chosen, count = ids.slice(low, high - low).to_pylist(), high - low
        encoded = list(map(b"".join, zip(repeat(self.before, count), map(orjson.dumps, chosen),
                                         repeat(self.between, count), map(orjson.dumps, texts[low:high]),
                                         repeat(self.after, count), strict=True)))  # fmt: skip
        self.sent += count
        if self.lengths is not None:
            self.lengths.append(np.fromiter(map(len, encoded), np.int64, count))
        self.out.writelines(encoded)


def write_requests(
    source: Any,
    spec: TableSpec,
    requests: Path,
    table: Path | None = None,
    *,
    rows: tuple[int, int | None] = (0, None),
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    default_model: str | None = None,
) -> WrittenTable:
    """Writes the request lines of the table's rows ``[rows[0], rows[1])`` (None: to the end) to
    ``requests`` and the table as read to ``table`` (Parquet), a block at a time. TableError, TemplateError
    or SchemaError on a problem, after which both files are to be thrown away."""
    blocks = source if isinstance(source, TableBlocks) else open_blocks(
        source, sheet=sheet, encoding=encoding, delimiter=delimiter
    )  # fmt: skip
    for _ in range(_RETRIES):
        with requests.open("wb") as out:
            planner = _Planner(spec, out, rows, default_model, offsets=False)
            try:
                for block in blocks.blocks(table):
                    planner.add(block)
            except ReadAgain:
                continue  # read again: a column as text, or larger blocks
        if planner.columns is None or planner.rows == 0:
            raise blocks.empty_error()
        issues = planner.finish()
        return WrittenTable(blocks.name, blocks.sheet, planner.columns, planner.rows, planner.sent,
                            blocks.issues + issues)  # fmt: skip
    raise TableError(f"{blocks.name} has too many columns of mixed kinds to read.")


class RequestPlan:
    """The request lines of a table in memory, rendered and checked into a temporary file (its ``offsets``:
    where each row's line starts): shown and written by range without rendering again."""

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
    """Renders every row of a table read whole (TableError/TemplateError/SchemaError before it is used)."""
    lines = tempfile.TemporaryFile(prefix="langbatch-requests-")  # noqa: SIM115 - the plan owns it
    try:
        planner = _Planner(spec, lines, (0, None), default_model, offsets=True)
        for block in FrameBlocks(table).blocks():
            planner.add(block)
        issues = list(table.issues) + planner.finish()
        lines.flush()
    except BaseException:
        lines.close()
        raise
    return RequestPlan(lines, planner.offsets, issues)
