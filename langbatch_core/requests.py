"""Request files: strict streaming validation, the split plan, and the job files.

A request file is OpenAI batch JSONL: one ``{"custom_id", "method": "POST", "url", "body"}`` object per
line. ``validate_file`` reads it once, in large binary blocks, and reports every problem as an ``Issue``
(line, code, message, param) like OpenAI's ``errors.data``, plus what a user needs before starting: request
count, model, token and cost estimate, and how the file splits into jobs under the provider's limits.

    report = validate_file("requests.jsonl")
    report.raise_for_errors()              # InvalidRequestsError listing the issues
    paths = write_job_files("requests.jsonl", report.jobs, "jobs/")

Lines are read as strictly as the providers read them (``read_json``, which the local engine uses too), in
bounded memory: a line over ``max_line_bytes`` is reported and skipped, a path that is not a regular file is
refused. ``capabilities`` adds what the connection's model refuses (``Provider.capabilities``).

Speed: chat lines are decoded a block at a time by a typed msgspec decoder (``_request_fast``,
``_request_scan``); only lines it rejects go through the detailed checker (``_request_rules``) that names
each problem. Memory stays bounded: one block of lines and the set of custom_ids, never the whole file as
Python objects. One process, one pass: ``copy_to`` writes the copy a batch keeps from the very blocks the
check reads, so the file is never read twice.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langbatch_core._request_reader import (
    BOM,
    MAX_LINE_BYTES,
    BlockReader,
    CopyingReader,
    JSONError,
    open_regular,
    read_json,
)
from langbatch_core._request_report import Capabilities, Issue, JobPlan, Limits, ValidationReport
from langbatch_core._request_rules import ENDPOINTS
from langbatch_core._request_scan import Scan
from langbatch_core.errors import InvalidRequestsError, StorageError

__all__ = [
    "BOM",
    "ENDPOINTS",
    "MAX_LINE_BYTES",
    "SAMPLES",
    "Capabilities",
    "Issue",
    "JobPlan",
    "Limits",
    "ValidationReport",
    "iter_requests",
    "read_json",
    "sample_file",
    "validate_file",
    "write_job_files",
]

SAMPLES = Path(__file__).resolve().parent / "samples"  # small valid files for newcomers


def validate_file(
    path: str | os.PathLike[str],
    *,
    endpoint: str | None = None,
    limits: Limits | None = None,
    max_issues: int = 1000,
    token_sample: int = 0,
    capabilities: Capabilities | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    copy_to: str | os.PathLike[str] | None = None,
) -> ValidationReport:
    """Checks a request file line by line and reports every problem, the estimate and the split plan.

    ``endpoint`` is the batch's endpoint (default: the url of the first request). ``token_sample`` counts
    that many requests exactly with an offline tokenizer to calibrate the token estimate (see ``tokens``).
    ``capabilities`` (a provider's ``capabilities``) also reports what the connection's model refuses; a line
    longer than ``max_line_bytes`` is reported (``line_too_long``) and skipped unread. ``copy_to``: a path
    that gets a byte-for-byte copy of a valid file, written while the file is checked (one read) into a
    temporary file beside it and renamed when the file has no error; nothing is left there otherwise
    (StorageError when it cannot be written). InvalidRequestsError when the path is not a readable regular
    file.

        report = validate_file("requests.jsonl", endpoint="/v1/chat/completions")
    """
    if endpoint is not None and endpoint not in ENDPOINTS:
        raise InvalidRequestsError(
            f"endpoint {endpoint!r} is not a batch endpoint; use one of {sorted(ENDPOINTS)}."
        )
    path = Path(path)
    scan = Scan(path, endpoint, limits or Limits(), max_issues, token_sample, capabilities, max_line_bytes)
    with open_regular(path) as handle:
        if copy_to is None:
            scan.scan(BlockReader(handle, max_line=max_line_bytes))
            return scan.report(os.fstat(handle.fileno()).st_size)
        try:
            with _Staged(Path(copy_to)) as copy:
                scan.scan(BlockReader(CopyingReader(handle, copy.handle), max_line=max_line_bytes))
                report = scan.report(os.fstat(handle.fileno()).st_size)
                if report.ok:
                    copy.commit()
        except OSError as exc:
            raise StorageError(
                f"Cannot write the copy of the request file to {copy_to} ({exc.strerror or exc}): check that "
                "its folder exists, is writable and has room."
            ) from exc
    return report


class _Staged:
    """A new file for ``target``, written as a temporary file beside it: ``commit()`` renames it onto
    ``target``; leaving the ``with`` without a commit (an error, an invalid file) removes it."""

    def __init__(self, target: Path) -> None:
        self.target = target
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        self.handle, self.temp = os.fdopen(fd, "wb"), Path(temp)

    def commit(self) -> None:
        self.handle.close()
        os.replace(self.temp, self.target)

    def __enter__(self) -> _Staged:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()
        self.temp.unlink(missing_ok=True)


def sample_file(kind: str = "chat") -> Path:
    """A small bundled request file to try LangBatch with: ``"chat"`` (12 requests) or ``"embeddings"`` (8).

    ``validate_file(sample_file("chat")).ok  # True``
    """
    path = SAMPLES / f"{kind}.jsonl"
    if not path.is_file():
        names = sorted(p.stem for p in SAMPLES.glob("*.jsonl"))
        raise InvalidRequestsError(f"No sample named {kind!r}; the samples are {', '.join(names)}.")
    return path


def _clean_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, memoryview]]:
    """(line number, line) of the non-blank lines, without BOM, CR or LF (valid until the next line)."""
    with open_regular(path) as handle:
        for line, raw in BlockReader(handle).lines():
            if raw and (raw[0] not in b" \t" or raw.tobytes().strip()):
                yield line, raw


def iter_requests(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The parsed requests of a valid file, in order (blank lines skipped).

    for request in iter_requests("requests.jsonl"):
        print(request["custom_id"])
    """
    for line, raw in _clean_lines(path):
        try:
            request = read_json(raw)
        except JSONError as exc:
            raise InvalidRequestsError(
                f"{path}, line {line}: not valid JSON ({exc}); run validate_file on it to see every problem.",
                [Issue(line, "invalid_json", str(exc))],
            ) from exc
        if not isinstance(request, dict):
            raise InvalidRequestsError(
                f"{path}, line {line}: not a JSON object; run validate_file on it to see every problem.",
                [Issue(line, "not_object", "Each line must be a JSON object.")],
            )
        yield request


def write_job_files(
    path: str | os.PathLike[str], jobs: list[JobPlan], out_dir: str | os.PathLike[str]
) -> list[Path]:
    """Writes one JSONL file per planned job (``job-001.jsonl``, …) into ``out_dir``; returns their paths.

    Each file holds the job's lines with LF endings, no BOM and no blank lines; each is written to a temporary
    file and renamed, so no half-written job file is ever left.

        paths = write_job_files("requests.jsonl", report.jobs, "jobs/")
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ordered = sorted(jobs, key=lambda job: job.first_line)
    targets = [out / f"job-{index:03d}.jsonl" for index in range(1, len(ordered) + 1)]
    lines = _clean_lines(path)
    pending = next(lines, None)
    for job, target in zip(ordered, targets, strict=True):
        with _Staged(target) as staged:
            while pending is not None and pending[0] <= job.last_line:
                if pending[0] >= job.first_line:
                    staged.handle.write(pending[1])
                    staged.handle.write(b"\n")
                pending = next(lines, None)
            staged.commit()
    return targets
