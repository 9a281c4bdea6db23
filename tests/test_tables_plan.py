"""The request plan of a table: rendered and encoded a chunk of rows at a time (never every prompt in memory),
written whole or by a range of rows, its row numbers right across chunks, its memory near the CSV's size."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import orjson
import pandas as pd
import pytest

from langbatch_core.errors import TableError, TemplateError
from langbatch_core.tables import TableSpec, plan_requests, read_table

ROWS = 9_001  # more than two chunks of rows


def frame(rows: int = ROWS) -> pd.DataFrame:
    return pd.DataFrame(
        {"id": [f" K{n} " for n in range(rows)], "review": [f"review {n}" for n in range(rows)]}
    )


def test_the_plan_writes_every_row_or_a_range_as_the_same_lines(tmp_path):
    plan = plan_requests(
        read_table(frame()), TableSpec(template="Say: {{ review }}", id_column="id", model="m")
    )
    whole, part = tmp_path / "all.jsonl", tmp_path / "part.jsonl"
    assert plan.write(whole) == ROWS == len(plan)
    lines = whole.read_bytes().splitlines(keepends=True)
    first = orjson.loads(lines[0])
    assert first["custom_id"] == "K0" and first["body"]["messages"][0]["content"] == "Say: review 0"
    last = orjson.loads(lines[-1])
    assert last["custom_id"] == f"K{ROWS - 1}" and last["body"]["messages"][0]["content"].endswith(
        str(ROWS - 1)
    )
    assert plan.write(part, range(3_999, 8_002)) == 4_003
    assert part.read_bytes() == b"".join(lines[3_999:8_002])
    assert plan.first_requests(2) == [orjson.loads(line) for line in lines[:2]]
    with pytest.raises(ValueError, match="consecutive"):
        plan.write(part, range(0, 10, 2))


def test_rows_that_fail_are_named_by_their_row_across_chunks():
    table = frame()
    table.loc[8_500, "review"] = None
    with pytest.raises(TableError, match="row\\(s\\) 8501"):
        plan_requests(read_table(table), TableSpec(template="{{ review }}"))
    with pytest.raises(TemplateError, match="fails on row 8501"):
        plan_requests(read_table(table), TableSpec(template="{{ review.upper() }}"))


def test_ids_are_checked_by_row_number_and_row_numbers_are_the_default(tmp_path):
    table = frame()
    plan = plan_requests(read_table(table), TableSpec(template="{{ review }}"))
    assert [r["custom_id"] for r in plan.first_requests(2)] == ["row-1", "row-2"]
    table.loc[7_000, "id"] = " K3 "
    with pytest.raises(TableError, match="'K3' is on row 4 and row 7001"):
        plan_requests(read_table(table), TableSpec(template="{{ review }}", id_column="id"))


def test_a_csv_becomes_a_request_file_in_about_twice_its_size_of_memory(tmp_path):
    # every prompt and every cell kept as a Python string made it about 4x here (6x on the bench)
    csv, out = tmp_path / "reviews.csv", tmp_path / "requests.jsonl"
    with csv.open("w") as text:
        text.write("id,product,review\n")
        text.writelines(
            f'R{n},"Kettle {n % 50}","{"the delivery was late but it works " * 6}"\n' for n in range(60_000)
        )
    code = textwrap.dedent(f"""
        import resource
        import pandas, pyarrow.csv, orjson, jinja2
        from langbatch_core.tables import TableSpec, plan_requests, read_table
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        table = read_table({str(csv)!r})
        spec = TableSpec(template="Review of {{{{ product }}}}: {{{{ review }}}}", id_column="id")
        plan = plan_requests(table, spec)
        plan.write({str(out)!r})
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    added = int(done.stdout.strip())
    print(f"added {added / csv.stat().st_size:.2f}x the CSV")
    assert added <= 3 * csv.stat().st_size, f"{added / csv.stat().st_size:.1f}x the CSV"
    assert len(out.read_bytes().splitlines()) == 60_000
