"""One validation pass over a request file, block by block (used by ``requests.validate_file``).

Each block of whole lines goes through three steps:

1. facts: a chat block without CR or bad UTF-8 is decoded by one typed ``decode_lines`` call; any other
   block, or one with a line that call refuses, line by line. A line the typed decode refuses goes to the
   detailed checker (``requests.rules``), which names each problem.
2. sampling: the first N requests are counted exactly with a tokenizer when asked (``token_sample``).
3. tally: duplicates, models, output ceilings and the greedy split into jobs, in one flat loop.

    scan = Scan(path, endpoint=None, limits=Limits(), max_issues=1000, sample=0)
    scan.scan(BlockReader(handle))
    report = scan.report(size)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from langbatch_core.jsonl import CR, MAX_LINE_BYTES, Block, BlockReader, JSONError, read_json
from langbatch_core.requests import pricing
from langbatch_core.requests.fast import chat_decoder, chat_facts
from langbatch_core.requests.report import Capabilities, Issue, JobPlan, Limits, ValidationReport
from langbatch_core.requests.rules import ENDPOINTS, FactsTuple, LineFacts, check_request
from langbatch_core.requests.tokens import TokenEstimate, request_text

CHAT = "/v1/chat/completions"
# msgspec raises RecursionError for JSON nested deeper than it reads: the detailed checker reports it
_FAST_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)
_BROKEN = LineFacts(None, None, None, 0, 0, None, 0)


def _no_fast_path(raw: Any) -> Any:
    raise msgspec.DecodeError("no fast path for this endpoint")


class Scan:
    """The state of one validation pass."""

    def __init__(
        self,
        path: Path,
        endpoint: str | None,
        limits: Limits,
        max_issues: int,
        sample: int,
        capabilities: Capabilities | None = None,
        max_line: int = MAX_LINE_BYTES,
    ) -> None:
        self.path, self.limits, self.max_issues = path, limits, max_issues
        self.capabilities, self.max_line = capabilities, max_line
        self.endpoint: str | None = None
        self.decode: Any = None
        self.decode_lines: Any = None
        if endpoint is not None:
            self._set_endpoint(endpoint)
        self.bom = False
        self.count = self.crlf = self.first_crlf = 0
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []
        self.error_count = self.warning_count = 0
        self.first_line_of: dict[str, int] = {}
        self.models: dict[str, int] = {}  # model -> first line
        self.first_model: str | None = None
        self.estimate = TokenEstimate()
        self.sample_left = sample
        self.max_output = self.without_max = self.inputs = 0
        self.job = [0, 0, 0, 0, 0, 0, 0]  # the open job: count, bytes, units, extra, inputs, first, last
        self.jobs: list[JobPlan] = []
        self.job_units: list[tuple[int, int]] = []  # (text units, extra tokens) of each job

    def _set_endpoint(self, endpoint: str) -> None:
        self.endpoint = endpoint
        if endpoint == CHAT:
            self.decode, self.decode_lines = chat_decoder(endpoint)

    def error(self, line: int | None, code: str, message: str, param: str | None = None) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_issues:
            self.errors.append(Issue(line, code, message, param))

    def warning(self, line: int | None, code: str, message: str, param: str | None = None) -> None:
        self.warning_count += 1
        if len(self.warnings) < self.max_issues:
            self.warnings.append(Issue(line, code, message, param, "warning"))

    # -------------------------------------------------------------------------------------- per block

    def scan(self, reader: BlockReader) -> None:
        """Scans every block of the reader (the whole file)."""
        for whole in reader:
            for block in self._split_first_line(whole):
                self._scan_block(block)
        self._close_job()
        self.bom = reader.bom

    def _split_first_line(self, block: Block) -> tuple[Block, ...]:
        """Until the endpoint is known (it is the first request's url), the block's first line alone."""
        if self.endpoint is not None or block.count < 2:
            return (block,)
        return block.split_first_line()

    def _scan_block(self, block: Block) -> None:
        """Steps 1 to 3 for one block; a block decoded in one call that fits the open job is tallied column
        by column, any other line by line (with the job-file size of each line)."""
        facts, sizes = self._facts(block)
        if sizes is None:
            if self._fits(len(facts), len(block.data)):
                if self.sample_left:
                    self._sample(block, facts)
                size = len(block.data) + (not block.ends_with_lf)
                self._tally_fitting(block.first_line, size, fact_columns(facts))
                return
            sizes = _sizes(block.ends)
        if self.sample_left:
            self._sample(block, facts)
        self._tally(block.first_line, sizes, facts)

    def _facts(self, block: Block) -> tuple[list[Any], list[int] | None]:
        """Step 1: the facts of each line, and the job-file sizes of the lines when they were read one by
        one (None: a block decoded in one call)."""
        if block.overlong:
            message = (
                f"The line is {block.overlong:,} bytes long, more than the {self.max_line:,} a request may "
                "have: shorten it (large images go by URL), or check that the file has one request a line."
            )
            self.error(block.first_line, "line_too_long", message)
            return [None], [0]
        facts = self._block_facts(block)
        if facts is None:
            sizes, facts = self._line_facts(block)
            return facts, sizes
        return facts, None

    def _fits(self, count: int, size: int) -> bool:
        """Whether a whole chat block joins the open job without breaking a limit (no per-line planning)."""
        limits, job = self.limits, self.job
        return (
            limits.max_enqueued_tokens is None
            and job[0] + count <= limits.max_requests
            and job[1] + size + 1 <= limits.max_bytes
        )

    def _tally_fitting(self, first_line: int, size: int, columns: tuple[Any, ...]) -> None:
        """``_tally`` for a block known to fit the open job: the same checks, no per-line planning, and
        done column by column with builtins while nothing unusual (a duplicate, a second model) shows."""
        ids, models, units, extra, ceilings, _ = columns
        if models is None or isinstance(models, str):  # one model for the whole block
            models = (models,) * len(ids)
        lines = range(first_line, first_line + len(ids))
        seen, known = self.first_line_of, len(self.first_line_of)
        if None not in ids and seen.keys().isdisjoint(ids):
            seen.update(zip(ids, lines, strict=True))
            if len(seen) - known != len(ids):  # a custom_id twice in the block: its first line is kept
                seen.update(zip(reversed(ids), reversed(lines), strict=True))
                for custom_id, line in zip(ids, lines, strict=True):
                    if seen[custom_id] != line:
                        self._duplicate(custom_id, line)
        else:
            for custom_id, line in zip(ids, lines, strict=True):
                if custom_id is not None and seen.setdefault(custom_id, line) != line:
                    self._duplicate(custom_id, line)
        if self.first_model is None or models.count(self.first_model) != len(models):
            for model, line in zip(models, lines, strict=True):
                if model != self.first_model and model is not None:
                    self._model(model, line)
        without_max = ceilings.count(None)
        self.max_output += sum(filter(None, ceilings)) if without_max else sum(ceilings)
        self.without_max += without_max
        units, extra, line = sum(units), sum(extra), lines[-1]
        job = self.job
        if not job[0]:
            job[5] = first_line
        job[0] += len(ids)
        job[1] += size
        job[2] += units
        job[3] += extra
        job[6] = line

    def _block_facts(self, block: Block) -> list[Any] | None:
        """The facts of every line of a clean chat block from one C call, or None: go line by line."""
        if self.decode_lines is None or block.has_cr or not block.valid_utf8:
            return None
        try:
            requests = self.decode_lines(block.data)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            return None
        if len(requests) != block.count:  # decode_lines skipped a blank line
            return None
        facts = [chat_facts(request) for request in requests]
        accepted = [found is not None for found in facts] if self.capabilities is not None else None
        if None in facts:  # rules the types cannot express: ask the detailed checker
            start = 0
            for offset, end in enumerate(block.ends):
                if facts[offset] is None:
                    facts[offset] = self._slow(block.data[start:end].tobytes(), block.first_line + offset)
                start = end + 1
        if accepted is not None:  # the detailed checker checked its own lines
            self._block_capabilities(block, facts, accepted)
        return facts

    def _block_capabilities(self, block: Block, facts: list[Any], accepted: list[bool]) -> None:
        start = 0
        for offset, end in enumerate(block.ends):
            if accepted[offset]:
                body = read_json(block.data[start:end])["body"]
                self._check_capabilities(body, facts[offset], block.first_line + offset)
            start = end + 1

    def _line_facts(self, block: Block) -> tuple[list[int], list[Any]]:
        """(job-file sizes, facts) line by line; facts are None for blank lines."""
        data, decode, start = block.data, self.decode or _no_fast_path, 0
        sizes: list[int] = []
        facts: list[Any] = []
        for offset, end in enumerate(block.ends):
            line, stop = block.first_line + offset, end
            if block.has_cr and stop > start and data[stop - 1] == CR:
                stop -= 1
                self.crlf += 1
                self.first_crlf = self.first_crlf or line
            raw, start = data[start:stop], end + 1
            sizes.append(len(raw) + 1)
            try:
                if not block.valid_utf8:
                    str(raw, "utf-8")
                found = chat_facts(decode(raw)) if raw else None
            except _FAST_ERRORS:
                found = None
            if found is None:
                found = self._slow(raw.tobytes(), line)
                decode = self.decode or _no_fast_path  # the first request may have named the endpoint
            elif self.capabilities is not None:
                self._check_capabilities(read_json(raw)["body"], found, line)
            facts.append(found)
        return sizes, facts

    def _sample(self, block: Block, facts: list[Any]) -> None:
        """Counts the first requests exactly to calibrate the token estimate (see ``tokens``)."""
        start = 0
        for offset, end in enumerate(block.ends):
            found, raw, start = facts[offset], block.data[start:end], end + 1
            if found is None or not self.sample_left:
                continue
            self.sample_left -= 1
            try:
                body = read_json(raw).get("body")
            except (JSONError, AttributeError):
                continue
            try:
                text = request_text(body) if isinstance(body, dict) else None
            except TypeError:  # tools nested too deeply to write back as JSON: not a sample
                continue
            if text is not None and not self.estimate.add_sample(text, found[2], found[3]):
                self.sample_left = 0  # no tokenizer installed

    def _tally(self, first_line: int, sizes: list[int], facts: list[Any]) -> None:
        """The hot loop: kept flat, with locals, because it runs once per request of big files.

        Besides duplicates and models it plans jobs greedily: a job closes before the line that would
        break a limit.
        """
        seen, first_model = self.first_line_of.setdefault, self.first_model
        max_requests, max_bytes = self.limits.max_requests, self.limits.max_bytes
        max_inputs, max_tokens = self.limits.max_embedding_inputs, self.limits.max_enqueued_tokens
        count, size, units, extra, inputs, first, last = self.job
        max_output = without_max = 0
        line = first_line - 1
        for line_size, found in zip(sizes, facts, strict=True):
            line += 1
            if found is None:  # a blank line
                continue
            custom_id, _, model, line_units, line_extra, ceiling, line_inputs = found
            if custom_id is not None and seen(custom_id, line) != line:
                self._duplicate(custom_id, line)
            if model != first_model and model is not None:
                first_model = self._model(model, line)
            if count and (
                count >= max_requests
                or size + line_size > max_bytes
                or (line_inputs and inputs + line_inputs > max_inputs)
                or (max_tokens is not None and self._over(units + line_units, extra + line_extra, max_tokens))
            ):
                self.job = [count, size, units, extra, inputs, first, last]
                self._close_job()
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
        self.job = [count, size, units, extra, inputs, first, last]
        self.first_model = first_model
        self.max_output += max_output
        self.without_max += without_max

    def _over(self, units: int, extra: int, max_tokens: int) -> bool:
        return self.estimate.tokens_for(units, extra) > max_tokens

    def _close_job(self) -> None:
        count, size, units, extra, inputs, first, last = self.job
        if count:
            self.job_units.append((units, extra))
            self.jobs.append(JobPlan(first, last, count, size, 0))
            self.count += count
            self.inputs += inputs
        self.job = [0, 0, 0, 0, 0, 0, 0]

    # -------------------------------------------------------------------------------------- per line

    def _slow(self, raw: bytes, line: int) -> LineFacts | None:
        """The detailed check of one line the fast path did not accept (None for a blank line)."""
        if not raw.strip():
            self.warning(line, "blank_line", "Blank line: it is skipped (you may remove it).")
            return None
        try:
            text = raw.decode("utf-8")
            obj = read_json(text)
        except UnicodeDecodeError as exc:
            message = f"Byte {exc.start + 1} of the line is not UTF-8: save the file as UTF-8."
            self.error(line, "not_utf8", message)
            return _BROKEN
        except JSONError as exc:
            self.error(line, "invalid_json", _json_problem(text, exc))
            return _BROKEN
        problems, facts = check_request(obj, self.endpoint)
        for code, message, param in problems:
            self.error(line, code, message, param)
        if not problems and self.capabilities is not None:
            self._check_capabilities(obj["body"], facts, line)
        if self.endpoint is None and facts.url in ENDPOINTS:
            self._set_endpoint(facts.url)
        return facts

    def _check_capabilities(self, body: dict[str, Any], facts: FactsTuple, line: int) -> None:
        """Reports what the connection's model refuses in a valid request (before a start, not as a 400)."""
        capabilities = self.capabilities
        if capabilities is None:
            return
        custom_id = facts[0]
        wrong_id = capabilities.custom_id(custom_id) if capabilities.custom_id and custom_id else None
        if wrong_id is not None:
            self.error(line, "unsupported_custom_id", wrong_id, "custom_id")
        refused = capabilities.refusal(self.endpoint or facts[1] or "", body)
        if refused is not None:
            param, message = refused
            self.error(
                line,
                "unsupported_parameter",
                message if capabilities.name in message else f"{capabilities.name.capitalize()}: {message}",
                f"body.{param}" if param else "body",
            )

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

    # -------------------------------------------------------------------------------------- the report

    def report(self, size: int) -> ValidationReport:
        estimate = self.estimate
        estimate.units = sum(units for units, _ in self.job_units)
        estimate.extra = sum(extra for _, extra in self.job_units)
        for job, (units, extra) in zip(self.jobs, self.job_units, strict=True):
            job.input_tokens = estimate.tokens_for(units, extra)
        self._file_warnings()
        self._too_small_jobs()
        if self.count == 0:
            self.error(
                None, "empty_file", "The file has no requests: put one JSON request object on each line."
            )
        tokens = estimate.tokens()
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
            token_method=estimate.method(),
            requests_without_max_tokens=self.without_max if self.endpoint != "/v1/embeddings" else 0,
            embedding_inputs=self.inputs,
        )

    def _too_small_jobs(self) -> None:
        least = self.limits.min_requests
        for job in self.jobs:
            if job.request_count < least:
                lines = f"lines {job.first_line}–{job.last_line}" if job.request_count > 1 else "its line"
                self.error(
                    job.first_line,
                    "too_few_requests",
                    f"A job here needs at least {least:,} requests, and the job planned from {lines} has "
                    f"{job.request_count:,}: add requests, or run these on another connection.",
                )

    def _file_warnings(self) -> None:
        if self.bom:
            self.warning(1, "bom", "The file starts with a UTF-8 byte order mark; it is ignored.")
        if self.crlf:
            message = f"{self.crlf} lines end with CRLF (Windows line endings); they are read as LF."
            self.warning(self.first_crlf, "crlf", message)


def _json_problem(text: str, exc: JSONError) -> str:
    """What is wrong with a line that is not JSON, in words, with a hint for the usual culprits."""
    found = text[exc.pos : exc.pos + 9].lstrip("-")
    if found.startswith(("NaN", "Infinity")):
        hint = "NaN and Infinity are not JSON: write a number or null"
    elif "infinity" in exc.msg:
        hint = "a number is beyond what JSON readers hold (about 1.8e308): write it as a string"
    elif "surrogate" in exc.msg:
        hint = 'a \\u escape names half a character (like "\\ud800"): write the character itself'
    elif "depth" in exc.msg or "recursion" in exc.msg:
        hint = "it nests more than 1,024 levels deep: a request is a flat object"
    else:
        hint = "each line must be one JSON object"
    return f"Not valid JSON ({exc.msg} at column {exc.colno}): {hint}."


def fact_columns(facts: list[Any]) -> tuple[Any, ...]:
    """The facts of a block's lines as columns: (ids, models, units, extra, ceilings, inputs); models is
    one string when every line has that model."""
    ids, _, models, units, extra, ceilings, inputs = zip(*facts, strict=True)
    model = models[0]
    return ids, model if models.count(model) == len(models) else models, units, extra, ceilings, inputs


def _sizes(ends: list[int]) -> list[int]:
    """Job-file bytes of each line (its length plus an LF) from the offsets of the line ends."""
    previous = -1
    sizes = []
    for end in ends:
        sizes.append(end - previous)
        previous = end
    return sizes
