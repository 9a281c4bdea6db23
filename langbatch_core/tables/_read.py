"""Reading a table: CSV/TSV (pyarrow's reader), Excel (python-calamine), Parquet, JSON lines of records.

    table = read_table("reviews.csv")                   # delimiter guessed from the header line
    table = read_table("export.csv", encoding="latin-1")
    table = read_table("book.xlsx", sheet="2024")
    table.frame, table.summary(), table.issues           # pandas DataFrame, rows and column types, warnings

Problems name the row (1-based, the header not counted) and the column; a table that cannot be read raises
``TableError`` with every issue found.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from langbatch_core.errors import TableError
from langbatch_core.tables._issues import TableIssue, row_list

FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
LARGE_CELL_CHARS = 100_000  # a cell this long is sent as it is, with a warning (about 25,000 tokens)
_CHUNK = 1 << 20
# pyarrow parses a CSV block in buffers a few times its size, and guesses the columns' types from the first
# block: the same small size here and when streaming (_blocks), so both read the same types
CSV_BLOCK, _MAX_BLOCK = 256 << 10, 256 << 20
_DELIMITERS = (",", "\t", ";", "|")
# a missing cell keeps the type; text stays in Arrow's buffers (a Python string per cell is ~2x the bytes)
NULLABLE = {
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
    pa.string(): pd.StringDtype("pyarrow"),
}
_MIXED_COLUMN = re.compile(r"In CSV column #(\d+): .*conversion error")


@dataclass
class Table:
    """A table read from a file (or given as a DataFrame), with what was found while reading it."""

    frame: pd.DataFrame
    source: str
    sheet: str | None = None
    sheets: list[str] = field(default_factory=list)
    issues: list[TableIssue] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """``{"rows": n, "columns": [{"name", "type"}], "sheet", "sheets", "warnings": [...]}``."""
        return {
            "rows": len(self.frame),
            "columns": [{"name": str(c), "type": column_type(self.frame[c])} for c in self.frame.columns],
            "sheet": self.sheet,
            "sheets": list(self.sheets),
            "warnings": [issue.message for issue in self.issues],
        }


def column_type(series: pd.Series) -> str:
    """A column's type in words: integer, number, text, true/false, date/time, list, or mixed."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "true/false"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "date/time"
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return "text"
    kinds = {type(v).__name__ for v in series.dropna().head(1000)}
    if kinds <= {"str"}:
        return "text"
    if kinds and kinds <= {"list", "ndarray"}:
        return "list"
    return "mixed"


def table_format(name: str) -> str | None:
    """``csv``, ``tsv``, ``excel``, ``parquet`` or ``jsonl`` by the file's suffix (None: not a table)."""
    return FORMATS.get(Path(name).suffix.lower())


def excel_sheets(path: str | os.PathLike[str]) -> list[str]:
    """The sheet names of an Excel workbook, in order."""
    from python_calamine import CalamineWorkbook

    try:
        return list(CalamineWorkbook.from_path(str(path)).sheet_names)
    except Exception as exc:  # calamine's own error types
        raise TableError(f"{Path(path).name} is not an Excel workbook LangBatch can read ({exc}).") from None


def read_table(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Table:
    """Read a table from a path (by suffix) or take a DataFrame; see the module docstring."""
    if isinstance(source, pd.DataFrame):
        table = Table(source.reset_index(drop=True), "the DataFrame")
    else:
        table = _read_path(Path(source), sheet, encoding, delimiter)
    if len(table.frame) == 0:
        where = f"sheet {table.sheet!r} of {table.source}" if table.sheet else table.source
        message = f"{where} has no rows under its header: a batch needs at least one row."
        raise TableError(message, [TableIssue("empty_table", message)])
    table.frame.columns = [str(c) for c in table.frame.columns]
    table.issues += large_cells(table.frame)
    return table


def check_path(path: Path) -> str:
    """The table format of ``path`` (TableError if it is not a file, or not a table by its suffix)."""
    if not path.is_file():
        raise TableError(f"{path} is not a file: give the path of a CSV, TSV, Excel, Parquet or JSONL table.")
    kind = table_format(path.name)
    if kind is None:
        raise TableError(
            f"{path.name}: LangBatch reads tables from {', '.join(FORMATS)} files; save it as CSV or Excel."
        )
    return kind


def _read_path(path: Path, sheet: str | None, encoding: str | None, delimiter: str | None) -> Table:
    kind = check_path(path)
    if kind == "excel":
        return _read_excel(path, sheet)
    if kind == "parquet":
        return Table(_read_parquet(path), path.name)
    if kind == "jsonl":
        return Table(_read_jsonl(path, encoding), path.name)
    return Table(_read_csv(path, encoding, delimiter or ("\t" if kind == "tsv" else None)), path.name)


# ---------------------------------------------------------------------------------------------- CSV


def _read_csv(path: Path, encoding: str | None, delimiter: str | None) -> pd.DataFrame:
    if encoding and codecs.lookup(encoding_name(encoding)).name != "utf-8":
        with tempfile.TemporaryDirectory(prefix="langbatch-table-") as folder:
            utf8 = Path(folder) / "table.csv"
            transcode(path, encoding, utf8)
            return _read_utf8_csv(utf8, path.name, delimiter)
    check_utf8(path, delimiter)
    return _read_utf8_csv(path, path.name, delimiter)


def encoding_name(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise TableError(
            f"Unknown encoding {name!r}: use a name like 'utf-8', 'latin-1', 'cp1252' or 'utf-16'."
        ) from None


def transcode(path: Path, encoding: str, out: Path) -> None:
    """``path`` decoded from ``encoding`` into ``out`` as UTF-8, a block at a time."""
    decoder = codecs.getincrementaldecoder(encoding_name(encoding))()
    with path.open("rb") as raw, out.open("w", encoding="utf-8", newline="") as text:
        try:
            while chunk := raw.read(_CHUNK):
                text.write(decoder.decode(chunk))
            text.write(decoder.decode(b"", final=True))
        except UnicodeDecodeError as exc:
            message = f"{path.name} cannot be read as {encoding}: {exc.reason}; pick its encoding."
            raise TableError(message) from None


def check_utf8(path: Path, delimiter: str | None) -> None:
    """TableError naming the row and column of the first byte that is not UTF-8."""
    decoder, offset = codecs.getincrementaldecoder("utf-8")(), 0
    with path.open("rb") as raw:
        while chunk := raw.read(_CHUNK):
            try:
                decoder.decode(chunk, final=len(chunk) < _CHUNK)
            except UnicodeDecodeError as exc:
                _not_utf8(path, offset + exc.start, delimiter)
            offset += len(chunk)


def _not_utf8(path: Path, position: int, delimiter: str | None) -> None:
    with path.open("rb") as raw:
        before = raw.read(position).decode("utf-8", errors="replace")
    rows = list(csv.reader(io.StringIO(before), delimiter=delimiter or _guess_delimiter(before)))
    header = rows[0] if rows else []
    row, index = len(rows) - 1, max(len(rows[-1]) - 1, 0) if rows else 0
    column = header[index] if index < len(header) else None
    where = f"row {row}, column {column!r}" if row >= 1 and column else f"line {before.count(chr(10)) + 1}"
    message = (
        f"{path.name} is not UTF-8 (a byte at {where} is not): choose its encoding — cp1252 for a file Excel "
        "saved on Windows, else latin-1 (Encoding on the dashboard's page, --encoding in the CLI, encoding= "
        "in Python)."
    )
    raise TableError(message, [TableIssue("not_utf8", message, row if row >= 1 else None, column)])


def _guess_delimiter(text: str) -> str:
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def sniff_delimiter(path: Path) -> str:
    """The delimiter of a UTF-8 CSV, guessed from its header line."""
    with path.open(encoding="utf-8", errors="replace") as text:
        return _guess_delimiter(text.read(64 * 1024).lstrip("\ufeff"))


def _read_utf8_csv(path: Path, name: str, delimiter: str | None) -> pd.DataFrame:
    delimiter = delimiter or sniff_delimiter(path)
    options = CsvOptions()
    while True:
        try:
            return _read_blocks(path, delimiter, options).to_pandas(types_mapper=NULLABLE.get)
        except pa.ArrowInvalid as exc:
            if not options.learn(path, delimiter, exc):
                raise_unreadable(path, name, delimiter, exc)


@dataclass
class CsvOptions:
    """What pyarrow's reader is told: columns read as text, the block size; ``learn`` changes them when a
    read fails in a way a new read avoids."""

    as_text: dict[str, pa.DataType] = field(default_factory=dict)
    block_size: int = CSV_BLOCK

    def learn(self, path: Path, delimiter: str, exc: pa.ArrowInvalid) -> bool:
        """True when reading again with new options avoids ``exc``: a row longer than a block (1 MB cells)
        takes larger blocks; a later cell of another kind than the first block's makes its column text."""
        if "straddling object" in str(exc) and self.block_size < _MAX_BLOCK:
            self.block_size *= 8
            return True
        mixed = _MIXED_COLUMN.search(str(exc))
        if mixed and len(self.as_text) < 10_000:
            self.as_text[_column_name(path, delimiter, int(mixed.group(1)))] = pa.string()
            return True
        return False


def csv_reader(file: IO[bytes], delimiter: str, options: CsvOptions) -> pa_csv.CSVStreamingReader:
    """pyarrow's CSV reader of an open file, a block at a time. (Given a path, pyarrow reads the file far
    ahead of the blocks it hands out: near the whole file in memory.)"""
    return pa_csv.open_csv(
        file,
        read_options=pa_csv.ReadOptions(block_size=options.block_size, use_threads=False),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=options.as_text, null_values=[""], strings_can_be_null=True
        ),
    )


def _read_blocks(path: Path, delimiter: str, options: CsvOptions) -> pa.Table:
    """The CSV as an Arrow table, read a block at a time; the memory pool gives back each block's parsing
    buffers before the next, so the peak stays near the table's own size rather than twice it."""
    with path.open("rb") as file:
        reader = csv_reader(file, delimiter, options)
        pool, blocks = pa.default_memory_pool(), []
        for block in reader:
            blocks.append(block)
            pool.release_unused()
        return pa.Table.from_batches(blocks, schema=reader.schema)


def _column_name(path: Path, delimiter: str, index: int) -> str:
    with path.open(encoding="utf-8-sig", newline="") as text:
        return next(csv.reader(text, delimiter=delimiter))[index]


def raise_unreadable(path: Path, name: str, delimiter: str, exc: Exception) -> None:
    issues = _ragged_rows(path, delimiter)
    if issues:
        rows = row_list([i.row for i in issues if i.row])
        message = f"{name}: {issues[0].message} ({len(issues)} such row(s): {rows}). Fix those rows."
        raise TableError(message, issues) from None
    first = str(exc).strip().splitlines()[0]
    raise TableError(f"{name} cannot be read as a table with delimiter {delimiter!r}: {first}") from None


def _ragged_rows(path: Path, delimiter: str) -> list[TableIssue]:
    limit = csv.field_size_limit(1 << 30)  # cells of 1 MB and more are read (the default stops at 128 KiB)
    try:
        return _rows_of_another_length(path, delimiter)
    finally:
        csv.field_size_limit(limit)


def _rows_of_another_length(path: Path, delimiter: str) -> list[TableIssue]:
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as text:
        reader = csv.reader(text, delimiter=delimiter)
        header = next(reader, [])
        issues = []
        for row, fields in enumerate(reader, start=1):
            if len(fields) != len(header) and fields:
                message = (
                    f"row {row} (line {reader.line_num}) has {len(fields)} cells where the header has "
                    f"{len(header)}"
                )
                column = header[-1] if len(fields) > len(header) else header[len(fields)]
                issues.append(TableIssue("ragged_row", message, row, column))
        return issues


# ---------------------------------------------------------------------------------------------- Excel


def _read_excel(path: Path, sheet: str | None) -> Table:
    from python_calamine import CalamineWorkbook

    names = excel_sheets(path)
    chosen = sheet if sheet is not None else (names[0] if names else None)
    if chosen not in names:
        raise TableError(f"{path.name} has no sheet {sheet!r}; its sheets: {', '.join(map(repr, names))}.")
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(chosen).to_python()
    while rows and all(cell == "" for cell in rows[-1]):
        rows.pop()
    header = [str(cell).strip() or f"column_{i + 1}" for i, cell in enumerate(rows[0])] if rows else []
    columns = {name: [_excel_cell(row[i]) for row in rows[1:]] for i, name in enumerate(header)}
    frame = pd.DataFrame({name: _typed(values) for name, values in columns.items()})
    issues = _formula_cells(path, names.index(chosen), header)
    return Table(frame, path.name, chosen, names, issues)


def _excel_cell(value: Any) -> Any:
    return None if value == "" else value


def _typed(values: list[Any]) -> pd.Series:
    series = pd.Series(values, dtype=object).infer_objects()
    if pd.api.types.is_float_dtype(series.dtype):
        present = series.dropna()
        if len(present) and (present % 1 == 0).all():
            return series.astype("Int64")  # Excel keeps every number as a float
    return series


def _formula_cells(path: Path, index: int, header: list[str]) -> list[TableIssue]:
    """A warning per formula cell: its last computed value (saved in the file) is what is read."""
    issues: list[TableIssue] = []
    try:
        with zipfile.ZipFile(path) as book:
            target = _sheet_xml(book, index)
            with book.open(target) as xml:
                for _, element in ElementTree.iterparse(xml):
                    if element.tag.endswith("}c") and any(c.tag.endswith("}f") for c in element):
                        issues.append(_formula_issue(element.get("r") or "", header))
                    if element.tag.endswith("}row"):
                        element.clear()
    except (KeyError, zipfile.BadZipFile, ElementTree.ParseError):
        return issues
    return issues


def _sheet_xml(book: zipfile.ZipFile, index: int) -> str:
    namespace = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
    sheets = [e for e in workbook.iter() if e.tag.endswith("}sheet")]
    relation = sheets[index].get(namespace)
    rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    target = next(e.get("Target") for e in rels if e.get("Id") == relation) or ""
    return target.lstrip("/") if target.startswith("/") else f"xl/{target}"


def _formula_issue(reference: str, header: list[str]) -> TableIssue:
    match = re.fullmatch(r"([A-Z]+)(\d+)", reference)
    letters, number = (match.group(1), int(match.group(2))) if match else ("", 0)
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - 64
    column = header[index - 1] if 0 < index <= len(header) else None
    message = (
        f"cell {reference} (row {number - 1}, column {column!r}) holds a formula: its value as last "
        "computed by the spreadsheet is used; recalculate and save in Excel if it may be stale."
    )
    return TableIssue("formula_cell", message, number - 1 if number > 1 else None, column, "warning")


# ---------------------------------------------------------------------------------------------- others


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow's errors
        raise TableError(f"{path.name} is not a Parquet file LangBatch can read ({exc}).") from None


def _read_jsonl(path: Path, encoding: str | None) -> pd.DataFrame:
    records = []
    with path.open("rb") as raw:
        for line, text in enumerate(raw, start=1):
            if not text.strip():
                continue
            if encoding:
                text = text.decode(encoding).encode()
            try:
                record = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                message = f"{path.name} line {line} is not JSON ({exc}); each line must be one record."
                raise TableError(message, [TableIssue("invalid_json", message, line)]) from None
            if not isinstance(record, dict):
                message = f"{path.name} line {line} is not a record: each line must be one JSON object."
                raise TableError(message, [TableIssue("not_a_record", message, line)])
            records.append(record)
    return pd.DataFrame.from_records(records)


def large_cells(frame: pd.DataFrame, first: int = 0, found: dict[str, int] | None = None) -> list[TableIssue]:
    """A warning per cell over ``LARGE_CELL_CHARS`` (at most 10 a column, counting ``found``); ``first``:
    the position of the frame's first row in the table."""
    issues = []
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
            continue
        text = series if isinstance(series.dtype, pd.StringDtype) else series.astype("string")
        lengths = text.str.len().to_numpy(dtype="float64", na_value=0)  # Arrow-held text stays there
        room = 10 - (found or {}).get(str(column), 0)
        for position in np.flatnonzero(lengths > LARGE_CELL_CHARS)[: max(room, 0)]:
            size, row = int(lengths[position]), first + int(position) + 1
            message = (
                f"row {row}, column {column!r} holds {size:,} characters (about {size // 4:,} "
                "tokens): it is sent as it is; most models take far less in one request."
            )
            issues.append(TableIssue("large_cell", message, row, str(column), "warning"))
    return issues


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` as Parquet at ``path``; a column of numbers and text (Excel) is kept as its text."""
    try:
        frame.to_parquet(path, index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        mixed = frame.copy(deep=False)
        for column in frame.columns:
            if frame[column].dtype == object:
                mixed[column] = frame[column].map(lambda v: v if v is None else str(v))
        mixed.to_parquet(path, index=False)
