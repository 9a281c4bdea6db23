"""The table front door of a batch kind: ``from_table``, ``get_results_table``, ``rest`` (after a pilot).

    pilot = OpenAIChatCompletionBatch.from_table("reviews.csv", template="Sentiment of: {{ review }}",
                                                 schema=[{"name": "sentiment", "type": "string"}], pilot=20)
    pilot.start(); pilot.wait(); pilot.get_results_table()     # the first 20 rows, answered
    rest = pilot.rest(); rest.start(); rest.wait()               # the other rows, the pilot's not re-sent
    rest.get_results_table()                                     # every row: the pilot's answers count

    again = OpenAIChatCompletionBatch.from_table("june.csv", like=pilot)  # the same template, schema, model…

A batch made from a table keeps ``table.parquet`` (the table as read) and ``table.json`` (``TableSpec``:
template, system prompt, schema, id column, rows sent) in its folder, beside ``requests.jsonl``: whatever
the store, ``load(id)`` finds them. The request file and the Parquet copy are written a block of rows at a
time (``write_requests``): a CSV is never held whole. The request file is an ordinary one: start, retry,
cancel, results and the CLI work on it as on any other.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from langbatch_core.batch import Batch
from langbatch_core.errors import BatchStateError, StorageError, TableError

TABLE_FILE, SPEC_FILE = "table.parquet", "table.json"
_log = logging.getLogger("langbatch.tables")


class TableBatch(Batch):
    """The base of the batch kinds that take tables (chat completions, embeddings)."""

    table_issues: list[Any]  # set by from_table: what planning the requests noticed (a row left out...)

    @classmethod
    def from_table(
        cls,
        table: Any,
        *,
        template: str | None = None,
        system: str | None = None,
        schema: Any = None,
        id_column: str | None = None,
        model: str | None = None,
        request_kwargs: dict[str, Any] | None = None,
        sheet: str | None = None,
        encoding: str | None = None,
        delimiter: str | None = None,
        text_column: str | None = None,
        pilot: int | None = None,
        like: Any = None,
        **kw: Any,
    ) -> Any:
        """A batch with one request per row of ``table`` (a DataFrame or a CSV/TSV/XLSX/Parquet/JSONL path).

        ``template`` renders each row's prompt (Jinja2, sandboxed: ``{{ column }}``); ``schema`` (fields
        or a JSON Schema) asks for structured answers; ``id_column`` gives the custom_ids (else ``row-N``);
        ``pilot=N`` makes a batch of the first N rows only (``rest()`` makes the other). ``like=`` (a batch
        made from a table, or its id) runs that batch's template, system prompt, schema, id or text column,
        model and parameters on this table (on its connection and store); a keyword given here wins, and
        ``request_kwargs`` given are laid over the batch's. A column it uses that this table lacks is a
        ``TemplateError`` or ``TableError`` naming it.
        Other keywords (``connection``, ``storage``, ``name``, ``client``) go to the constructor. Every
        problem (a missing column, a duplicate id, a schema strict mode refuses) raises before anything is
        written; a CSV or Parquet file is read a block at a time, never whole.
        """
        kind = "embeddings" if cls.endpoint == "/v1/embeddings" else "chat"
        given = {"template": template, "system": system, "schema": schema, "id_column": id_column,
                 "text_column": text_column, "model": model, "request_kwargs": request_kwargs}  # fmt: skip
        like_id = None
        if like is not None:
            like_id, given, kw = _like(cls, like, kind, given, kw)
        _check_pilot(pilot)
        spec = _new_spec(kind, given, getattr(kw.get("connection"), "model", None) or cls.default_model)
        spec.encoding = encoding
        read = {"sheet": sheet, "encoding": encoding, "delimiter": delimiter}
        try:
            return cls._from_source(table, spec, kw, (0, pilot), read)
        except TableError as exc:
            if like_id is None or not any(issue.code == "unknown_column" for issue in exc.issues):
                raise
            name = Path(table).name if isinstance(table, str | os.PathLike) else "The DataFrame"
            raise type(exc)(f"{name} lacks a column batch {like_id} uses: {exc}", exc.issues) from None

    @classmethod
    def _from_source(
        cls, source: Any, spec: Any, kw: dict[str, Any], rows: tuple[int, int | None], read: dict[str, Any]
    ) -> Any:
        """The batch of ``rows`` of ``source``, its request file and table copy written a block at a time
        into temporary files, kept only when every check passed."""
        from langbatch_core.storage import default_storage
        from langbatch_core.tables import write_requests

        storage = kw.get("storage") or default_storage()
        tmp_dir = storage.data_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        requests, table = (_temp_file(tmp_dir, suffix) for suffix in (".jsonl", ".parquet"))
        try:
            found = write_requests(source, spec, requests, table, rows=rows, **read)
            if spec.source is None:  # a new table (the rest of a pilot keeps the pilot's)
                spec = replace(spec, source=found.source, sheet=found.sheet)
            last = found.rows if rows[1] is None else min(rows[1], found.rows)
            spec = replace(spec, columns=found.columns, rows=[rows[0], last])
            batch = cls(requests, **{**kw, "storage": storage})
            try:
                _keep_table_files(batch.directory, table, spec)
            except BaseException:
                shutil.rmtree(batch.directory, ignore_errors=True)
                raise
        finally:
            requests.unlink(missing_ok=True)
            table.unlink(missing_ok=True)
        batch.table_issues = found.issues
        return batch

    # -- what the batch remembers ---------------------------------------------------------------------

    @property
    def table_spec(self) -> Any:
        """The ``TableSpec`` of a batch made from a table, else None."""
        from langbatch_core.tables import TableSpec

        path = Path(self.directory) / SPEC_FILE
        if not path.exists():
            return None
        return TableSpec.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def source_table(self) -> Any:
        """The table this batch was made from (pandas), as it was read."""
        import pandas as pd

        self._state.check_access("read the table of")
        self._table_spec_or_raise()
        return pd.read_parquet(Path(self.directory) / TABLE_FILE)

    def _table_spec_or_raise(self) -> Any:
        spec = self.table_spec
        if spec is None:
            raise BatchStateError(
                f"Batch {self.id} was not made from a table (from_table): use get_results() or "
                "results_table() instead."
            )
        return spec

    # -- pilot, then the rest ---------------------------------------------------------------------------

    def rest(self, **kw: Any) -> Any:
        """A new batch (not started) of the rows this pilot did not send; its results table holds every row,
        the pilot's answers included. BatchStateError if there is no rest, or it was already made."""
        from langbatch_core.tables._blocks import ParquetBlocks

        self._state.check_access("make the rest of")
        spec = self._table_spec_or_raise()
        if spec.rest_id or spec.rows[1] >= self.table_rows() or spec.pilot_id:
            made = f" (it is {spec.rest_id})" if spec.rest_id else ""
            raise BatchStateError(f"Batch {self.id} has no rows left to send{made}.")
        rest_spec = replace(spec, pilot_id=self.id)
        name = self.name
        defaults = {"storage": self.storage, "connection": self.connection, "name": name and f"{name} (rest)"}
        copy = ParquetBlocks(Path(self.directory) / TABLE_FILE, spec.source or "the table")
        rest = type(self)._from_source(copy, rest_spec, {**defaults, **kw}, (spec.rows[1], None), {})
        _write_spec(Path(self.directory), replace(spec, rest_id=rest.id))
        return rest

    def table_rows(self) -> int:
        """How many rows the batch's table has (read from its Parquet copy's footer, not the rows)."""
        import pyarrow.parquet as pq

        self._table_spec_or_raise()
        return pq.ParquetFile(Path(self.directory) / TABLE_FILE).metadata.num_rows

    # -- results back onto the rows -----------------------------------------------------------------------

    def get_results_table(self, refresh: bool = True) -> Any:
        """The user's table (original order, columns and types) with the answers joined back: ``answer``,
        one typed column per schema field and ``schema_error``, ``status``, ``error_code``,
        ``error_message``, tokens, ``cost_usd`` (embeddings: ``embedding``). A pilot's table has its rows;
        the rest's has every row. Rows not answered yet have status ``pending`` (or ``not started``).
        ``refresh=False`` reads the files as they are, without asking the provider. Once joined, the table
        is kept in the batch's folder (``.joined.parquet``) and read from there until what it was made
        from changes (the results, the pilot's, a job ending)."""
        self._state.check_access("read the results of")
        spec = self._table_spec_or_raise()
        if refresh and self.record.jobs:
            self.refresh()
        return self._joined_table(spec)

    def _joined_table(self, spec: Any) -> Any:
        """The table kept in the folder if it was made from these very inputs, else joined now and kept."""
        from langbatch_core.tables._cache import read_joined, write_joined

        parts = [self, *([self._other(spec.pilot_id)] if spec.pilot_id else [])]
        key = self._joined_key(spec, parts)  # before any input is read: a change meanwhile makes a new key
        joined = read_joined(self.directory, key)
        if joined is None:
            joined = self._join(spec, parts)
            write_joined(self.directory, joined, key)
        return joined

    def _join(self, spec: Any, parts: list[Any]) -> Any:
        from langbatch_core.tables import custom_ids, join_results

        frame = self.source_table()
        results, vectors = _results_of(parts, spec.kind == "embeddings")
        joined = join_results(
            frame,
            custom_ids(frame, spec.id_column),
            results,
            schema=spec.schema,
            model=spec.model,
            free=self._free(),
            unanswered=self._unanswered(),
            embeddings=vectors,
        )
        first = 0 if spec.pilot_id else spec.rows[0]
        return joined.iloc[first : spec.rows[1]]

    def _joined_key(self, spec: Any, parts: list[Any]) -> bytes:
        from langbatch_core.requests.pricing import price_for
        from langbatch_core.tables._cache import joined_key

        free = self._free()
        return joined_key(
            spec.to_dict(),
            Path(self.directory) / TABLE_FILE,
            [(part.id, part.results_path) for part in parts],
            None if free else price_for(spec.model),
            free,
            self._unanswered(),
        )

    def _results_merged(self) -> None:
        """New results were merged (a refresh, a worker): a chat table is joined and kept now, so that the
        first look at it is fast. An embeddings table (every vector) is joined when asked for; a batch made
        from a request file keeps its results table, as any batch does."""
        spec = self.table_spec
        if spec is None:
            super()._results_merged()
            return
        if spec.kind != "chat":
            return
        try:
            self._joined_table(spec)
        except Exception as exc:  # the results are merged and saved: the table is joined when asked for
            _log.warning("Batch %s: cannot join its results to its table yet (%s).", self.id, exc)

    def _free(self) -> bool:
        return self.connection.kind == "local"

    def _other(self, batch_id: str) -> Any:
        return type(self).load(batch_id, self.storage)

    def _unanswered(self) -> str:
        jobs = self.record.jobs
        if not jobs:
            return "not started"
        return "pending" if any(job.active for job in jobs) else "missing"


def _check_pilot(pilot: Any) -> None:
    if pilot is not None and (not isinstance(pilot, int) or isinstance(pilot, bool) or pilot < 1):
        raise TableError(f"pilot= is a number of rows (1 or more), not {pilot!r}.")


def _results_of(batches: list[Any], embeddings: bool) -> tuple[Any, dict[str, list[float]] | None]:
    import pandas as pd

    from langbatch_core.results import load_results
    from langbatch_core.tables._vectors import read_embeddings

    paths = [b.results_path for b in batches if b.results_path.exists()]
    results = pd.concat([load_results(p) for p in paths], ignore_index=True) if paths else load_results([])
    return results, (read_embeddings(paths) if embeddings else None)


def _new_spec(kind: str, given: dict[str, Any], default_model: str | None) -> Any:
    """The ``TableSpec`` of ``from_table``'s arguments (TableError/SchemaError when they do not fit)."""
    from langbatch_core.tables import TableSpec, load_schema

    if kind == "embeddings" and given["schema"] is not None:
        raise TableError("Embeddings have no answer schema: leave schema= out.")
    if kind == "chat" and not given["template"]:
        raise TableError("A chat batch from a table needs template=, like 'Sentiment of: {{ review }}'.")
    return TableSpec(
        kind=kind,
        template=given["template"],
        system=given["system"] or None,
        schema=load_schema(given["schema"]) if given["schema"] is not None else None,
        id_column=given["id_column"] or None,
        text_column=given["text_column"],
        model=given["model"] or default_model,
        request_kwargs=dict(given["request_kwargs"] or {}),
    )


def _like(cls: Any, like: Any, kind: str, given: dict[str, Any], kw: dict[str, Any]) -> tuple[str, Any, Any]:
    """``from_table``'s arguments filled from the batch ``like`` (or the batch of that id): its id, the
    arguments, the constructor keywords (its store and connection unless given)."""
    from langbatch_core.batch import Batch

    if isinstance(like, Batch):
        batch = like
    elif isinstance(like, str):
        batch = Batch.load(like, kw.get("storage"))
    else:
        raise TableError(f"like= takes a batch made from a table, or its id, not {type(like).__name__}.")
    spec = getattr(batch, "table_spec", None)
    if spec is None:
        raise BatchStateError(f"Batch {batch.id} was not made from a table: like= needs one that was.")
    if spec.kind != kind:
        wanted = "OpenAIEmbeddingBatch" if spec.kind == "embeddings" else "OpenAIChatCompletionBatch"
        raise TableError(
            f"Batch {batch.id} is a {spec.kind} batch: make the new one with {wanted}.from_table."
        )
    remembered = {name: getattr(spec, name) for name in given}
    filled = {name: remembered[name] if value is None else value for name, value in given.items()}
    filled["request_kwargs"] = {**spec.request_kwargs, **(given["request_kwargs"] or {})}
    return batch.id, filled, {"storage": batch.storage, "connection": batch.connection, **kw}


def _temp_file(folder: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix="table-", suffix=suffix, dir=folder)
    os.close(fd)
    return Path(name)


def _keep_table_files(directory: Path, table: Path, spec: Any) -> None:
    try:
        shutil.move(table, directory / TABLE_FILE)
        _write_spec(directory, spec)
    except OSError as exc:
        raise StorageError(f"Cannot write the table's copy in {directory} ({exc.strerror or exc}).") from exc


def _write_spec(directory: Path, spec: Any) -> None:
    temp = directory / (SPEC_FILE + ".tmp")
    temp.write_text(json.dumps(spec.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(temp, directory / SPEC_FILE)
