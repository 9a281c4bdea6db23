"""A table file made into a batch a block of rows at a time: memory that does not grow with the rows, and
every check of the table path kept across blocks (ids, types, ragged rows, large and empty cells,
encodings), nothing left behind on an error, and every input format giving the same request file."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import orjson
import pandas as pd
import pytest
import xlsxwriter

from langbatch_core import OpenAIChatCompletionBatch, TableError
from langbatch_core.storage import default_storage
from langbatch_core.tables import read_table

ROWS = 24_000  # about 2.6 MB: several 1 MiB groups of blocks
REVIEW = "the delivery was late but it works well " * 2


def csv_rows(rows: int = ROWS, change: dict[int, str] | None = None) -> str:
    """``id,stars,review``; ``change`` replaces whole lines by their 1-based row."""
    lines = [f"R{n},{n % 5 + 1},{REVIEW}{n}\n" for n in range(1, rows + 1)]
    for row, line in (change or {}).items():
        lines[row - 1] = line
    return "id,stars,review\n" + "".join(lines)


def left_behind() -> list[str]:
    data = default_storage().data_dir
    found = [*(data / "batches").glob("*")] if (data / "batches").exists() else []
    found += [*(data / "tmp").glob("*")] if (data / "tmp").exists() else []
    return [path.name for path in found]


def lines_of(batch) -> list[dict]:
    return [orjson.loads(line) for line in batch.requests_path.read_bytes().splitlines()]


def _added_memory(csv, out) -> int:
    code = textwrap.dedent(f"""
        import resource
        from pathlib import Path
        import pandas, pyarrow.csv, pyarrow.parquet, orjson, jinja2
        from langbatch_core.tables import TableSpec, write_requests
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        spec = TableSpec(template="Review of {{{{ product }}}}: {{{{ review }}}}", id_column="id")
        write_requests({str(csv)!r}, spec, Path({str(out)!r}), Path({str(out)!r} + ".parquet"))
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    return int(done.stdout.strip())


def test_memory_does_not_grow_with_the_rows_of_the_csv(tmp_path):
    # holding the table (read_table + plan_requests) grew by more than the CSV's size between these two
    sizes, added = [], []
    for rows in (15_000, 75_000):
        csv = tmp_path / f"reviews-{rows}.csv"
        with csv.open("w") as text:
            text.write("id,product,review\n")
            text.writelines(f'R{n},"Kettle {n % 50}","{REVIEW * 3}"\n' for n in range(rows))
        sizes.append(csv.stat().st_size)
        added.append(_added_memory(csv, tmp_path / f"requests-{rows}.jsonl"))
        assert len((tmp_path / f"requests-{rows}.jsonl").read_bytes().splitlines()) == rows
    growth = (added[1] - added[0]) / (sizes[1] - sizes[0])
    print(f"added {added[0] / 2**20:.1f} and {added[1] / 2**20:.1f} MiB for {sizes[0] / 2**20:.1f} and "
          f"{sizes[1] / 2**20:.1f} MiB of CSV: {growth:.2f} of each further byte")  # fmt: skip
    assert growth < 0.3, f"memory grew by {growth:.2f}x the further CSV bytes"
    assert added[1] <= 2 * sizes[1]


def test_ids_are_unique_across_the_whole_file_and_nothing_is_left_behind(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(csv_rows(change={ROWS - 1: "R2,1,again\n"}))
    with pytest.raises(TableError, match=f"the id 'R2' is on row 2 and row {ROWS - 1}") as caught:
        OpenAIChatCompletionBatch.from_table(path, template="{{ review }}", id_column="id")
    assert (caught.value.issues[0].row, caught.value.issues[0].column) == (ROWS - 1, "id")
    assert left_behind() == []
    path.write_text(csv_rows(change={ROWS: ",1,no id\n"}))
    with pytest.raises(TableError, match=f"empty on row\\(s\\) {ROWS}"):
        OpenAIChatCompletionBatch.from_table(path, template="{{ review }}", id_column="id")
    assert left_behind() == []


def test_a_ragged_row_late_in_the_file_is_named_and_nothing_is_left_behind(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(csv_rows(change={ROWS - 5: "R1,2,3,4\n"}))
    with pytest.raises(TableError, match=f"row {ROWS - 5} .* has 4 cells where the header has 3") as caught:
        OpenAIChatCompletionBatch.from_table(path, template="{{ review }}")
    assert caught.value.issues[0].row == ROWS - 5
    assert left_behind() == []


def test_a_late_cell_of_another_kind_reads_the_column_as_text(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(csv_rows(change={ROWS: f"R{ROWS},five,{REVIEW}\n"}))
    batch = OpenAIChatCompletionBatch.from_table(
        path, template="{{ stars }} stars: {{ review }}", id_column="id"
    )
    lines = lines_of(batch)
    assert len(lines) == ROWS
    assert lines[0]["body"]["messages"][0]["content"].startswith("2 stars: ")
    assert lines[-1]["body"]["messages"][0]["content"].startswith("five stars: ")
    pd.testing.assert_frame_equal(batch.source_table(), read_table(path).frame)


def test_large_and_empty_cells_are_named_by_their_row_in_the_whole_file(tmp_path):
    path = tmp_path / "t.csv"
    big = "x" * 100_001
    path.write_text(
        csv_rows(change={3: "R3,1,\n", ROWS - 2: f"R{ROWS - 2},1,{big}\n", ROWS: f"R{ROWS},1,\n"})
    )
    batch = OpenAIChatCompletionBatch.from_table(path, template="Say: {{ review }}", id_column="id")
    issues = {issue.code: issue for issue in batch.table_issues}
    large = issues["large_cell"]
    assert (large.row, large.column) == (ROWS - 2, "review") and f"row {ROWS - 2}" in large.message
    empty = issues["empty_cells"]
    assert (empty.row, empty.column) == (3, "review") and f"2 row(s) (3, {ROWS})" in empty.message


def test_the_table_copy_keeps_the_types_read_table_gives(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("sku,n,price,ok,note\nA,1,2.5,true,hi\nB,,3.0,false,\nC,3,,true,yo\n")
    batch = OpenAIChatCompletionBatch.from_table(path, template="{{ sku }} {{ n }} {{ price }}")
    copy = batch.source_table()
    pd.testing.assert_frame_equal(copy, read_table(path).frame)
    assert str(copy["n"].dtype) == "Int64"
    assert [line["body"]["messages"][0]["content"] for line in lines_of(batch)] == [
        "A 1 2.5",
        "B  3.0",
        "C 3 ",
    ]


def test_latin1_streams_with_its_encoding(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(csv_rows(200, change={150: "R150,1,café crème\n"}).encode("latin-1"))
    with pytest.raises(TableError, match="row 150, column 'review'"):
        OpenAIChatCompletionBatch.from_table(path, template="{{ review }}")
    path.write_bytes(csv_rows(change={ROWS: f"R{ROWS},1,café\n"}).encode("latin-1"))  # past the first block
    with pytest.raises(TableError, match=f"row {ROWS}, column 'review'"):
        OpenAIChatCompletionBatch.from_table(path, template="{{ review }}")
    assert left_behind() == []
    path.write_bytes(csv_rows(200, change={150: "R150,1,café crème\n"}).encode("latin-1"))
    batch = OpenAIChatCompletionBatch.from_table(path, template="{{ review }}", encoding="latin-1")
    assert lines_of(batch)[149]["body"]["messages"][0]["content"] == "café crème"
    assert left_behind() == [batch.id]


def _workbook(path, rows):
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet("Data")
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                sheet.write(r, c, value)
    return path


@pytest.mark.parametrize("kind", ["csv", "tsv", "xlsx", "parquet", "jsonl", "frame"])
def test_every_input_makes_the_same_request_file_and_pilot_then_rest(tmp_path, kind):
    frame = pd.DataFrame(
        {"sku": [f"S{n}" for n in range(9_000)], "text": [f"text {n}" for n in range(9_000)]}
    )
    source = frame if kind == "frame" else tmp_path / f"t.{kind}"
    if kind == "csv":
        frame.to_csv(source, index=False)
    elif kind == "tsv":
        frame.to_csv(source, index=False, sep="\t")
    elif kind == "xlsx":
        _workbook(source, [list(frame.columns), *frame.values.tolist()])
    elif kind == "parquet":
        frame.to_parquet(source)
    elif kind == "jsonl":
        frame.to_json(source, orient="records", lines=True)
    pilot = OpenAIChatCompletionBatch.from_table(
        source, template="Say {{ text }}", id_column="sku", pilot=4_500
    )
    rest = pilot.rest()
    lines = lines_of(pilot) + lines_of(rest)
    assert [line["custom_id"] for line in lines] == frame["sku"].tolist()
    assert lines[8_999]["body"]["messages"][0]["content"] == "Say text 8999"
    assert rest.table_spec.rows == [4_500, 9_000] and pilot.table_rows() == 9_000
    assert rest.source_table()["text"].tolist() == frame["text"].tolist()


def test_a_cell_of_1_mb_is_read_in_larger_blocks_and_named(tmp_path):
    path = tmp_path / "t.csv"
    huge = "word " * 240_000  # 1.2 MB: longer than a block of the reader
    path.write_text(csv_rows(change={ROWS - 1: f'R{ROWS - 1},1,"{huge}"\n'}))
    batch = OpenAIChatCompletionBatch.from_table(path, template="{{ review }}", id_column="id")
    (large,) = [issue for issue in batch.table_issues if issue.code == "large_cell"]
    assert (large.row, large.column, large.severity) == (ROWS - 1, "review", "warning")
    assert "1,200,000 characters" in large.message
    assert lines_of(batch)[ROWS - 2]["body"]["messages"][0]["content"] == huge
    assert read_table(path).frame["review"].iloc[ROWS - 2] == huge
    path.write_text(csv_rows(change={ROWS - 1: f'R{ROWS - 1},1,"{huge}"\n', ROWS: "R1,2,3,4\n"}))
    with pytest.raises(TableError, match=f"row {ROWS} .* has 4 cells where the header has 3"):
        OpenAIChatCompletionBatch.from_table(path, template="{{ review }}")
