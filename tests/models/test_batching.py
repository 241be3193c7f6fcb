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


def test_length_buckets_keep_a_long_text_out_of_a_batch_of_short_ones():
    from models.batching import length_buckets

    lengths = [10, 12, 128, 11, 9, 13]
    batches = length_buckets(lengths, max_rows=32)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert [2] in batches  # alone: padding five short texts to 128 tokens would cost ~10x their real size
    for b in batches:
        padded = len(b) * max(lengths[i] for i in b)
        assert padded <= sum(lengths[i] for i in b) * 1.25 + 64


def test_length_buckets_respect_max_rows_and_reject_zero():
    from models.batching import length_buckets

    assert [len(b) for b in length_buckets([5] * 10, max_rows=4)] == [4, 4, 2]
    with pytest.raises(ValueError, match="max_rows"):
        length_buckets([5], max_rows=0)


def test_zero_wait_batcher_runs_a_lone_request_at_once_and_gathers_a_queue():
    import time

    release = threading.Event()
    sizes = []

    def run(items):
        sizes.append(len(items))
        if len(sizes) == 1:
            release.wait(5)  # the first batch blocks while more requests queue up
        return items

    batcher = DynamicBatcher(run, max_batch=8, max_wait_s=0.0)
    first = batcher.submit(0)
    while not sizes:
        time.sleep(0.001)
    rest = [batcher.submit(i) for i in range(1, 6)]
    release.set()
    assert first.result(5) == 0 and [f.result(5) for f in rest] == [1, 2, 3, 4, 5]
    assert sizes == [1, 5]
