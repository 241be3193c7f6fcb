"""Dynamic batching: concurrent single-item requests are gathered for a short window and run as one batch.

With many visitors classifying at once, one batched ONNX run of 16 sentences costs little more than one
run of 1 (on a GPU, almost exactly the same), so a few milliseconds of waiting buys a large throughput gain.
A lone request waits at most `max_wait_s` extra.
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
                if remaining <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=remaining))
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
