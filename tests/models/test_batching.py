"""Dynamic batching gathers concurrent requests, keeps results in order, and survives failures."""
from __future__ import annotations

import threading

import pytest

from models.batching import DynamicBatcher


def test_concurrent_requests_share_batches_and_get_their_own_results():
    sizes = []

    def run(items):
        sizes.append(len(items))
        return [item * 10 for item in items]

    batcher = DynamicBatcher(run, max_batch=8, max_wait_s=0.05)
    results = {}
    barrier = threading.Barrier(16)

    def client(i):
        barrier.wait()
        results[i] = batcher(i)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: i * 10 for i in range(16)}
    assert max(sizes) > 1 and max(sizes) <= 8
    assert sum(sizes) == 16


def test_a_lone_request_is_not_held_back():
    batcher = DynamicBatcher(lambda items: [x + 1 for x in items], max_wait_s=0.001)
    assert batcher(41) == 42


def test_an_error_reaches_every_caller_and_the_worker_survives():
    def run(items):
        if "boom" in items:
            raise ValueError("bad input in batch")
        return items

    batcher = DynamicBatcher(run, max_wait_s=0.001)
    with pytest.raises(ValueError, match="bad input"):
        batcher("boom")
    assert batcher("fine") == "fine"
