"""Continuous batching: one worker thread generates for every waiting request at once.

    generator = Generator(model, tokenizer, max_batch=16)
    future = generator.submit(prompt_ids, SamplingParams(max_tokens=50, temperature=0), n=1)
    choices = future.result()        # [Choice(text, finish_reason, token_ids)]
    generator.close()

New requests join the running batch between decode steps (their prompts are prefilled first, reusing the
cached keys/values of a shared prefix such as the same system prompt), finished ones leave it, so a step
always advances every active sequence together. A cancelled future drops its sequences at the next step.
A request with a grammar (``SamplingParams.grammar``, a JSON ``response_format``) picks each token among
those its grammar allows and ends as soon as its JSON is complete; the others in the batch are unaffected.
numpy releases the GIL in its matrix products, so the caller's event loop stays responsive while the worker
computes.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from langbatch_core.errors import ProviderUnavailableError
from langbatch_core.local.model.json_output import ConstrainedDecodingError, GrammarMatcher, TokenGrammars
from langbatch_core.local.model.llama import KVCache, LlamaModel
from langbatch_core.local.model.prefix_cache import PrefixCache
from langbatch_core.local.model.sampling import SamplingParams, choose_token
from langbatch_core.local.model.tokenizer import ChatTokenizer

logger = logging.getLogger(__name__)
DEFAULT_CACHE_BYTES = 2 * 1024**3  # key/value cache budget: SmolLM2 needs 45 KB per token and sequence


class GeneratorClosedError(ProviderUnavailableError):
    """The generator was closed before the request finished (the backend answers 503: retry later)."""


@dataclass(frozen=True)
class Choice:
    """One generated answer: its text, why it ended (``"stop"`` or ``"length"``) and its tokens."""

    text: str
    finish_reason: str
    token_ids: tuple[int, ...]


@dataclass
class _Job:
    prompt_ids: list[int]
    params: SamplingParams
    n: int
    future: Future
    choices: list[Choice | None] = field(default_factory=list)


@dataclass
class _Sequence:
    job: _Job
    index: int
    slot: int
    rng: np.random.Generator
    generated: list[int] = field(default_factory=list)
    pending: int | None = None  # sampled, not yet fed to the model
    matcher: GrammarMatcher | None = None  # the grammar the answer follows, if any

    @property
    def next_token(self) -> int:
        """The token to feed the model next: every active sequence has one (``_advance`` sets it)."""
        if self.pending is None:
            raise RuntimeError(f"sequence in slot {self.slot} is active with no token sampled")
        return self.pending


class Generator:
    """Runs a ``LlamaModel`` over submitted prompts in a background thread, batching them."""

    def __init__(
        self,
        model: LlamaModel,
        tokenizer: ChatTokenizer,
        max_batch: int = 16,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.cache_bytes = cache_bytes
        self._deferred: _Job | None = None  # the next job, waiting for cache memory to free up
        self.peak_batch = 0  # the most sequences decoded together so far
        self.generated_tokens = 0
        self.finished_requests = 0
        self.context_length = model.config.context_length
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._cache = KVCache(model.config)
        self.prefixes = PrefixCache(tokenizer.stop_token_ids)
        self.grammars = TokenGrammars(tokenizer)
        self._active: list[_Sequence] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="langbatch-model", daemon=True)
        self._thread.start()

    def submit(self, prompt_ids: list[int], params: SamplingParams, n: int = 1) -> Future:
        """Queue a prompt; the future's result is the list of ``n`` ``Choice``s. Cancel it to abandon."""
        if not prompt_ids:
            raise ValueError("a prompt needs at least one token")
        future: Future = Future()
        self._queue.put(_Job(list(prompt_ids), params, n, future, [None] * n))
        return future

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop the worker after the step it is in; unfinished futures fail with ``GeneratorClosedError``."""
        self._stopping.set()
        self._queue.put(None)  # wakes a worker waiting for work
        self._thread.join(timeout)

    @property
    def active_sequences(self) -> int:
        return len(self._active)

    def stats(self) -> dict[str, int]:
        """Counters for /health: sequences running and waiting, totals so far, prefix cache hits."""
        return {
            "active_sequences": len(self._active),
            "waiting_requests": self._queue.qsize() + (self._deferred is not None),
            "finished_requests": self.finished_requests,
            "generated_tokens": self.generated_tokens,
            "peak_batch": self.peak_batch,
            "prefix_cache_hits": self.prefixes.hits,
        }

    def _run(self) -> None:
        while not self._stopping.is_set():
            if not self._admit():
                break
            try:
                self._step()
            except Exception as exc:  # keep serving: fail what was running, start afresh
                logger.exception("bundled model step failed")
                self._fail_active(exc)
        stopped = GeneratorClosedError("the bundled model was stopped before this request finished")
        self._fail_active(stopped)
        if self._deferred is not None:
            _resolve(self._deferred.future, exception=stopped)
        self._fail_waiting(stopped)

    def _admit(self) -> bool:
        """Prefill waiting jobs while there is room; False when asked to stop."""
        while len(self._active) < self.max_batch:
            job = self._next_job()
            if job is None:
                return not self._stopping.is_set()
            if job.future.cancelled():
                continue
            if not self._fits(job):  # wait for running sequences to finish, keeping the order
                self._deferred = job
                return True
            try:
                self._start(job)
            except Exception as exc:
                logger.exception("bundled model prefill failed")
                self._drop_job(job)
                _resolve(job.future, exception=exc)
        return True

    def _next_job(self) -> _Job | None:
        """The deferred job, else the next queued one (waiting for one when nothing runs); None: none now."""
        if self._deferred is not None:
            job, self._deferred = self._deferred, None
            return job
        try:
            return self._queue.get(block=not self._active)
        except queue.Empty:
            return None

    def _fits(self, job: _Job) -> bool:
        """Whether the key/value cache stays within ``cache_bytes`` with ``job`` added to the batch.

        The cache is one array for all slots, as long as the longest sequence: one long prompt makes every
        slot long. A job that would overflow waits until the batch drains; alone, it always runs.
        """
        if not self._active:
            return True
        longest = max(len(s.job.prompt_ids) + s.job.params.max_tokens for s in self._active)
        wanted = max(longest, len(job.prompt_ids) + job.params.max_tokens)
        length = self._cache.capacity_for(min(self.context_length, wanted))
        slots = self._cache.keys.shape[1]
        while slots < len(self._active) + job.n:  # slots grow by doubling too
            slots *= 2
        return slots * length * self._cache.bytes_per_token <= self.cache_bytes

    def _start(self, job: _Job) -> None:
        first = self._cache.add_slot()
        try:
            reused = self.prefixes.restore(job.prompt_ids, self._cache, first)
            logits = self.model.prefill(job.prompt_ids[reused:], self._cache, first)
        except Exception:
            self._cache.free_slot(first)
            raise
        self.prefixes.remember(job.prompt_ids, self._cache, first)
        sequences = [_Sequence(job, 0, first, job.params.rng(0), matcher=self._matcher(job))]
        for index in range(1, job.n):  # every choice continues from the same prefilled prompt
            slot = self._cache.add_slot()
            self._cache.copy_slot(first, slot)
            sequences.append(_Sequence(job, index, slot, job.params.rng(index), matcher=self._matcher(job)))
        self._active.extend(sequences)
        self.peak_batch = max(self.peak_batch, len(self._active))
        for sequence in sequences:
            self._advance(sequence, logits)

    def _matcher(self, job: _Job) -> GrammarMatcher | None:
        return self.grammars.matcher(job.params.grammar) if job.params.grammar else None

    def _step(self) -> None:
        for sequence in [s for s in self._active if s.job.future.done()]:  # cancelled, or failed
            self._release(sequence)
        running = list(self._active)
        if not running:
            return
        running.sort(key=lambda s: s.slot)
        logits = self.model.decode([s.next_token for s in running], self._cache, [s.slot for s in running])
        for sequence, row in zip(running, logits, strict=True):
            self._advance(sequence, row)

    def _advance(self, sequence: _Sequence, logits: np.ndarray) -> None:
        """Sample the next token of ``sequence`` and finish it when a stop condition is met."""
        params = sequence.job.params
        try:
            token = self._choose(sequence, logits)
        except ConstrainedDecodingError as exc:  # this request fails, the batch goes on
            self._release(sequence)
            _resolve(sequence.job.future, exception=exc)
            return None
        if token in self.tokenizer.stop_token_ids:
            return self._finish(sequence, "stop")
        sequence.generated.append(token)
        text = self.tokenizer.decode(sequence.generated)
        if params.stop:
            cut = min((i for i in (text.find(s) for s in params.stop) if i >= 0), default=-1)
            if cut >= 0:
                return self._finish(sequence, "stop", text[:cut])
        if sequence.matcher is not None and sequence.matcher.finished:  # only an end of turn could follow
            return self._finish(sequence, "stop", text)
        position = int(self._cache.lengths[sequence.slot])
        if len(sequence.generated) >= params.max_tokens or position + 1 >= self.context_length:
            return self._finish(sequence, "length", text)
        sequence.pending = token
        return None

    def _choose(self, sequence: _Sequence, logits: np.ndarray) -> int:
        """The next token, among those the sequence's grammar allows when it has one."""
        matcher = sequence.matcher
        if matcher is None:
            return choose_token(logits, sequence.job.params, sequence.rng, sequence.generated)
        token = choose_token(matcher.masked(logits), sequence.job.params, sequence.rng, sequence.generated)
        if token not in self.tokenizer.stop_token_ids:
            matcher.consume(token)
        return token

    def _finish(self, sequence: _Sequence, reason: str, text: str | None = None) -> None:
        if text is None:
            text = self.tokenizer.decode(sequence.generated)
        job = sequence.job
        job.choices[sequence.index] = Choice(text, reason, tuple(sequence.generated))
        self._release(sequence)
        self.generated_tokens += len(sequence.generated)
        if all(choice is not None for choice in job.choices):
            self.finished_requests += 1
            _resolve(job.future, result=list(job.choices))

    def _release(self, sequence: _Sequence) -> None:
        """Free the sequence's slot, moving the highest active slot into it to keep slots contiguous."""
        self._active.remove(sequence)
        self._cache.free_slot(sequence.slot)
        highest = max(self._active, key=lambda s: s.slot, default=None)
        if highest is not None and highest.slot > sequence.slot:
            self._cache.move_slot(highest.slot, sequence.slot)
            highest.slot = sequence.slot
        if not self._active:
            self._cache = KVCache(self.model.config)  # give back the memory of a long batch

    def _drop_job(self, job: _Job) -> None:
        for sequence in [s for s in self._active if s.job is job]:
            self._release(sequence)

    def _fail_active(self, exc: Exception) -> None:
        for sequence in list(self._active):
            _resolve(sequence.job.future, exception=exc)
            self._release(sequence)

    def _fail_waiting(self, exc: Exception) -> None:
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None:
                _resolve(job.future, exception=exc)


def _resolve(future: Future, result: Any = None, exception: BaseException | None = None) -> None:
    """Settle ``future`` unless it is already settled (the caller may cancel it at any moment)."""
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass
