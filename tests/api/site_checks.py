"""Helpers shared by the API, security and browser tests that talk to a running site.

`site_url` is the `live_site` fixture (tests/conftest.py), unless LAB_SITE_URL points at a site that is
already running (handy while iterating: starting the site and loading its models takes a while).
"""
from __future__ import annotations

import contextlib
import json
import os
import time

import httpx
import pytest

# What gradio_client says when a handler raised something other than gr.Error (the site sets show_error=False)
GENERIC_ERRORS = ("has not enabled verbose error reporting", "Error raised.")
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/')
# Planted in the environment the site inherits (the security conftest sets it before the site starts)
CANARY_ENV = "LAB_TEST_CANARY_SECRET"
CANARY_VALUE = "canary-7f3a9c1e-not-a-real-secret"
# Imported by the conftests at collection time, so before `live_site` starts the site with this environment.
os.environ.setdefault(CANARY_ENV, CANARY_VALUE)


@pytest.fixture(scope="session")
def site_url(request) -> str:
    external = os.environ.get("LAB_SITE_URL")
    if external:
        return external.rstrip("/") + "/"
    return request.getfixturevalue("live_site")


def get_health(url: str) -> tuple[int, dict]:
    response = httpx.get(url + "health", timeout=15)
    return response.status_code, response.json()


def assert_healthy(url: str) -> dict:
    status, report = get_health(url)
    assert status == 200 and report["status"] == "ok", f"/health answered {status}: {report}"
    return report


def wait_for_active_generations(url: str, predicate, within_s: float) -> int:
    """Poll /health until predicate(active_generations) holds; return the last value seen."""
    deadline = time.monotonic() + within_s
    while True:
        active = get_health(url)[1]["active_generations"]
        if predicate(active) or time.monotonic() > deadline:
            return active
        time.sleep(0.1)


def secret_env_values() -> list[str]:
    """Values a response must never contain: the planted canary and anything that looks like a credential."""
    values = {CANARY_VALUE}
    for name, value in os.environ.items():
        if any(word in name.upper() for word in ("TOKEN", "SECRET", "PASSWORD", "API_KEY", "CREDENTIAL")) \
                and len(value) >= 8:
            values.add(value)
    return sorted(values)


def assert_no_leaks(text: str) -> None:
    for marker in TRACEBACK_MARKERS:
        assert marker not in text, f"a traceback leaked to the client: {text[:500]!r}"
    for value in secret_env_values():
        assert value not in text, "an environment secret leaked to the client"


def rest_call(http: httpx.Client, api_name: str, data, timeout: float = 120) -> tuple[int, str]:
    """gradio's REST protocol: POST the inputs, then read the event stream (the raw text a browser would get).

    One request, one stream, no state shared between calls. gradio_client shares one event stream per Client
    and loses a fast answer that arrives before it has registered the event (KeyError in stream_messages,
    gradio-app/gradio#10354): the waiting predict() then fails with an empty CancelledError. Tests that fire
    many quick calls at once use this instead."""
    posted = http.post(f"gradio_api/call/{api_name}", json={"data": data}, timeout=timeout)
    if posted.status_code != 200:
        return posted.status_code, posted.text
    event_id = posted.json()["event_id"]
    streamed = http.get(f"gradio_api/call/{api_name}/{event_id}", timeout=timeout)
    return streamed.status_code, streamed.text


def rest_outcome(text: str) -> tuple[str, object]:
    """The last event of a rest_call stream and its data: ("complete", outputs) or ("error", message)."""
    event, data = "", None
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            event, data = fields["event"], json.loads(fields.get("data", "null"))
    return event, data


def assert_clear_message(message: str, expected: str) -> None:
    """A gr.Error message a person can act on: not gradio's generic text, no traceback, says what is wrong."""
    assert not any(generic in message for generic in GENERIC_ERRORS), \
        f"generic error instead of a clear message (the handler raised something other than gr.Error): {message!r}"
    assert_no_leaks(message)
    assert expected.lower() in message.lower(), f"expected {expected!r} in the message, got {message!r}"


@contextlib.contextmanager
def flood_queue(url: str, api_name: str, data: list, queue_size: int | None = None):
    """Fill the site's queue past LAB_QUEUE_SIZE with streaming requests (gradio_client jobs, read as a browser
    reads them) and cancel every one on exit, as Stop does. Yields how many were accepted, once the site has
    refused one of them as full: the client sends them from its threads in any order, and a test's own request
    must not overtake the last of them (it did once, on a loaded machine, and was served instead of refused)."""
    from gradio_client import Client
    from gradio_client.utils import QueueError

    size = queue_size or int(os.environ.get("LAB_QUEUE_SIZE", "16"))
    running = get_health(url)[1]["decoder_slots"]
    client = Client(url, verbose=False, download_files=False)
    jobs = []
    try:
        for _ in range(running + size + 4):  # the decoder's slots run, the rest wait; a few more: surely full
            jobs.append(client.submit(*data, api_name="/" + api_name))
        deadline, refused = time.monotonic() + 60, []
        while not refused and time.monotonic() < deadline:
            time.sleep(0.1)
            refused = [job for job in jobs if job.done() and isinstance(job.exception(), QueueError)]
        assert refused, (f"the site refused none of {len(jobs)} {api_name} requests within 60 s (queue size {size}, "
                         f"{running} running): the queue never filled")
        yield len(jobs) - len(refused)
    finally:
        for job in jobs:
            job.cancel()
        client.close()
