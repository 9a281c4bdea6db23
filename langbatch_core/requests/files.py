"""Request files: strict streaming validation, the split plan, the job files, the custom_ids.

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

Speed: chat lines are decoded a block at a time by a typed msgspec decoder (``requests.fast``,
``requests.scan``); only lines it rejects go through the detailed checker (``requests.rules``) that names
each problem. Memory stays bounded: one block of lines and the set of custom_ids, never the whole file as
Python objects. One process, one pass: ``copy_to`` writes the copy a batch keeps from the very blocks the
check reads, so the file is never read twice.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from langbatch_core.errors import InvalidRequestsError, StorageError
from langbatch_core.jsonl import MAX_LINE_BYTES, BlockReader, CopyingReader, JSONError, read_json
from langbatch_core.requests.report import Capabilities, Issue, JobPlan, Limits, ValidationReport
from langbatch_core.requests.rules import ENDPOINTS
from langbatch_core.requests.scan import Scan

SAMPLES = Path(__file__).resolve().parent.parent / "samples"  # small valid files for newcomers


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


def open_regular(path: str | os.PathLike[str]) -> Any:
    """``path`` opened for unbuffered binary reading; InvalidRequestsError when it is not a regular file
    (a device such as /dev/zero never ends, a pipe may never deliver: neither is a request file)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode  # before open: opening a pipe blocks until a writer comes
        if not stat.S_ISREG(mode):
            raise InvalidRequestsError(
                f"{path} is not a regular file (it is a {_kind_of(mode)}): save the requests in a "
                ".jsonl file and give its path."
            )
        return path.open("rb", buffering=0)
    except (FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError) as exc:
        raise InvalidRequestsError(
            f"Cannot read the request file {path}: {exc.strerror}; check the path."
        ) from exc


def _kind_of(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "pipe"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    )
    return next((name for test, name in kinds if test(mode)), "special file")


def sample_file(kind: str = "chat") -> Path:
    """A small bundled request file to try LangBatch with: ``"chat"`` (12 requests) or ``"embeddings"`` (8).

    ``validate_file(sample_file("chat")).ok  # True``
    """
    path = SAMPLES / f"{kind}.jsonl"
    if not path.is_file():
        names = sorted(p.stem for p in SAMPLES.glob("*.jsonl"))
        raise InvalidRequestsError(f"No sample named {kind!r}; the samples are {', '.join(names)}.")
    return path


def request_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, memoryview]]:
    """(line number, line) of the non-blank lines, without BOM, CR or LF (valid until the next line)."""
    with open_regular(path) as handle:
        for line, raw in BlockReader(handle).lines(_too_long):
            if raw and (raw[0] not in b" \t" or raw.tobytes().strip()):
                yield line, raw


def _too_long(line: int, limit: int) -> InvalidRequestsError:
    return InvalidRequestsError(
        f"Line {line} is longer than {limit:,} bytes; validate the file to see every problem."
    )


def iter_requests(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The parsed requests of a valid file, in order (blank lines skipped).

    for request in iter_requests("requests.jsonl"):
        print(request["custom_id"])
    """
    for line, raw in request_lines(path):
        yield _parsed(path, line, raw)


def _parsed(path: str | os.PathLike[str], line: int, raw: memoryview) -> dict[str, Any]:
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
    return request


class _Id(msgspec.Struct, gc=False):
    custom_id: str


_decode_id = msgspec.json.Decoder(_Id).decode
_decode_ids = msgspec.json.Decoder(_Id).decode_lines


def request_ids(path: str | os.PathLike[str]) -> list[str]:
    """The custom_ids of a valid request file, in order: a typed decode a block at a time that builds no
    dict per line (retry() reads them from files of any size).

        todo = set(request_ids("requests.jsonl")) - done
    """
    ids: list[str] = []
    with open_regular(path) as handle:
        for block in BlockReader(handle):
            if block.overlong:
                raise _too_long(block.first_line, MAX_LINE_BYTES)
            try:
                ids.extend(item.custom_id for item in _decode_ids(block.data))
            except (msgspec.DecodeError, msgspec.ValidationError):
                return [_custom_id(path, line, raw) for line, raw in request_lines(path)]  # names the line
    return ids


def _custom_id(path: str | os.PathLike[str], line: int, raw: memoryview) -> str:
    custom_id = _parsed(path, line, raw).get("custom_id")
    if not isinstance(custom_id, str):
        raise InvalidRequestsError(
            f"{path}, line {line}: no string custom_id; run validate_file on it to see every problem.",
            [Issue(line, "missing_custom_id", "Each request needs a string custom_id.", "custom_id")],
        )
    return custom_id


def write_subset(
    source: str | os.PathLike[str], target: str | os.PathLike[str], custom_ids: set[str]
) -> Path:
    """Writes the lines of ``source`` whose custom_id is in ``custom_ids`` to ``target``, byte for byte and
    in order (a retry's request file); written to a temporary file and renamed.

        write_subset("requests.jsonl", "jobs/retry-2.jsonl", {"request-7", "request-9"})
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _Staged(target) as staged:
        for line, raw in request_lines(source):
            try:
                custom_id = _decode_id(raw).custom_id
            except (msgspec.DecodeError, msgspec.ValidationError):
                custom_id = _custom_id(source, line, raw)
            if custom_id in custom_ids:
                staged.handle.write(raw)
                staged.handle.write(b"\n")
        staged.commit()
    return target


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
    lines = request_lines(path)
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
