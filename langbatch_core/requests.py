"""Request files: strict streaming validation, the split plan, and the job files.

A request file is OpenAI batch JSONL: one ``{"custom_id", "method": "POST", "url", "body"}`` object per
line. ``validate_file`` reads it once, in large binary blocks, and reports every problem as an ``Issue``
(line, code, message, param) like OpenAI's ``errors.data``, plus what a user needs before starting: request
count, model, token and cost estimate, and how the file splits into jobs under the provider's limits.

    report = validate_file("requests.jsonl")
    report.raise_for_errors()              # InvalidRequestsError listing the issues
    paths = write_job_files("requests.jsonl", report.jobs, "jobs/")

Speed: chat lines are decoded by a typed msgspec decoder (``_request_fast``); only lines it rejects go through
the detailed checker (``_request_rules``) that names each problem. Memory stays bounded: one block of lines
and a set of custom_ids, never the whole file as Python objects.
"""

from __future__ import annotations

import codecs
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgspec
import orjson

from langbatch_core import pricing
from langbatch_core._request_fast import chat_decoder, chat_facts
from langbatch_core._request_rules import ENDPOINTS, LineFacts, check_request
from langbatch_core.errors import InvalidRequestsError
from langbatch_core.tokens import TokenEstimate, request_text

__all__ = [
    "ENDPOINTS",
    "SAMPLES",
    "Issue",
    "JobPlan",
    "Limits",
    "ValidationReport",
    "iter_requests",
    "sample_file",
    "validate_file",
    "write_job_files",
]

BLOCK_SIZE = 8 * 1024 * 1024
SAMPLES = Path(__file__).resolve().parent / "samples"  # small valid files for newcomers
BOM = b"\xef\xbb\xbf"
CHAT = "/v1/chat/completions"
_FAST_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError)


@dataclass(frozen=True)
class Issue:
    """One problem in a request file, like an entry of OpenAI's ``errors.data``.

    ``Issue(3, "missing_model", "body.model is missing: ...", "body.model")``
    """

    line: int | None  # 1-based line number (None: the file as a whole)
    code: str
    message: str
    param: str | None = None
    severity: str = "error"  # "error" | "warning"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        return f"{where}: {self.code}: {self.message}"


@dataclass
class Limits:
    """A provider's limits per job; they shape the split plan, they are not errors.

    ``Limits(max_requests=1000)`` splits a 2,500-request file into 3 jobs.
    """

    max_requests: int = 50_000
    max_bytes: int = 200 * 1024 * 1024
    max_embedding_inputs: int = 50_000
    max_enqueued_tokens: int | None = None


@dataclass
class JobPlan:
    """One planned job: a contiguous run of lines of the request file."""

    first_line: int
    last_line: int
    request_count: int
    bytes: int  # size of the job file write_job_files writes (LF endings, no BOM)
    input_tokens: int


@dataclass
class ValidationReport:
    """What ``validate_file`` found: every problem (capped list, total counts) and the file's figures."""

    path: Path
    endpoint: str | None
    model: str | None
    models: list[str]
    request_count: int
    bytes: int
    issues: list[Issue]
    error_count: int
    warning_count: int
    input_tokens: int
    max_output_tokens: int | None
    estimated_cost_usd: float | None
    jobs: list[JobPlan]
    token_method: str = ""  # how input_tokens was estimated, in words
    requests_without_max_tokens: int = 0  # their output is not in max_output_tokens nor in the cost
    embedding_inputs: int = 0
    prices_as_of: str = pricing.PRICES_AS_OF

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    @property
    def errors(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.severity == "warning"]

    def raise_for_errors(self) -> None:
        """Raises ``InvalidRequestsError`` (carrying the issues and this report) when there is any error."""
        if self.ok:
            return
        shown = self.errors[:5]
        lines = "\n".join(f"  {issue}" for issue in shown)
        more = f"\n  … and {self.error_count - len(shown)} more" if self.error_count > len(shown) else ""
        noun = "error" if self.error_count == 1 else "errors"
        raise InvalidRequestsError(
            f"{self.path} has {self.error_count} {noun}; fix them and validate again:\n{lines}{more}",
            self.errors,
            self,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["ok"] = self.ok
        return data


def validate_file(
    path: str | os.PathLike[str],
    *,
    endpoint: str | None = None,
    limits: Limits | None = None,
    max_issues: int = 1000,
    token_sample: int = 0,
) -> ValidationReport:
    """Checks a request file line by line and reports every problem, the estimate and the split plan.

    ``endpoint`` is the batch's endpoint (default: the url of the first request). ``token_sample`` counts
    that many requests exactly with an offline tokenizer to calibrate the token estimate (see ``tokens``).

        report = validate_file("requests.jsonl", endpoint="/v1/chat/completions")
    """
    if endpoint is not None and endpoint not in ENDPOINTS:
        raise InvalidRequestsError(
            f"endpoint {endpoint!r} is not a batch endpoint; use one of {sorted(ENDPOINTS)}."
        )
    path = Path(path)
    scan = _Scan(path, endpoint, limits or Limits(), max_issues, token_sample)
    try:
        with path.open("rb", buffering=0) as handle:
            scan.scan(_LineReader(handle))
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise InvalidRequestsError(
            f"Cannot read the request file {path}: {exc.strerror}; check the path."
        ) from exc
    return scan.report(path.stat().st_size)


def _is_utf8(buf: bytearray, view: memoryview, start: int, stop: int) -> bool:
    """Whether buf[start:stop] is UTF-8 (msgspec does not check strings it skips or keeps raw)."""
    if buf.isascii():  # whole buffer, stale tail included: a quick yes for most files
        return True
    try:
        codecs.utf_8_decode(view[start:stop], "strict", False)  # False: a character may continue
    except UnicodeDecodeError:
        return False
    return True


class _LineReader:
    """Iterates ``(line number, line)`` over a binary file, each line a memoryview without LF or CR.

    Reads big blocks into one reused buffer and slices lines out of it without copying them; notes a leading
    BOM (skipped) and counts CRLF endings.
    """

    def __init__(self, handle: Any, block_size: int = BLOCK_SIZE) -> None:
        self.handle, self.block_size = handle, block_size
        self.bom = False
        self.valid_utf8 = True  # False: some line of the current block is not UTF-8 (check each)
        self.crlf = self.first_crlf = 0

    def __iter__(self) -> Iterator[tuple[int, memoryview]]:
        buf = bytearray(self.block_size)
        filled = line = 0
        first = True
        while True:
            view = memoryview(buf)
            end = filled + self.handle.readinto(view[filled:])
            pos = 0
            if first:
                first = False
                if buf.startswith(BOM) and end >= len(BOM):
                    self.bom, pos = True, len(BOM)
            if end == filled:  # end of file: the last line has no LF
                if pos < end:
                    yield line + 1, self._cut(view, buf, pos, end, line + 1)
                return
            find, has_cr = buf.find, buf.find(b"\r", pos, end) != -1
            self.valid_utf8 = _is_utf8(buf, view, pos, end)
            while (nl := find(b"\n", pos, end)) != -1:
                line += 1
                yield line, (self._cut(view, buf, pos, nl, line) if has_cr else view[pos:nl])
                pos = nl + 1
            filled = end - pos
            if filled == len(buf):  # one line fills the buffer: continue in a bigger new one
                buf = buf + bytearray(len(buf))
            else:
                buf[:filled] = buf[pos:end]

    def _cut(self, view: memoryview, buf: bytearray, start: int, stop: int, line: int) -> memoryview:
        if stop > start and buf[stop - 1] == 13:
            stop -= 1
            self.crlf += 1
            self.first_crlf = self.first_crlf or line
        return view[start:stop]


class _Scan:
    """The state of one validation pass."""

    def __init__(
        self, path: Path, endpoint: str | None, limits: Limits, max_issues: int, sample: int
    ) -> None:
        self.path, self.limits, self.max_issues = path, limits, max_issues
        self.endpoint: str | None = None
        self.decode: Any = None
        if endpoint is not None:
            self._set_endpoint(endpoint)
        self.reader: _LineReader | None = None
        self.count = 0
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []
        self.error_count = self.warning_count = 0
        self.first_line_of: dict[str, int] = {}
        self.models: dict[str, int] = {}  # model -> first line
        self.first_model: str | None = None
        self.estimate = TokenEstimate()
        self.sample_left = sample
        self.max_output = self.without_max = self.inputs = 0
        self.jobs: list[JobPlan] = []
        self.job_units: list[tuple[int, int]] = []  # (text units, extra tokens) of each job

    def _set_endpoint(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.decode = chat_decoder(endpoint) if endpoint == CHAT else None

    def error(self, line: int | None, code: str, message: str, param: str | None = None) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_issues:
            self.errors.append(Issue(line, code, message, param))

    def warning(self, line: int | None, code: str, message: str, param: str | None = None) -> None:
        self.warning_count += 1
        if len(self.warnings) < self.max_issues:
            self.warnings.append(Issue(line, code, message, param, "warning"))

    def scan(self, reader: _LineReader) -> None:
        """The hot loop: kept flat, with locals, because it runs once per line of big files.

        Besides checking, it plans jobs greedily: a job closes before the line that would break a limit.
        """
        self.reader = reader
        facts_of, decode = chat_facts, self.decode or _no_fast_path
        seen, first_model = self.first_line_of.setdefault, self.first_model
        max_requests, max_bytes = self.limits.max_requests, self.limits.max_bytes
        max_inputs, max_tokens = self.limits.max_embedding_inputs, self.limits.max_enqueued_tokens
        sample_left = self.sample_left
        count = size = units = extra = inputs = first = last = max_output = without_max = 0
        for line, raw in reader:
            if not raw:
                self._blank(line)
                continue
            try:
                if not reader.valid_utf8:
                    str(raw, "utf-8")
                facts = facts_of(decode(raw))
            except _FAST_ERRORS:
                facts = None
            if facts is None:
                facts = self._slow(raw.tobytes(), line)
                if facts is None:
                    continue
                decode = self.decode or _no_fast_path
            custom_id, _, model, line_units, line_extra, ceiling, line_inputs = facts
            if custom_id is not None and seen(custom_id, line) != line:
                self._duplicate(custom_id, line)
            if model != first_model and model is not None:
                first_model = self._model(model, line)
            if sample_left:
                sample_left -= 1
                if not self._sample(raw, model, line_units):
                    sample_left = 0
            line_size = len(raw) + 1
            if count and (
                count >= max_requests
                or size + line_size > max_bytes
                or (line_inputs and inputs + line_inputs > max_inputs)
                or (max_tokens is not None and self._over(units + line_units, extra + line_extra, max_tokens))
            ):
                self._close_job(first, last, count, size, units, extra, inputs)
                count = size = units = extra = inputs = 0
            if not count:
                first = line
            last = line
            count += 1
            size += line_size
            units += line_units
            extra += line_extra
            inputs += line_inputs
            if ceiling is None:
                without_max += 1
            else:
                max_output += ceiling
        self._close_job(first, last, count, size, units, extra, inputs)
        self.first_model, self.sample_left = first_model, sample_left
        self.max_output, self.without_max = max_output, without_max

    def _over(self, units: int, extra: int, max_tokens: int) -> bool:
        return self.estimate.tokens_for(units, extra) > max_tokens

    def _close_job(
        self, first: int, last: int, count: int, size: int, units: int, extra: int, inputs: int
    ) -> None:
        if count:
            self.job_units.append((units, extra))
            self.jobs.append(JobPlan(first, last, count, size, 0))
            self.count += count
            self.inputs += inputs

    def _slow(self, raw: bytes, line: int) -> LineFacts | None:
        """The detailed check of one line the fast path did not accept (None for a blank line)."""
        if not raw.strip():
            self._blank(line)
            return None
        try:
            obj = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            self.error(
                line, "not_utf8", f"Byte {exc.start + 1} of the line is not UTF-8: save the file as UTF-8."
            )
            return LineFacts(None, None, None, 0, 0, None, 0)
        except json.JSONDecodeError as exc:
            self.error(
                line,
                "invalid_json",
                f"Not valid JSON ({exc.msg} at column {exc.colno}): each line must be one complete "
                "JSON object.",
            )
            return LineFacts(None, None, None, 0, 0, None, 0)
        problems, facts = check_request(obj, self.endpoint)
        for code, message, param in problems:
            self.error(line, code, message, param)
        if self.endpoint is None and facts.url in ENDPOINTS:
            self._set_endpoint(facts.url)
        return facts

    def _blank(self, line: int) -> None:
        self.warning(line, "blank_line", "Blank line: it is skipped (you may remove it).")

    def _duplicate(self, custom_id: str, line: int) -> None:
        first = self.first_line_of[custom_id]
        self.error(
            line,
            "duplicate_custom_id",
            f"custom_id {custom_id!r} is used on lines {first} and {line}; each request needs a unique "
            "custom_id.",
            "custom_id",
        )

    def _model(self, model: str, line: int) -> str:
        if self.first_model is None:
            self.first_model = model
        elif model not in self.models:
            first = self.models[self.first_model]
            self.error(
                line,
                "multiple_models",
                f"Line {line} uses model {model!r} but line {first} uses {self.first_model!r}; one batch "
                "runs one model: split the file by model.",
                "body.model",
            )
        self.models.setdefault(model, line)
        return self.first_model

    def _sample(self, raw: Any, model: str | None, units: int) -> bool:
        """Counts one request's text exactly to calibrate the estimate (False: no tokenizer here)."""
        try:
            body = orjson.loads(raw).get("body")
        except (orjson.JSONDecodeError, AttributeError):
            return True
        if not isinstance(body, dict):
            return True
        return self.estimate.add_sample(request_text(body), model, units)

    def report(self, size: int) -> ValidationReport:
        estimate = self.estimate
        estimate.units = sum(units for units, _ in self.job_units)
        estimate.extra = sum(extra for _, extra in self.job_units)
        for job, (units, extra) in zip(self.jobs, self.job_units, strict=True):
            job.input_tokens = estimate.tokens_for(units, extra)
        self._file_warnings()
        if self.count == 0:
            self.error(
                None, "empty_file", "The file has no requests: put one JSON request object on each line."
            )
        tokens = self.estimate.tokens()
        model = self.first_model
        cost = pricing.estimate_cost(model, tokens, self.max_output) if len(self.models) <= 1 else None
        return ValidationReport(
            path=self.path,
            endpoint=self.endpoint,
            model=model,
            models=list(self.models),
            request_count=self.count,
            bytes=size,
            issues=(self.errors + self.warnings)[: self.max_issues],
            error_count=self.error_count,
            warning_count=self.warning_count,
            input_tokens=tokens,
            max_output_tokens=self.max_output if self.without_max < self.count else None,
            estimated_cost_usd=cost,
            jobs=self.jobs,
            token_method=self.estimate.method(),
            requests_without_max_tokens=self.without_max if self.endpoint != "/v1/embeddings" else 0,
            embedding_inputs=self.inputs,
        )

    def _file_warnings(self) -> None:
        reader = self.reader
        if reader.bom:
            self.warning(1, "bom", "The file starts with a UTF-8 byte order mark; it is ignored.")
        if reader.crlf:
            self.warning(
                reader.first_crlf,
                "crlf",
                f"{reader.crlf} lines end with CRLF (Windows line endings); they are read as LF.",
            )


def sample_file(kind: str = "chat") -> Path:
    """A small bundled request file to try LangBatch with: ``"chat"`` (12 requests) or ``"embeddings"`` (8).

    ``validate_file(sample_file("chat")).ok  # True``
    """
    path = SAMPLES / f"{kind}.jsonl"
    if not path.is_file():
        names = sorted(p.stem for p in SAMPLES.glob("*.jsonl"))
        raise InvalidRequestsError(f"No sample named {kind!r}; the samples are {', '.join(names)}.")
    return path


def _no_fast_path(raw: bytes) -> Any:
    raise msgspec.DecodeError("no fast path for this endpoint")


def _clean_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, memoryview]]:
    """(line number, line) of the non-blank lines, without BOM, CR or LF (valid until the next line)."""
    with Path(path).open("rb", buffering=0) as handle:
        for line, raw in _LineReader(handle):
            if raw and (raw[0] not in b" \t" or raw.tobytes().strip()):
                yield line, raw


def iter_requests(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The parsed requests of a valid file, in order (blank lines skipped).

    for request in iter_requests("requests.jsonl"):
        print(request["custom_id"])
    """
    for line, raw in _clean_lines(path):
        try:
            request = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
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
        fd, temp = tempfile.mkstemp(dir=out, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                while pending is not None and pending[0] <= job.last_line:
                    if pending[0] >= job.first_line:
                        handle.write(pending[1])
                        handle.write(b"\n")
                    pending = next(lines, None)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    return targets
