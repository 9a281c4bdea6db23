"""What the table pages share (New batch from a table, its results, Compare): uploads, cached reads, the
fields editor's rows, filters on answer fields, charts and downloads of the joined table.

    path = table_support.save_table_upload(upload.name, upload.getvalue())
    table = table_support.read(path, sheet, encoding)
    view = table_support.filter_fields(joined, spec, choices)
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import common
import pandas as pd
import streamlit as st

from langbatch_core.errors import TableError
from langbatch_core.storage.files import write_atomic
from langbatch_core.tables import FIELD_TYPES, read_table, table_format

if TYPE_CHECKING:
    import altair as alt

ENCODINGS = ["utf-8", "latin-1", "cp1252", "utf-16"]
FIELD_COLUMNS = ["name", "type", "values", "description", "required"]
STARTER_FIELDS = [{"name": "sentiment", "type": "enum", "values": "positive, negative, neutral",
                   "description": "", "required": True}]  # fmt: skip
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def save_table_upload(name: str, data: bytes) -> Path:
    """An uploaded table stored under ``<data>/uploads/<content hash>/<safe name>`` (its suffix kept)."""
    if table_format(name) is None:
        raise TableError(f"{name!r} is not a table: upload a .csv, .tsv, .xlsx, .parquet or .jsonl file.")
    if len(data) > common.MAX_UPLOAD_BYTES:
        raise TableError(f"{name!r} is {len(data) / 1e6:.0f} MB: upload at most 200 MB.")
    base = _SAFE.sub("_", Path(name.replace("\\", "/")).name).strip("._") or "table.csv"
    uploads = (common.data_dir() / "uploads").resolve()
    target = (uploads / hashlib.sha256(data).hexdigest()[:16] / base[-120:]).resolve()
    if not target.is_relative_to(uploads):
        raise TableError(f"{name!r} is not an acceptable file name.")
    if not (target.exists() and target.stat().st_size == len(data)):
        write_atomic(target, data)
    return target


@st.cache_resource(show_spinner="Reading the table…", max_entries=4)
def _read(key: tuple[str, int, int], sheet: str | None, encoding: str | None) -> Any:
    return read_table(key[0], sheet=sheet, encoding=encoding)


def read(path: Path, sheet: str | None, encoding: str | None) -> Any:
    """The table at ``path`` (cached until the file changes): a ``langbatch_core.tables.Table``."""
    return _read(common.file_key(path), sheet, encoding)


def types_table(table: Any) -> pd.DataFrame:
    return pd.DataFrame(table.summary()["columns"]).rename(columns={"name": "column"})


def issues_frame(issues: list[Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"row": i.row, "column": i.column, "severity": i.severity, "message": i.message} for i in issues]
    )


def fields_from_editor(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The fields the editor's rows describe (rows without a name are left out)."""
    fields = []
    for row in rows.to_dict("records"):
        name = str(row.get("name") or "").strip()
        if not name:
            continue
        values = str(row.get("values") or "")
        fields.append(
            {
                "name": name,
                "type": row.get("type") or "string",
                "values": [v.strip() for v in values.split(",") if v.strip()],
                "description": str(row.get("description") or ""),
                "required": bool(row.get("required")) if row.get("required") is not None else True,
            }
        )
    return fields


def field_editor_config() -> dict[str, Any]:
    return {
        "name": st.column_config.TextColumn("name", required=True),
        "type": st.column_config.SelectboxColumn("type", options=list(FIELD_TYPES), default="string"),
        "values": st.column_config.TextColumn("values (enum, comma separated)"),
        "description": st.column_config.TextColumn("description", width="large"),
        "required": st.column_config.CheckboxColumn("required", default=True),
    }


# ---------------------------------------------------------------- the joined table


def field_column(joined: pd.DataFrame, name: str) -> str:
    names = joined.attrs.get("answer_columns", {})
    return names.get(f"field:{name}") or names.get(name) or name


def field_filter(joined: pd.DataFrame, name: str, where: Any, key: str) -> Any:
    """A filter widget fitting the field's values: a multiselect of values, or a range of numbers."""
    series = joined[field_column(joined, name)]
    present = series.dropna()
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        if present.empty or present.min() == present.max():
            return None
        low, high = float(present.min()), float(present.max())
        chosen = where.slider(name, low, high, (low, high), key=key)
        return None if tuple(chosen) == (low, high) else ("range", tuple(chosen))
    values = sorted({str(v) for v in present.unique()})
    if not values or len(values) > 50:
        return None
    chosen = where.multiselect(name, values, key=key)
    return ("values", chosen) if chosen else None


def apply_field_filters(joined: pd.DataFrame, filters: dict[str, Any]) -> pd.DataFrame:
    mask = pd.Series(True, index=joined.index)
    for name, chosen in filters.items():
        if chosen is None:
            continue
        series = joined[field_column(joined, name)]
        if chosen[0] == "range":
            low, high = chosen[1]
            mask &= series.between(low, high).fillna(False).astype(bool)
        else:
            mask &= series.astype("string").isin(chosen[1]).fillna(False).astype(bool)
    return joined[mask]


def distribution_chart(view: pd.DataFrame, column: str) -> alt.Chart:
    """Bars of a field's values (counts), or a histogram for numbers."""
    import altair as alt

    series = view[column].dropna()
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        data = pd.DataFrame({column: series.astype(float)})
        return (
            alt.Chart(data, height=220)
            .mark_bar()
            .encode(
                alt.X(f"{column}:Q", bin=alt.Bin(maxbins=30), title=column), alt.Y("count():Q", title="rows")
            )
        )
    counts = series.astype("string").value_counts().head(30).rename_axis(column).reset_index(name="rows")
    return (
        alt.Chart(counts, height=max(80, 24 * len(counts)))
        .mark_bar()
        .encode(alt.Y(f"{column}:N", sort="-x", title=column), alt.X("rows:Q", title="rows"))
    )


def is_table_batch(record: Any) -> bool:
    return (common.storage().batch_dir(record.id) / "table.json").exists()


def request_file(plan: Any) -> Path:
    """The plan's request file under ``<data>/tmp/`` (written once per content: the reports are cached)."""
    import tempfile

    folder = common.data_dir() / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".jsonl", delete=False) as temp:
        written = Path(temp.name)
    try:
        plan.write(written)
        digest = hashlib.sha256(written.read_bytes()).hexdigest()[:16]
        target = folder / f"table-{digest}.jsonl"
        if target.exists():
            written.unlink()
        else:
            written.replace(target)
    except BaseException:
        written.unlink(missing_ok=True)
        raise
    return target


def export_bytes(view: pd.DataFrame, suffix: str) -> bytes:
    """The rows of ``view`` as a .csv, .xlsx or .parquet file's bytes (``export_table``: formulas escaped)."""
    import tempfile

    from langbatch_core.tables import export_table

    with tempfile.TemporaryDirectory(prefix="langbatch-export-") as tmp:
        return export_table(view, Path(tmp) / f"answers{suffix}").read_bytes()


@st.cache_resource(show_spinner="Joining the answers to your rows…", max_entries=4)
def _joined(batch_id: str, keys: tuple[Any, ...], _batch: Any) -> pd.DataFrame:
    return _batch.get_results_table(refresh=False)  # the table kept on disk, unless the files changed


def joined_table(batch: Any) -> pd.DataFrame:
    """The batch's joined table, read from its files (no provider call), cached until they change."""
    spec = batch.table_spec
    ids = [batch.id, *([spec.pilot_id] if spec.pilot_id else [])]
    paths = [common.storage().batch_dir(i) / "results.jsonl" for i in ids]
    keys = tuple(common.file_key(p) if p.exists() else None for p in paths)
    return _joined(batch.id, (keys, batch.record.version, batch.record.updated_at), batch)


def run_again(batch_id: str) -> None:
    """Opens New batch from a table filled in from a table batch (waiting for a new file)."""
    st.session_state["nt_like_request"] = batch_id
    st.switch_page("views/new_table.py")


def filled_in_like() -> dict[str, Any] | None:
    """On New batch from a table, before its widgets: fills them from the batch ``run_again`` asked for
    (template, system prompt, schema, model, parameters; the id column once a file is read). What it
    fills in from, or None."""
    import json

    batch_id = st.session_state.pop("nt_like_request", None)
    if batch_id:
        spec = common.load_batch(batch_id).table_spec
        kwargs = dict(spec.request_kwargs)
        temperature, max_tokens = kwargs.pop("temperature", None), kwargs.pop("max_tokens", None)
        values = {
            "nt_kind": "Embeddings" if spec.kind == "embeddings" else "Chat completions",
            "nt_model": spec.model or "",
            "nt_template": spec.template or "",
            "nt_system": spec.system or "",
            "nt_temperature": None if temperature is None else float(temperature),
            "nt_max_tokens": None if max_tokens is None else int(max_tokens),
            "nt_answer": "JSON Schema" if spec.schema else "Free text",
            "nt_schema": json.dumps(spec.schema, indent=2) if spec.schema else "",
        }
        for key, value in values.items():
            st.session_state[key] = st.session_state[f"_held_{key}"] = value
        st.session_state["nt_like"] = {"id": batch_id, "id_column": spec.id_column,
                                       "text_column": spec.text_column, "other_kwargs": kwargs}  # fmt: skip
        st.session_state.pop("nt_like_for", None)
    return st.session_state.get("nt_like")


def pick_like_columns(like: dict[str, Any], path: Path, columns: list[str]) -> None:
    """Once per table: the id (and text) column of the batch run again, when this table has it."""
    if st.session_state.get("nt_like_for") == str(path):
        return
    st.session_state["nt_like_for"] = str(path)
    wanted = like["id_column"]
    st.session_state["nt_id"] = wanted if wanted in columns else "row number"
    if like["text_column"] in columns:
        st.session_state["nt_text_column"] = like["text_column"]


def hold(key: str, default: Any = None) -> None:
    """Keeps a form widget's value across a rerun cut short before the widget was drawn (Streamlit then
    forgets it): call it just before drawing the widget, which then takes no ``value=``."""
    shadow = f"_held_{key}"
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(shadow, default)
    st.session_state[shadow] = st.session_state[key]
