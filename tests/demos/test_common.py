"""demos.common.cancellable_stream: what Gradio runs for every streaming tab, so that a cancelled job always
closes its generator (whose `finally` frees the engine slot), even when it is cancelled mid-step or twice."""
from __future__ import annotations

import asyncio
import inspect
import threading

from demos.common import cancellable_stream


def counting(n: int, log: list, gate: threading.Event | None = None):
    """Yields 0..n-1; with a gate, blocks before each item the way a stream waits for the engine's next step."""
    try:
        for i in range(n):
            if gate is not None:
                gate.wait(5)
                gate.clear()
            yield i
    finally:
        log.append("closed")


async def collect(stream) -> list:
    return [item async for item in stream]


def test_it_is_an_async_generator_with_the_handlers_signature_and_items():
    wrapped = cancellable_stream(counting)
    assert inspect.isasyncgenfunction(wrapped)
    assert list(inspect.signature(wrapped).parameters) == ["n", "log", "gate"]  # the API page reads these
    log: list = []
    assert asyncio.run(collect(wrapped(4, log))) == [0, 1, 2, 3]
    assert log == ["closed"]


def test_errors_of_the_handler_reach_the_caller():
    def failing():
        yield 1
        raise ValueError("the prompt is empty")

    async def run():
        try:
            await collect(cancellable_stream(failing)())
        except ValueError as exc:
            return str(exc)

    assert asyncio.run(run()) == "the prompt is empty"


def test_a_job_cancelled_mid_step_closes_the_generator_once_the_step_ends():
    log: list = []
    gate = threading.Event()

    async def run():
        task = asyncio.create_task(collect(cancellable_stream(counting)(100, log, gate)))
        await asyncio.sleep(0.2)  # the first step is waiting in a worker thread (no output yet)
        task.cancel()
        task.cancel()  # Gradio's /cancel cancels every task of the session: cancels can pile up
        try:
            await task
        except asyncio.CancelledError:
            pass
        assert log == [], "closed while its step was still running"
        gate.set()  # the step in flight ends; the generator is then closed, not left suspended

    asyncio.run(run())
    for _ in range(100):
        if log:
            break
        threading.Event().wait(0.05)
    assert log == ["closed"]


def test_a_job_cancelled_between_steps_closes_the_generator_at_once():
    log: list = []
    gate = threading.Event()

    async def run():
        stream = cancellable_stream(counting)(100, log, gate)
        gate.set()
        assert await anext(stream) == 0
        await stream.aclose()  # what Gradio does on Stop once the stream has produced something
        assert log == ["closed"]

    asyncio.run(run())


def test_coalesced_shows_the_first_update_at_once_then_the_latest_and_always_the_last(monkeypatch):
    from demos import common

    clock = iter([0.0, 0.03, 0.06, 0.12, 0.15, 0.16])
    monkeypatch.setattr(common.time, "monotonic", lambda: next(clock))
    assert list(common.coalesced(iter("abcdef"), seconds=0.1)) == ["a", "d", "f"]
    assert list(common.coalesced(iter([]))) == []
