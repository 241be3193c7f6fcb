"""Small UI helpers shared by the tabs (formatting only; no model math)."""
from __future__ import annotations

import functools
import html
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

import anyio
import gradio as gr


def badge(provider: str, precision: str, tokens_per_s: float | None = None, ttft_ms: float | None = None,
          extra: str = "") -> str:
    """The live line under a streaming output: speed, latency and what actually runs the model."""
    device = "CUDA (GPU)" if provider.startswith("CUDA") else "CPU"
    parts = [f"**{device}** · {html.escape(provider)} · {html.escape(precision)}"]
    if ttft_ms is not None:
        parts.append(f"first token {ttft_ms:.0f} ms")
    if tokens_per_s is not None:
        parts.append(f"{tokens_per_s:.1f} tokens/s")
    if extra:
        parts.append(html.escape(extra))
    return " · ".join(parts)


MAX_ERROR_CHARS = 300


def user_error(exc: Exception) -> gr.Error:
    """A message for the visitor, never a traceback. Gradio renders error toasts as HTML, and messages often
    quote the visitor's input, so the text is escaped (and shortened: a 100k-character input is not echoed)."""
    message = str(exc) or exc.__class__.__name__
    if len(message) > MAX_ERROR_CHARS:
        message = message[:MAX_ERROR_CHARS] + "…"
    return gr.Error(html.escape(message, quote=False))


def query_param(request: gr.Request | None, name: str, default: str | None = None) -> str | None:
    if request is None:
        return default
    value = request.query_params.get(name)
    return value if value is not None else default


def decoder_queue(model_id: str) -> dict:
    """Queue settings for events that stream from a decoder: one concurrency group per model, as wide as its
    engine's slots (models.engine), so every running visitor shares the batched step and the rest see their
    queue position (or "busy" past LAB_QUEUE_SIZE). With the Ray backend: what the decoder replicas take."""
    from models.backend import decoder_slots

    return {"concurrency_limit": decoder_slots(), "concurrency_id": f"decoder:{model_id}"}


_DONE = object()


def coalesced(updates: Iterator, seconds: float = 0.1) -> Iterator:
    """The first update at once, then the latest one at most every `seconds`, and always the last one.

    Each UI update re-renders the whole answer (and Generate's alternatives table) in the visitor's browser;
    one per token made a long answer keep a phone's or a loaded laptop's page too busy to take a Stop click."""
    pending, last = None, None
    for update in updates:
        now = time.monotonic()
        if last is None or now - last >= seconds:
            yield update
            pending, last = None, now
        else:
            pending = update
    if pending is not None:
        yield pending


def cancellable_stream(handler: Callable[..., Iterator]) -> Callable[..., AsyncIterator]:
    """Serve a streaming handler so that a cancelled job always closes its stream (and frees its engine slot).

    Gradio (6.17) drives a sync generator from worker threads and registers it for closing only after its
    first output; a job cancelled before that (queued in the engine, or still prefilling: the API client's
    cancel, a Stop press) left the generator suspended and its sequence decoding to the end for nobody.
    As an async generator the handler runs inside the job's task: cancelling the task raises here, and the
    `finally` closes the stream, whose own `finally` cancels the engine request."""

    @functools.wraps(handler)
    async def stream(*args, **kwargs):
        iterator = handler(*args, **kwargs)
        busy = threading.Lock()  # held while a worker thread runs the generator

        def step():
            with busy:
                return next(iterator, _DONE)

        def close():
            with busy:
                iterator.close()

        try:
            while True:
                item = await anyio.to_thread.run_sync(step)
                if item is _DONE:
                    return
                yield item
        finally:
            # Never awaits: a cancelled job can be cancelled again while it cleans up (Gradio's /cancel cancels
            # every task of the session). If the generator is mid-step in a worker thread, close it right after.
            if busy.acquire(blocking=False):
                try:
                    iterator.close()
                finally:
                    busy.release()
            else:
                threading.Thread(target=close, name="close-stream", daemon=True).start()

    return stream
