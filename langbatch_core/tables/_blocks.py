"""A table as blocks of rows, so a request file can be made without holding the table.

    blocks = open_blocks("reviews.csv")               # or a DataFrame, .xlsx (sheet=), .parquet, .jsonl
    for block in blocks.blocks(Path("table.parquet")):  # pandas frames of a few thousand rows, in order
        ...                                          # the Parquet copy is written as the blocks go by
    blocks.issues                                    # warnings found on the way (1 MB cells, formulas)

CSV/TSV and Parquet stream: one block of the file is in memory at a time, and its rows go to the Parquet
copy as they are read. Excel and JSON lines are read whole first (the Excel reader loads the sheet; a JSON
record's types are known only once every record is read) and a DataFrame is already whole: their blocks are
slices of the frame.

A CSV column whose first block looked like numbers and a later one holds text is read again as text, and
a row longer than a block (a 1 MB cell) is read again in larger blocks: ``blocks()`` then raises
``ReadAgain`` after noting it, and the caller starts over.
"""

from __future__ import annotations

import codecs
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from langbatch_core.errors import TableError
from langbatch_core.tables import _read
from langbatch_core.tables._issues import TableIssue

BLOCK_ROWS = 4_000  # a DataFrame's or a Parquet file's rows at a time
# a CSV is parsed in small blocks (_read.CSV_BLOCK), gathered into groups of about 1 MiB for the rest of the
# work (fewer, larger steps through pandas and Parquet)
GROUP_BYTES = 1 << 20


class ReadAgain(Exception):
    """A CSV column turned out to hold text after a block of numbers, or a row is longer than a block:
    read the table again (with what was learnt). A signal to start over, never shown to a person."""


class TableBlocks:
    """A table read a block at a time (see the module docstring); ``name`` is how messages call it."""

    def __init__(self, name: str, sheet: str | None = None, issues: list[TableIssue] | None = None) -> None:
        self.name, self.sheet = name, sheet
        self.issues: list[TableIssue] = list(issues or [])

    def blocks(self, parquet: Path | None = None) -> Iterator[pd.DataFrame]:
        """The rows in order, a pandas frame at a time; ``parquet`` receives the table as read."""
        raise NotImplementedError

    def empty_error(self) -> TableError:
        where = f"sheet {self.sheet!r} of {self.name}" if self.sheet else self.name
        message = f"{where} has no rows under its header: a batch needs at least one row."
        return TableError(message, [TableIssue("empty_table", message)])


class FrameBlocks(TableBlocks):
    """A table already in memory (a DataFrame, or an Excel sheet or JSON lines read whole)."""

    def __init__(self, table: _read.Table) -> None:
        super().__init__(table.source, table.sheet, table.issues)
        self.frame = table.frame

    def blocks(self, parquet: Path | None = None) -> Iterator[pd.DataFrame]:
        for start in range(0, len(self.frame), BLOCK_ROWS):
            yield self.frame.iloc[start : start + BLOCK_ROWS]
        if parquet is not None:
            _read.write_parquet(self.frame, parquet)


class _StreamedBlocks(TableBlocks):
    """Blocks converted from Arrow record batches, each checked for large cells and copied to Parquet."""

    def _batches(self) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def blocks(self, parquet: Path | None = None) -> Iterator[pd.DataFrame]:
        self.issues = [i for i in self.issues if i.code != "large_cell"]  # a restart finds them again
        writer, first = None, 0
        try:
            for part in _grouped(self._batches()):
                block = part.to_pandas(types_mapper=_read.NULLABLE.get)
                block.columns = [str(c) for c in block.columns]
                block.index = pd.RangeIndex(first, first + len(block))
                if parquet is not None:
                    if writer is None:  # the pandas types (Int64, text) of the first block, as read_table's
                        schema = pa.Schema.from_pandas(block, preserve_index=False)
                        writer = pq.ParquetWriter(parquet, part.schema.with_metadata(schema.metadata))
                    writer.write_table(part)
                self.issues += _read.large_cells(block, first, _large_count(self.issues))
                first += len(block)
                yield block
                pa.default_memory_pool().release_unused()
        finally:
            if writer is not None:
                writer.close()


class CsvBlocks(_StreamedBlocks):
    """A CSV/TSV file, parsed a small block at a time (``_read``'s reader: the same types and checks)."""

    def __init__(self, path: Path, encoding: str | None, delimiter: str | None) -> None:
        super().__init__(path.name)
        self.path, self.encoding, self.delimiter = path, encoding, delimiter
        self.options = _read.CsvOptions()

    def _batches(self) -> Iterator[pa.RecordBatch]:
        path, encoding = self.path, self.encoding
        if encoding and codecs.lookup(_read.encoding_name(encoding)).name != "utf-8":
            with tempfile.TemporaryDirectory(prefix="langbatch-table-") as folder:
                utf8 = Path(folder) / "table.csv"
                _read.transcode(path, encoding, utf8)
                yield from self._utf8_batches(utf8)
            return
        yield from self._utf8_batches(path)  # pyarrow checks the UTF-8: no pass of its own over the file

    def _utf8_batches(self, path: Path) -> Iterator[pa.RecordBatch]:
        delimiter = self.delimiter or _read.sniff_delimiter(path)
        try:
            with path.open("rb") as file:
                reader = _read.csv_reader(file, delimiter, self.options)
                if any(pa.types.is_binary(column.type) for column in reader.schema):
                    _read.check_utf8(path, delimiter)  # a column that is not UTF-8 text: where
                pool = pa.default_memory_pool()
                for batch in reader:
                    yield batch
                    pool.release_unused()  # the block's parse buffers, before the next
        except pa.ArrowInvalid as exc:
            if "UTF8" in str(exc):
                _read.check_utf8(path, delimiter)  # names the row and column of the first bad byte
            if not self.options.learn(path, delimiter, exc):
                _read.raise_unreadable(path, self.name, delimiter, exc)
            raise ReadAgain() from None


class ParquetBlocks(_StreamedBlocks):
    """A Parquet file, read a row group's worth of rows at a time; the copy is the file itself."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        super().__init__(name or path.name)
        self.path = path

    def blocks(self, parquet: Path | None = None) -> Iterator[pd.DataFrame]:
        yield from super().blocks(None)
        if parquet is not None:
            shutil.copyfile(self.path, parquet)

    def _batches(self) -> Iterator[pa.RecordBatch]:
        try:
            source = pq.ParquetFile(self.path)
            yield from source.iter_batches(batch_size=BLOCK_ROWS)
        except (pa.ArrowException, OSError) as exc:
            raise TableError(f"{self.name} is not a Parquet file LangBatch can read ({exc}).") from None


def open_blocks(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> TableBlocks:
    """The blocks of a table given as ``read_table`` takes it (see the module docstring)."""
    if isinstance(source, pd.DataFrame):
        return FrameBlocks(_read.read_table(source))
    path = Path(source)
    kind = _read.check_path(path)
    if kind in ("csv", "tsv"):
        return CsvBlocks(path, encoding, delimiter or ("\t" if kind == "tsv" else None))
    if kind == "parquet":
        return ParquetBlocks(path)
    return FrameBlocks(_read.read_table(path, sheet=sheet, encoding=encoding, delimiter=delimiter))


def _grouped(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
    """Small record batches gathered into tables of about ``GROUP_BYTES``: the reader parses small blocks
    (its buffers are a few times a block), the rest of the work goes a larger group at a time."""
    group: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        group.append(batch)
        size += batch.nbytes
        if size >= GROUP_BYTES:
            yield pa.Table.from_batches(group)
            group, size = [], 0
    if group:
        yield pa.Table.from_batches(group)


def _large_count(issues: list[TableIssue]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for issue in issues:
        if issue.code == "large_cell" and issue.column:
            counts[issue.column] = counts.get(issue.column, 0) + 1
    return counts
