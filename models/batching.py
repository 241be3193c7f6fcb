"""Dynamic batching: concurrent single-item requests are gathered for a short window and run as one batch.

With many visitors classifying at once, one batched ONNX run of 16 sentences costs little more than one
run of 1 (on a GPU, almost exactly the same), so a few milliseconds of waiting buys a large throughput gain.
A lone request waits at most `max_wait_s` extra. With max_wait_s=0 nothing waits: a batch is whatever
queued up while the previous one ran, which is all the gathering a CPU-bound model needs.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class DynamicBatcher(Generic[T, R]):
    def __init__(self, run_batch: Callable[[Sequence[T]], Sequence[R]], max_batch: int = 32,
                 max_wait_s: float = 0.005, name: str = "batcher"):
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: queue.Queue[tuple[T, Future]] = queue.Queue()
        self._worker = threading.Thread(target=self._loop, name=name, daemon=True)
        self._worker.start()
        self.batches_run = 0  # observability: how much batching actually happens
        self.items_run = 0

    def submit(self, item: T) -> Future:
        future: Future = Future()
        self._queue.put((item, future))
        return future

    def __call__(self, item: T, timeout: float | None = 60) -> R:
        return self.submit(item).result(timeout=timeout)

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            deadline = time.perf_counter() + self.max_wait_s
            while len(batch) < self.max_batch:
                remaining = deadline - time.perf_counter()
                try:
                    # past the deadline, still take what is already queued (it arrived while the last batch ran)
                    batch.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
                except queue.Empty:
                    break
            items = [item for item, _ in batch]
            try:
                results = self.run_batch(items)
                if len(results) != len(items):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
            except Exception as exc:  # every waiting caller gets the error, the worker lives on
                for _, future in batch:
                    future.set_exception(exc)
                continue
            self.batches_run += 1
            self.items_run += len(items)
            for (_, future), result in zip(batch, results):
                future.set_result(result)


def length_buckets(lengths: Sequence[int], max_rows: int, max_padding: float = 0.25, slack: int = 64
                   ) -> list[list[int]]:
    """Indices grouped into batches of similar length, for padding each batch to its own longest item.

    Items are taken shortest first; a batch closes at `max_rows` or when adding the next item would make
    its padded size (rows x longest) exceed its real size by more than `max_padding` plus `slack` positions
    (a few padded positions cost less than another run). One long text among short ones then runs in its
    own batch instead of padding the others to its length; the cost of a run grows with padded positions."""
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, not {max_rows}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    real = 0
    for i in order:
        n = lengths[i]
        if current and (len(current) >= max_rows
                        or (len(current) + 1) * n > (real + n) * (1 + max_padding) + slack):
            batches.append(current)
            current, real = [], 0
        current.append(i)
        real += n
    if current:
        batches.append(current)
    return batches
