"""The same API tests as the local backend (every endpoint, streaming, Stop proven on the server, every
bad-input message), run against a site whose models are Ray Serve replicas (LAB_BACKEND=ray), plus what only
the Ray backend has: /health naming it with replica counts, and faults.

Faults (last, they kill replicas): requests that had not started streaming are re-sent to a live replica
(none lost), a stream cut short ends with a clear message, and Serve brings the replica back. The counts go
to artifacts/ray_faults.json (and the assertion messages). One module, so the one session cluster serves all."""
from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from gradio_client import Client

from tests.api.ray_cluster import REPO, ray_site_url  # noqa: F401  (fixture)
from tests.api.site_checks import assert_clear_message, assert_healthy, get_health, rest_call, rest_outcome

# The very test functions of the local-backend modules: collected here again, with the fixtures below.
from tests.api.test_api_bad_input import *  # noqa: F401,F403
from tests.api.test_api_endpoints import *  # noqa: F401,F403

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def site_url(ray_site_url):  # noqa: F811  (overrides the local site for the tests imported above)
    return ray_site_url


@pytest.fixture(scope="module")
def client(site_url):  # noqa: F811
    client = Client(site_url, verbose=False, download_files=False)
    yield client
    client.close()


def test_health_names_the_ray_backend_with_two_running_replicas_of_each_model(site_url):
    report = assert_healthy(site_url)
    backend = report["backend"]
    assert backend["name"] == "ray" and backend["ok"]
    apps = backend["applications"]
    assert apps["decoder"]["replica_states"].get("RUNNING") >= 2
    assert apps["classifier"]["replica_states"].get("RUNNING") >= 2
    by_kind = {}
    for replica in backend["replicas"]:
        by_kind.setdefault(replica["deployment"], []).append(replica)
    assert len(by_kind["decoder"]) >= 2 and len(by_kind["classifier"]) >= 2
    assert all(r["threads"] == "1" for r in by_kind["decoder"] + by_kind["classifier"]), "1 onnxruntime thread each"
    assert len({r["pid"] for r in backend["replicas"]}) == len(backend["replicas"]), "one process per replica"
    served = {m["id"]: m for m in report["models"]}
    assert served["smollm2-135m-instruct"]["replicas"] >= 2 and served["sentiment-minilm"]["replicas"] >= 2


def test_the_footer_says_ray_serve_and_the_replica_counts(site_url):
    """The footer renders backend_text() of this very report (demos/status.py)."""
    from demos.status import backend_text

    line = backend_text(assert_healthy(site_url)["backend"])
    assert line.startswith("Ray Serve at 127.0.0.1:")
    assert re.search(r"classifier [2-9] running \[healthy\]; decoder [2-9] running \[healthy\]", line), line


# --------------------------------------------------------------------------- faults

RECOVERY_LIMIT_S = 120
LOST_MESSAGE = "stopped in the middle"


def replicas(url: str, kind: str) -> list[dict]:
    return [r for r in get_health(url)[1]["backend"]["replicas"] if r["deployment"] == kind]


def wait_for_replicas(url: str, kind: str, count: int, exclude_pid: int, within_s: float) -> float | None:
    """Seconds until `count` replicas of `kind` run and report again, none of them the killed process."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        report = get_health(url)[1]["backend"]
        running = report["applications"][kind]["replica_states"].get("RUNNING", 0)
        live = [r for r in report["replicas"] if r["deployment"] == kind and r["pid"] != exclude_pid]
        if running >= count and len(live) >= count:
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def record(name: str, counts: dict) -> None:
    path = REPO / "artifacts" / "ray_faults.json"
    path.parent.mkdir(exist_ok=True)
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[name] = counts
    path.write_text(json.dumps(data, indent=2))
    print(name, counts)


def test_killing_a_decoder_replica_mid_load_loses_no_request(ray_site_url):  # noqa: F811
    url = ray_site_url
    client = Client(url, verbose=False, download_files=False)
    try:
        jobs = [client.submit(f"Count slowly from one to forty. Run {i}.", "chat", 48, 0.7, 50, 0.95, 1.1, i, "", "",
                              api_name="/generate") for i in range(8)]
        deadline = time.monotonic() + 120
        busy = []
        while time.monotonic() < deadline and not busy:  # a replica that is streaming an answer right now
            busy = [r for r in replicas(url, "decoder") if r["active"] > 0] if any(j.outputs() for j in jobs) else []
            time.sleep(0.1)
        assert busy, "no decoder replica was streaming within 120 s"
        victim = busy[0]["pid"]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        ok, cut_short, lost = 0, 0, []
        for job in jobs:
            try:
                text = job.result(timeout=300)
                ok += bool(text and text.strip())
            except Exception as exc:  # noqa: BLE001 (classified below: a clear message, or lost)
                if LOST_MESSAGE in str(exc):
                    assert_clear_message(str(exc), LOST_MESSAGE)
                    assert any(job.outputs()), "only a stream that had started may end with the replica-lost message"
                    cut_short += 1
                else:
                    lost.append(str(exc)[:200])
        recovery = wait_for_replicas(url, "decoder", 2, victim, RECOVERY_LIMIT_S - (time.monotonic() - killed_at))
        counts = {"requests": len(jobs), "completed": ok, "cut_short_with_message": cut_short, "lost": len(lost),
                  "front_retries": get_health(url)[1]["backend"]["retries"],
                  "recovery_s": None if recovery is None else round(time.monotonic() - killed_at, 1)}
        record("decoder_kill", counts)
        assert not lost, f"requests lost: {lost} ({counts})"
        # at most the streams that replica was serving (max_ongoing 8)
        assert ok + cut_short == len(jobs) and cut_short <= 8, counts
        assert recovery is not None, f"the decoder was not back to 2 replicas within {RECOVERY_LIMIT_S} s ({counts})"
    finally:
        client.close()


def test_killing_a_classifier_replica_under_16_clients_loses_no_request(ray_site_url):  # noqa: F811
    """16 visitors, each with its own connection, classify in a loop while one replica is killed.

    They call the REST API (rest_call), not one shared gradio_client: that client drops quick answers under
    concurrency by itself (gradio-app/gradio#10354), which once failed this test before any replica died."""
    url = ray_site_url
    done, failures, stop = [], [], threading.Event()

    def visitor(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while not stop.is_set():
                try:
                    status, text = rest_call(http, "classify", [f"I love this phone, day {i}!"])
                    event, data = rest_outcome(text)
                    if status == 200 and event == "complete":
                        done.append(data[0]["label"])
                    else:
                        failures.append(f"{status} {event}: {data!r}"[:200])
                except Exception as exc:  # noqa: BLE001
                    failures.append(repr(exc)[:200])

    victim = replicas(url, "classifier")[0]["pid"]
    with ThreadPoolExecutor(16) as pool:
        for i in range(16):
            pool.submit(visitor, i)
        deadline = time.monotonic() + 120
        while len(done) < 40 and not failures and time.monotonic() < deadline:
            time.sleep(0.05)
        before, lost_before = len(done), list(failures)
        if before < 40 and not lost_before:
            stop.set()
            pytest.fail(f"16 visitors got only {before} answers in 120 s before any replica was killed")
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        time.sleep(3)  # keep the load on while Serve notices the death and routes around it
        stop.set()
    recovery = wait_for_replicas(url, "classifier", 2, victim, RECOVERY_LIMIT_S)
    counts = {"clients": 16, "answered_before_kill": before, "answered": len(done), "lost": len(failures),
              "lost_before_kill": len(lost_before), "front_retries": get_health(url)[1]["backend"]["retries"],
              "recovery_s": None if recovery is None else round(time.monotonic() - killed_at, 1)}
    record("classifier_kill", counts)
    assert not lost_before, f"requests failed before any replica was killed: {lost_before[:3]} ({counts})"
    assert not failures, f"requests lost: {failures[:3]} ({counts})"
    assert len(done) > before and set(done) == {"positive"}, counts
    assert recovery is not None, f"the classifier was not back to 2 replicas within {RECOVERY_LIMIT_S} s"
