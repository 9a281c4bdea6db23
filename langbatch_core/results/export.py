"""Writing the results table (or any filtered part of it) as CSV, JSONL or Parquet."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from langbatch_core.errors import ResultsError

EXPORT_FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# A spreadsheet runs a CSV cell that starts with one of these as a formula; model answers and prompts are
# untrusted text, so such cells get a leading apostrophe (OWASP's advice for CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_results(
    df: pd.DataFrame, path: str | os.PathLike[str], format: str | None = None, *, escape_formulas: bool = True
) -> Path:
    """Writes the (filtered) table as CSV, JSONL or Parquet, chosen by ``format`` or the file suffix.

    Written to a temporary file and renamed, so a failed export leaves nothing half-written. In CSV, text
    cells that a spreadsheet would run as a formula (``=…``, ``+…``, ``@…``, ``-…``) start with ``'`` unless
    ``escape_formulas=False``.

        export_results(table[table.status == "failed"], "failed.parquet")
    """
    target = Path(path)
    kind = (format or EXPORT_FORMATS.get(target.suffix.lower(), "")).lower().lstrip(".")
    if kind not in ("csv", "jsonl", "parquet"):
        raise ResultsError(
            f"Cannot export to {target.name!r}: say format='csv', 'jsonl' or 'parquet', or use one of the "
            f"suffixes {', '.join(EXPORT_FORMATS)}."
        )
    if not target.parent.is_dir():
        raise ResultsError(
            f"Cannot export to {target}: the folder {target.parent} does not exist; create it first."
        )
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        _write(df, temp, kind, escape_formulas)
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes 0600; an export is an ordinary user file
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


def _write(df: pd.DataFrame, temp: str, kind: str, escape_formulas: bool) -> None:
    if kind == "csv":
        (_escape_formulas(df) if escape_formulas else df).to_csv(temp, index=False)
    elif kind == "jsonl":
        df.to_json(temp, orient="records", lines=True, force_ascii=False)
    else:
        df.to_parquet(temp, index=False)


def _escape_formulas(df: pd.DataFrame) -> pd.DataFrame:
    text_columns = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if not text_columns:
        return df
    escaped = df.copy(deep=False)
    for column in text_columns:
        values = df[column]
        risky = values.astype("string").str.startswith(_FORMULA_STARTS).fillna(False).astype(bool)
        if risky.any():
            escaped[column] = values.where(~risky, "'" + values.astype("string"))
    return escaped


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
