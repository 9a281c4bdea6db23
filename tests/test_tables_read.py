"""Reading tables: CSV/TSV dialects and encodings, Excel sheets and formulas, Parquet, JSON lines, and the
bad inputs each named by row and column."""

from __future__ import annotations

import pandas as pd
import pytest
import xlsxwriter

from langbatch_core import TableError
from langbatch_core.tables import excel_sheets, read_table


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_csv_with_a_bom_quoted_newlines_and_types(tmp_path):
    path = write(tmp_path / "t.csv", b'\xef\xbb\xbfid,review,stars\n1,"good\nreally",5\n2,bad,\n')
    table = read_table(path)
    assert list(table.frame.columns) == ["id", "review", "stars"]
    assert table.frame.loc[0, "review"] == "good\nreally"
    summary = table.summary()
    assert summary["rows"] == 2
    assert [c["type"] for c in summary["columns"]] == ["integer", "text", "integer"]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_the_delimiter_is_found_from_the_header(tmp_path, delimiter):
    text = delimiter.join(["a", "b"]) + "\n" + delimiter.join(["x,1", "y"]) + "\n"
    table = read_table(write(tmp_path / "t.csv", text.encode()))
    assert table.frame.to_dict("records") == [{"a": "x,1", "b": "y"}]


def test_tsv_by_suffix(tmp_path):
    table = read_table(write(tmp_path / "t.tsv", b"a\tb\n1\t2\n"))
    assert table.frame.to_dict("records") == [{"a": 1, "b": 2}]


def test_latin1_needs_its_encoding_and_reads_with_it(tmp_path):
    path = write(tmp_path / "t.csv", "name,city\nZoë,Köln\n".encode("latin-1"))
    says = r"not UTF-8 .*row 1, column 'name'.*else latin-1 \(Encoding on the dashboard's page, --encoding in"
    with pytest.raises(TableError, match=says) as caught:
        read_table(path)
    assert caught.value.issues[0].row == 1
    table = read_table(path, encoding="latin-1")
    assert table.frame.to_dict("records") == [{"name": "Zoë", "city": "Köln"}]


def test_ragged_rows_are_named(tmp_path):
    path = write(tmp_path / "t.csv", b"a,b\n1,2\n3,4,5\n6,7\n8\n")
    with pytest.raises(TableError, match=r"row 2 \(line 3\) has 3 cells where the header has 2") as caught:
        read_table(path)
    assert [(i.row, i.column) for i in caught.value.issues] == [(2, "b"), (4, "b")]


def test_a_header_without_rows_is_an_error(tmp_path):
    with pytest.raises(TableError, match="no rows under its header"):
        read_table(write(tmp_path / "t.csv", b"a,b\n"))


def test_a_large_cell_is_a_warning_naming_row_and_column(tmp_path):
    big = "x" * 1_000_000
    table = read_table(write(tmp_path / "t.csv", f"id,text\n1,short\n2,{big}\n".encode()))
    assert len(table.frame.loc[1, "text"]) == 1_000_000
    (issue,) = table.issues
    assert (issue.row, issue.column, issue.severity, issue.code) == (2, "text", "warning", "large_cell")


def _workbook(path, sheets):
    with xlsxwriter.Workbook(path) as book:
        for name, rows in sheets.items():
            sheet = book.add_worksheet(name)
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    if isinstance(value, str) and value.startswith("="):
                        sheet.write_formula(r, c, value, None, 3)
                    elif value is not None:
                        sheet.write(r, c, value)
    return path


def test_excel_sheets_types_and_formula_cells(tmp_path):
    path = _workbook(
        tmp_path / "book.xlsx",
        {"Notes": [["x"], ["y"]], "Data": [["id", "text", "n"], [1, "a", 2], [2, None, "=1+2"]]},
    )
    assert excel_sheets(path) == ["Notes", "Data"]
    assert read_table(path).sheet == "Notes"  # the first sheet unless one is chosen
    table = read_table(path, sheet="Data")
    assert table.frame["id"].tolist() == [1, 2] and str(table.frame["id"].dtype) == "Int64"
    assert pd.isna(table.frame.loc[1, "text"])
    (issue,) = table.issues
    assert (issue.code, issue.row, issue.column) == ("formula_cell", 2, "n")
    assert "C3" in issue.message


def test_an_excel_sheet_with_no_rows_or_a_missing_sheet(tmp_path):
    path = _workbook(tmp_path / "book.xlsx", {"Data": [["id", "text"]], "Blank": []})
    with pytest.raises(TableError, match=r"sheet 'Data' of book\.xlsx has no rows"):
        read_table(path, sheet="Data")
    with pytest.raises(TableError, match="no sheet 'Nope'; its sheets: 'Data', 'Blank'"):
        read_table(path, sheet="Nope")


def test_parquet_and_json_lines(tmp_path):
    frame = pd.DataFrame({"id": ["a", "b"], "score": [0.5, 1.5]})
    frame.to_parquet(tmp_path / "t.parquet")
    assert read_table(tmp_path / "t.parquet").frame.equals(frame)
    path = write(tmp_path / "t.jsonl", b'{"id": "a", "n": 1}\n\n{"id": "b", "n": 2}\n')
    assert read_table(path).frame.to_dict("records") == [{"id": "a", "n": 1}, {"id": "b", "n": 2}]
    with pytest.raises(TableError, match="line 2 is not a record"):
        read_table(write(tmp_path / "bad.jsonl", b'{"id": 1}\n[1, 2]\n'))


def test_an_unknown_suffix_or_missing_file(tmp_path):
    with pytest.raises(TableError, match="reads tables from"):
        read_table(write(tmp_path / "t.doc", b"x"))
    with pytest.raises(TableError, match="is not a file"):
        read_table(tmp_path / "nope.csv")


def test_a_late_cell_of_another_kind_makes_the_column_text_and_na_is_kept(tmp_path):
    rows = "".join(f"{n},x\n" for n in range(60_000))  # more than the first block the types are guessed from
    table = read_table(write(tmp_path / "t.csv", f"code,b\n{rows}N/A,\n".encode()))
    assert table.frame["code"].iloc[-1] == "N/A" and table.frame["code"].iloc[0] == "0"
    assert pd.isna(table.frame["b"].iloc[-1])
