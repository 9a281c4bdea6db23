"""Several jobs' result files merged into one: the latest result per custom_id, a success never replaced.

merge_results(["job1/output.jsonl", "job1/errors.jsonl", "job2/output.jsonl"], "results.jsonl")
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langbatch_core.results.lines import MAX_LISTED, PathLike, result_lines
from langbatch_core.results.outcomes import outcome_of


@dataclass
class MergeReport:
    """What ``merge_results`` wrote and what it left out (every left-out line is named)."""

    output: Path
    written: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # status -> results written
    replaced: int = 0  # older results superseded by a later one for the same custom_id
    kept_success: int = 0  # later failures ignored because a success was already there
    unknown: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, custom_id) not asked for
    unknown_count: int = 0
    bad_lines: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, why)
    bad_count: int = 0
    missing: int = 0  # asked-for custom_ids with no result at all (only with custom_ids=)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "output": str(self.output)}


def merge_results(
    paths: Sequence[PathLike], out: PathLike, custom_ids: set[str] | None = None
) -> MergeReport:
    """Merges several jobs' result files (oldest job first) into one OpenAI result JSONL at ``out``.

    The latest result per custom_id wins, but a success is never replaced by a later failure. With
    ``custom_ids``, results for other ids are left out and listed in ``report.unknown``. Lines that are not
    result objects are listed in ``report.bad_lines``. ``out`` is written to a temporary file and renamed.

        report = merge_results([old_output, old_errors, retry_output], "results.jsonl", ids)
    """
    report = MergeReport(Path(out))
    chosen: dict[str, tuple[int, int, bool]] = {}  # custom_id -> (file index, line, succeeded)
    for index, path in enumerate(paths):
        for line, raw in result_lines(path):
            _consider(report, chosen, custom_ids, index, str(path), line, raw)
    keep: list[set[int]] = [set() for _ in paths]
    for index, line, _ in chosen.values():
        keep[index].add(line)
    _write_chosen(paths, keep, Path(out), report)
    if custom_ids is not None:
        report.missing = len(custom_ids - chosen.keys())
    return report


def _consider(
    report: MergeReport,
    chosen: dict[str, tuple[int, int, bool]],
    custom_ids: set[str] | None,
    index: int,
    name: str,
    line: int,
    raw: Any,
) -> None:
    outcome = outcome_of(raw)
    if outcome is None or outcome.custom_id is None:
        why = "not a JSON result object" if outcome is None else "no custom_id"
        report.bad_count += 1
        if len(report.bad_lines) < MAX_LISTED:
            report.bad_lines.append((name, line, why))
        return
    custom_id, status = outcome.custom_id, outcome.status
    if custom_ids is not None and custom_id not in custom_ids:
        report.unknown_count += 1
        if len(report.unknown) < MAX_LISTED:
            report.unknown.append((name, line, custom_id))
        return
    previous = chosen.get(custom_id)
    succeeded = status == "succeeded"
    if previous is not None:
        if previous[2] and not succeeded:
            report.kept_success += 1
            return
        report.replaced += 1
    chosen[custom_id] = (index, line, succeeded)


def _write_chosen(paths: Sequence[PathLike], keep: list[set[int]], out: Path, report: MergeReport) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            for path, lines in zip(paths, keep, strict=True):
                if not lines:
                    continue
                for line, raw in result_lines(path):
                    if line in lines:
                        handle.write(raw)
                        handle.write(b"\n")
                        status = outcome_of(raw).status  # type: ignore[union-attr]
                        report.counts[status] = report.counts.get(status, 0) + 1
                        report.written += 1
        os.replace(temp, out)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
