"""Continuous batching: one scheduler thread per decoder model steps every active sequence together.

A visitor's request waits in a queue, is admitted into a free slot of the model's pre-allocated KV buffer
(models.decoder.KVSlots) when its token budget fits, is prefilled in chunks interleaved with the others'
decode steps, then joins the running batch: one onnxruntime run per step for all running sequences.
A finished, stopped or cancelled sequence leaves at once and its slot is reused; when nothing runs, the
KV buffer is released. Sampling, seeds, stop strings and top-k alternatives stay per sequence
(models.decoding.SequenceState), so a sequence gives the same tokens alone or in a batch.

Why written here rather than taken from a library (checked 2026-12): onnxruntime-genai's generator
needs its own model-builder export (transformers >= 5, which would drop optimum-onnx here) and gave
garbled output in an earlier try on this project; transformers' ContinuousBatchingManager and vLLM's
scheduler run PyTorch models, not onnxruntime sessions. The design follows vLLM's: waiting queue ->
admission by KV budget -> token-budgeted chunked prefill -> one batched decode step.

Graphs without the shared-buffer attention (optimum's unfused export, e.g. fp32 on CUDA) go through the
same scheduler, but each running sequence is stepped with its own run (`batched` is False in stats).
"""
from __future__ import annotations

import itertools
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from models.decoder import DecoderGraph, KVSlots
from models.decoding import SequenceState, Step
from models.sampling import SamplingSettings

DEFAULT_SLOTS = 16  # concurrent sequences per model: on 2 cores the batched step stays < 150 ms at 16
DEFAULT_KV_BUDGET_MB = 1024  # per model; a request waits when its prompt + budget would exceed it
MIN_KV_LENGTH = 256
ABANDONED_AFTER_S = 30.0  # a consumer that has not read for this long while output piles up is gone
ABANDONED_BACKLOG = 16
RESULT_TIMEOUT_S = 120.0
_arrival = itertools.count()


def engine_slots() -> int:
    """LAB_DECODE_SLOTS: sequences one model decodes together (also Gradio's concurrency limit)."""
    return max(1, int(os.environ.get("LAB_DECODE_SLOTS", DEFAULT_SLOTS)))


def kv_budget_bytes() -> int:
    return max(1, int(os.environ.get("LAB_KV_BUDGET_MB", DEFAULT_KV_BUDGET_MB))) * 2**20


class EngineError(RuntimeError):
    """The model run failed for this request; the message is meant for the visitor."""


class Request:
    """One sequence in the engine; its Steps arrive in `outbox` (read by Engine.stream)."""

    def __init__(self, prompt_ids: Sequence[int], state: SequenceState, budget: int):
        self.prompt_ids = list(prompt_ids)
        self.state = state
        self.need = len(self.prompt_ids) + budget  # KV positions this sequence may use
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        self.cancelled = threading.Event()
        self.slot: int | None = None
        self.length = 0  # positions in the KV cache
        self.next_token: int | None = None  # sampled, not yet fed to the model
        self.cache: list | None = None  # per-sequence cache (unbatched graphs only)
        self.last_read = time.monotonic()
        self.arrival = next(_arrival)

    @property
    def prefilled(self) -> bool:
        return self.length >= len(self.prompt_ids)

    def cancel(self) -> None:
        self.cancelled.set()

    def get(self) -> Step:
        try:
            item = self.outbox.get(timeout=RESULT_TIMEOUT_S)
        except queue.Empty:
            self.cancel()
            raise EngineError("the model did not answer in time; please try again") from None
        self.last_read = time.monotonic()
        if isinstance(item, Exception):
            raise item
        return item

    def abandoned(self, now: float) -> bool:
        return self.outbox.qsize() >= ABANDONED_BACKLOG and now - self.last_read > ABANDONED_AFTER_S


class Engine:
    def __init__(self, graph: DecoderGraph, slots: int | None = None, kv_budget: int | None = None):
        self.graph = graph
        self.slots = slots or engine_slots()
        self.kv_budget = kv_budget or kv_budget_bytes()
        self.batched = graph.fused
        self._waiting: deque[Request] = deque()
        self._running: dict[int, Request] = {}  # slot -> request; touched only by the scheduler thread
        self._running_count = 0
        self._cv = threading.Condition()
        self._kv: KVSlots | None = None
        self._thread: threading.Thread | None = None
        self.counters = {"steps": 0, "rows": 0, "tokens": 0, "prefill_tokens": 0, "cancelled": 0}

    # --- what callers read ---------------------------------------------------------------------------
    @property
    def tokenizer(self):
        return self.graph.tokenizer

    @property
    def info(self):
        return self.graph.info

    @property
    def max_context(self) -> int:
        return self.graph.config.max_context

    def stats(self) -> dict:
        with self._cv:
            waiting = len(self._waiting)
        steps = self.counters["steps"]
        return {"model": self.info.model_id if self.info else None, "variant": self.info.variant if self.info else None,
                "batched": self.batched, "slots": self.slots, "running": self._running_count, "waiting": waiting,
                "kv_bytes": self._kv.nbytes if self._kv is not None else 0, "steps": steps,
                "mean_batch": round(self.counters["rows"] / steps, 2) if steps else 0.0,
                "tokens": self.counters["tokens"], "cancelled": self.counters["cancelled"]}

    @property
    def active(self) -> int:
        with self._cv:
            return len(self._waiting) + self._running_count

    # --- requests -------------------------------------------------------------------------------------
    def submit(self, prompt_ids: Sequence[int], settings: SamplingSettings, alternatives: int = 0) -> Request:
        if not prompt_ids:
            raise ValueError("the prompt is empty")
        if len(prompt_ids) + 1 > self.max_context:
            raise ValueError(f"prompt of {len(prompt_ids)} tokens does not fit the {self.max_context}-token context")
        budget = min(settings.max_new_tokens, self.max_context - len(prompt_ids))
        state = SequenceState(prompt_ids, settings, self.tokenizer, self.graph.config.eos_ids, budget, alternatives)
        request = Request(prompt_ids, state, budget)
        if request.need * self.graph.config.kv_bytes_per_token > self.kv_budget:
            raise ValueError(f"a prompt of {len(prompt_ids)} tokens plus {budget} new tokens needs more cache memory "
                             "than this server allows per model (LAB_KV_BUDGET_MB): shorten the prompt or the answer")
        with self._cv:
            self._waiting.append(request)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=f"engine-{id(self):x}", daemon=True)
                self._thread.start()
            self._cv.notify()
        return request

    def stream(self, prompt_ids: Sequence[int], settings: SamplingSettings,
               should_stop: Callable[[], bool] | None = None, alternatives: int = 0) -> Iterator[Step]:
        """Yield one Step per generated token; the last carries finish_reason. Leaving the loop early
        (Stop, a closed generator, should_stop) cancels the sequence at the engine's next step."""
        request = self.submit(prompt_ids, settings, alternatives)
        try:
            while True:
                step = request.get()
                if step.finish_reason is None and should_stop is not None and should_stop():
                    request.cancel()
                    step.finish_reason = "stopped"
                yield step
                if step.finish_reason:
                    return
        finally:
            request.cancel()

    # --- the scheduler thread ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            self._admit()
            try:
                self._prefill()
                self._decode()
            except Exception as exc:  # a failed run ends its requests with a message; the engine goes on
                for request in list(self._running.values()):
                    self._finish(request, EngineError(f"the model run failed: {exc}"))

    def _admit(self) -> None:
        with self._cv:
            self._reap()
            while not self._waiting and not self._running:
                self._kv = None  # idle: give the KV memory back
                self._cv.wait()
                self._reap()
            used = sum(r.need for r in self._running.values()) * self.graph.config.kv_bytes_per_token
            while self._waiting and len(self._running) < self.slots:
                request = self._waiting[0]
                cost = request.need * self.graph.config.kv_bytes_per_token
                if self._running and used + cost > self.kv_budget:
                    break  # waits for memory; FIFO, so a long request is not starved by short ones
                self._waiting.popleft()
                request.slot = min(set(range(self.slots)) - set(self._running))
                self._running[request.slot] = request
                used += cost
            self._running_count = len(self._running)

    def _reap(self) -> None:
        """Drop cancelled and abandoned requests (called with the lock held)."""
        now = time.monotonic()
        for request in [r for r in self._waiting if r.cancelled.is_set()]:
            self._waiting.remove(request)
            self.counters["cancelled"] += 1
        for request in list(self._running.values()):
            if request.cancelled.is_set() or request.abandoned(now):
                self._release(request)
                self.counters["cancelled"] += 1

    def _release(self, request: Request) -> None:
        self._running.pop(request.slot, None)
        request.cache = None
        request.cancel()
        self._running_count = len(self._running)

    def _finish(self, request: Request, item) -> None:
        with self._cv:  # released first, so a visitor who has the last step never sees the sequence running
            self._release(request)
        request.outbox.put(item)

    def _deliver(self, request: Request, logits: np.ndarray) -> None:
        step = request.state.advance(logits)
        self.counters["tokens"] += 1
        if step.finish_reason:
            self._finish(request, step)
        else:
            request.next_token = step.token_id
            request.outbox.put(step)

    def _kv_slots(self) -> KVSlots:
        need = max(r.need for r in self._running.values())
        if self._kv is None:
            length = MIN_KV_LENGTH
            while length < need:
                length *= 2
            self._kv = self.graph.new_slots(self.slots, min(length, max(need, self.max_context)))
        else:
            self._kv.ensure_length(need, {slot: r.length for slot, r in self._running.items()})
        return self._kv

    def _prefill(self) -> None:
        """Up to one chunk of prompt tokens this iteration, oldest requests first (vLLM's token budget)."""
        budget = self.graph.prefill_chunk()
        for request in sorted((r for r in self._running.values() if not r.prefilled), key=lambda r: r.arrival):
            if budget <= 0:
                break
            if request.cancelled.is_set():
                continue
            chunk = request.prompt_ids[request.length:request.length + budget]
            try:
                if self.batched:
                    logits = self.graph.prefill_slot(self._kv_slots(), request.slot, chunk, request.length)
                else:
                    out = self.graph.forward(chunk, request.cache, request.length)
                    logits, request.cache = out.logits, out.cache
            except Exception as exc:  # this prompt failed (e.g. out of memory): tell its visitor, go on
                self._finish(request, EngineError(f"the model run failed: {exc}"))
                continue
            request.length += len(chunk)
            budget -= len(chunk)
            self.counters["prefill_tokens"] += len(chunk)
            if request.prefilled:
                self._deliver(request, logits)

    def _decode(self) -> None:
        rows = [r for r in self._running.values() if r.prefilled and r.next_token is not None
                and not r.cancelled.is_set()]
        if not rows:
            return
        if self.batched:
            kv = self._kv_slots()
            width = max(r.slot for r in self._running.values()) + 1
            tokens, lengths = np.zeros(width, dtype=np.int64), np.zeros(width, dtype=np.int64)
            for r in self._running.values():  # rows still prefilling ride along at their next position
                lengths[r.slot] = r.length
            for r in rows:
                tokens[r.slot] = r.next_token
            logits = self.graph.decode_slots(kv, tokens, lengths)
            results = [(r, logits[r.slot]) for r in rows]
        else:
            results = []
            for r in rows:
                out = self.graph.forward([r.next_token], r.cache, r.length)
                r.cache = out.cache
                results.append((r, out.logits))
        self.counters["steps"] += 1
        self.counters["rows"] += len(rows)
        for request, row in results:
            request.length += 1
            self._deliver(request, row)


_engines: dict[tuple[str, str], Engine] = {}
_engines_lock = threading.Lock()


def get_engine(model_id: str, variant: str = "default") -> Engine:
    """The one engine of a model variant (its session is the runtime's shared one)."""
    with _engines_lock:
        key = (model_id, variant)
        if key not in _engines:
            _engines[key] = Engine(DecoderGraph.open(model_id, variant))
        return _engines[key]


def engine_stats() -> list[dict]:
    with _engines_lock:
        engines = list(_engines.values())
    return [engine.stats() for engine in engines]


def active_sequences() -> int:
    """Sequences waiting or running in every engine (what /health calls active_generations)."""
    with _engines_lock:
        engines = list(_engines.values())
    return sum(engine.active for engine in engines)
