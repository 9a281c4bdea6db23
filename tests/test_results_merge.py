"""Merging several jobs' result files: the latest result wins, a success is never lost."""

from __future__ import annotations

from support.data_results import never_run, rejected, success, write_jsonl

from langbatch_core.results import iter_results, load_results, merge_results


def merged(path):
    return {result["custom_id"]: result for _, result in iter_results(path)}


def test_latest_result_wins_and_successes_are_kept(tmp_path):
    first = write_jsonl(
        tmp_path / "job1.jsonl", [success("a", "old"), rejected("b"), never_run("c"), success("d")]
    )
    second = write_jsonl(
        tmp_path / "job2.jsonl",
        [success("a", "new"), success("b", "fixed"), never_run("c", "batch_cancelled")],
    )
    third = write_jsonl(tmp_path / "job3.jsonl", [rejected("a", 500), rejected("d", 429)])
    out = tmp_path / "results.jsonl"
    report = merge_results([first, second, third], out)
    results = merged(out)
    assert results["a"]["response"]["body"]["choices"][0]["message"]["content"] == "new"  # later success wins
    assert results["b"]["response"]["status_code"] == 200  # a retry's success replaces the failure
    assert results["c"]["error"]["code"] == "batch_cancelled"  # latest failure replaces older failure
    assert results["d"]["response"]["status_code"] == 200  # never replaced by a later failure
    assert report.written == 4
    assert report.counts == {"succeeded": 3, "cancelled": 1}
    assert report.kept_success == 2
    assert report.replaced == 3


def test_merge_output_is_openai_result_jsonl_in_file_order(tmp_path):
    first = write_jsonl(tmp_path / "a.jsonl", [success("x"), success("y")])
    out = tmp_path / "sub" / "results.jsonl"
    merge_results([first], out)
    assert out.read_text() == first.read_text()
    assert not list(out.parent.glob(".*.tmp"))


def test_unknown_ids_and_bad_lines_are_reported_with_lines(tmp_path):
    job = write_jsonl(
        tmp_path / "job.jsonl", [success("a"), success("stranger"), "{oops", {"response": None}, success("b")]
    )
    report = merge_results([job], tmp_path / "out.jsonl", custom_ids={"a", "b", "c"})
    assert set(merged(tmp_path / "out.jsonl")) == {"a", "b"}
    assert report.unknown == [(str(job), 2, "stranger")] and report.unknown_count == 1
    assert report.bad_lines == [(str(job), 3, "not a JSON result object"), (str(job), 4, "no custom_id")]
    assert report.bad_count == 2
    assert report.missing == 1  # "c" has no result at all
    assert report.to_dict()["output"] == str(tmp_path / "out.jsonl")


def test_load_results_merges_several_files_with_the_same_rules(tmp_path):
    first = write_jsonl(tmp_path / "job1.jsonl", [success("a"), rejected("b"), never_run("c")])
    second = write_jsonl(
        tmp_path / "job2.jsonl", [rejected("a"), success("b"), never_run("c", "batch_cancelled")]
    )
    table = load_results([first, second]).set_index("custom_id")
    assert table["status"].to_dict() == {"a": "succeeded", "b": "succeeded", "c": "cancelled"}
    assert table.loc["a", "line"] == 1 and table.loc["b", "line"] == 2


def test_duplicates_inside_one_file_follow_the_rules(tmp_path):
    path = write_jsonl(tmp_path / "o.jsonl", [rejected("a"), success("a", "yes"), rejected("a", 500)])
    table = load_results(path)
    assert len(table) == 1
    assert table.iloc[0]["answer"] == "yes"
