"""Prompt templates over a table's columns: Jinja2 in a sandbox, compiled once, checked before anything runs.

    template = PromptTemplate("Sentiment of: {{ review }}")
    template.check(table.frame.columns)                 # TemplateError naming a missing column
    texts, empty = template.render_all(table.frame)      # one string per row; empty cells counted per column

A template is user input: ``ImmutableSandboxedEnvironment`` refuses attribute access to Python internals and
has no loader (no file access). Columns are variables (``{{ review }}``); any column, including one whose
name is not an identifier, is also ``{{ row["Review text"] }}``. An empty cell renders as nothing.

A template made only of text and ``{{ column }}`` takes a fast path (string joins, no Jinja call per row)
that gives the same text as Jinja: Jinja turns such a template into exactly "text + str(value) + text",
after normalising line ends in the text to ``\\n`` — which the fast path does too.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from langbatch_core.errors import TemplateError
from langbatch_core.tables._issues import TableIssue

ROW_VARIABLE = "row"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_JINJA_SYNTAX = ("{{", "{%", "{#", "}}", "%}", "#}")
_NEWLINES = re.compile(r"\r\n|\r")
_CHUNK_ROWS = 1_000


def _blank_for_none(value: Any) -> Any:
    return "" if value is None else value


def _environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_blank_for_none,
    )


class PromptTemplate:
    """A compiled template (see the module docstring). ``TemplateError`` if it does not compile."""

    def __init__(self, source: str, *, what: str = "template") -> None:
        if not isinstance(source, str):
            raise TemplateError(f"The {what} must be text, like 'Sentiment of: {{{{ review }}}}'.")
        self.source, self.what = source, what
        environment = _environment()
        try:
            parsed = environment.parse(source)
            self._compiled = environment.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"The {what} does not compile: {exc.message} (line {exc.lineno}). Columns are written "
                "{{ column }}; a name with spaces is {{ row['the name'] }}."
            ) from None
        self.variables = sorted(meta.find_undeclared_variables(parsed))
        parts = _simple_parts(source)
        self._parts = parts if parts is not None and set(parts[1]) <= set(self.variables) else None

    @property
    def never_blank(self) -> bool:
        """Renders to some text on every row: a simple template with fixed text that is not blank."""
        return self._parts is not None and any(text.strip() for text in self._parts[0])

    @property
    def is_simple(self) -> bool:
        """Only text and ``{{ column }}`` placeholders: rendered by the fast path."""
        return self._parts is not None

    def columns_used(self, columns: Iterable[str]) -> list[str]:
        """The table's columns this template reads (every column when it uses ``row``)."""
        names = [str(c) for c in columns]
        if ROW_VARIABLE in self.variables and ROW_VARIABLE not in names:
            return names
        return [name for name in names if name in self.variables]

    def check(self, columns: Iterable[str]) -> None:
        """TemplateError naming each variable that is not a column, with the closest column names."""
        names = [str(c) for c in columns]
        missing = [v for v in self.variables if v not in names and v != ROW_VARIABLE]
        if not missing:
            return
        issues = [TableIssue("unknown_column", unknown_column(v, names, self.what), None, v) for v in missing]
        raise TemplateError(" ".join(issue.message for issue in issues), issues)

    def render_all(self, frame: pd.DataFrame) -> tuple[list[str], dict[str, list[int]]]:
        """The text of every row, and per column used the 1-based rows whose cell was empty."""
        empty = self.empty_cells(frame)
        return [text for _, texts in self.render_chunks(frame) for text in texts], empty

    def empty_cells(self, frame: pd.DataFrame) -> dict[str, list[int]]:
        """Per column the template uses, the 1-based rows whose cell is empty (checks the columns first)."""
        self.check(frame.columns)
        return {name: rows for name in self.columns_used(frame.columns) if (rows := empty_rows(frame[name]))}

    def render_chunks(self, frame: pd.DataFrame, first: int = 0) -> Iterator[tuple[int, list[str]]]:
        """``(first row position, texts)`` of a chunk of rows at a time: only that chunk's texts in memory.
        ``first``: the position of the frame's first row in the table (errors name the table's row)."""
        self.check(frame.columns)
        used = self.columns_used(frame.columns)
        simple = self._parts is not None and ROW_VARIABLE not in self.variables
        for start in range(0, len(frame), _CHUNK_ROWS):
            part = frame.iloc[start : start + _CHUNK_ROWS]
            if simple:
                yield start, self._render_simple(part)
            else:
                yield (
                    start,
                    self._render_jinja(
                        {name: cells_of(part[name]) for name in used}, len(part), first + start
                    ),
                )

    def _render_simple(self, part: pd.DataFrame) -> list[str]:
        texts, names = self._parts or ([""], [])
        if not names:
            return [texts[0]] * len(part)
        pattern = "{}".join(text.replace("{", "{{").replace("}", "}}") for text in texts)
        return list(map(pattern.format, *(texts_of(part[name]) for name in names)))

    def _render_jinja(self, values: dict[str, list[Any]], rows: int, first: int) -> list[str]:
        names = list(values)
        out = []
        for index in range(rows):
            row = {name: values[name][index] for name in names}
            try:
                out.append(self._compiled.render({**row, ROW_VARIABLE: row}))
            except jinja2.exceptions.SecurityError as exc:
                raise TemplateError(f"The {self.what} is refused by the sandbox: {exc}.") from None
            except (jinja2.TemplateError, TypeError, ValueError, ZeroDivisionError) as exc:
                message = f"The {self.what} fails on row {first + index + 1}: {exc}."
                raise TemplateError(
                    message, [TableIssue("template_failed", message, first + index + 1)]
                ) from None
        return out


def _simple_parts(source: str) -> tuple[list[str], list[str]] | None:
    """``(texts, names)`` with ``len(texts) == len(names) + 1`` when ``source`` is text and ``{{ name }}``
    only, else None."""
    texts, names, position = [], [], 0
    for match in _PLACEHOLDER.finditer(source):
        texts.append(source[position : match.start()])
        names.append(match.group(1))
        position = match.end()
    texts.append(source[position:])
    if any(token in text for text in texts for token in _JINJA_SYNTAX):
        return None
    return [_NEWLINES.sub("\n", text) for text in texts], names


def empty_rows(series: pd.Series) -> list[int]:
    """The 1-based rows whose cell is missing or empty text."""
    mask = series.isna().to_numpy(dtype=bool, copy=True)
    if not pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        mask |= series.eq("").fillna(False).to_numpy(dtype=bool)
    return (np.flatnonzero(mask) + 1).tolist()


def texts_of(series: pd.Series) -> list[str]:
    """Each cell as the text Jinja renders for it (``str(value)``, empty for a missing cell)."""
    if pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(series.dtype):
        return series.fillna("").tolist()
    return ["" if value is None else str(value) for value in cells_of(series)]


def cells_of(series: pd.Series) -> list[Any]:
    """Python values of a column, None for a missing cell."""
    values = series.astype(object)
    return values.where(series.notna(), None).tolist()


def unknown_column(name: str, columns: list[str], what: str) -> str:
    close = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in columns}
        close = [lowered[name.lower()]] if name.lower() in lowered else []
    hint = f" Did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(columns[:20]) + (", …" if len(columns) > 20 else "")
    return f"The {what} uses the column {name!r}, which the table does not have (columns: {shown}).{hint}"
