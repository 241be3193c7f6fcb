"""Soak test: `python -m bench.load --soak [--minutes 30]`, the site under mixed traffic for a long time.

Clients speak the browser's own protocol (POST /gradio_api/queue/join with a session hash, then read
/gradio_api/queue/data), so they can do what visitors do and the public API cannot: cancel a running
generation (POST /gradio_api/cancel, what the Stop button sends), upload a CSV and run the batch
classifier, and send bad input. Every answer is sorted into one outcome:

    ok             a real answer (or a cancelled generation that stopped)
    busy           the queue was full (503 "Queue is full"): the clear answer LAB_QUEUE_SIZE promises
    clear_error    bad input refused with a message a person can act on (what the site must do)
    unexplained    anything else: a generic error, a wrong answer, a timeout, a broken connection

Every 10 s the sampler records the server's RSS, open file descriptors, temp files (everything under the
site's GRADIO_TEMP_DIR) and /health's active counts. The goals (issue 20): 0 unexplained, RSS growth
< 10 % after warm-up, temp files bounded, active counts back to 0 at the end.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.load import REPO, health, percentile, request_for, rss_mb

# gr.Error texts are shown as they are; anything else comes back as gradio's generic text (show_error=False)
GENERIC = ("has not enabled verbose error reporting", "Error raised.")
SAMPLE_EVERY_S = 10
# (scenario, weight): what one client does next. Model calls dominate, as on the real site.
SCENARIOS = {"generate": 3, "translate": 2, "classify": 3, "attention": 2, "estimate_training": 2,
             "cancel_generate": 2, "upload_batch": 1, "bad_input": 2}
BAD_INPUTS = [  # (api, inputs, what the message must say)
    ("generate", ["", "chat", 16, 0.7, 50, 0.95, 1.1, 1, "", ""], "empty"),
    ("translate", ["Hello there", "en", "en"], "both english"),
    ("classify", ["   "], "empty"),
    ("attention", ["", "minilm-l6-v2", 0, -1], "text"),
    ("estimate_training", ["nan", "2e12", "H100-80GB", 8, "", "", "", "custom", "on-demand", 1.2, 0.4, "", ""],
     "nan"),
]
BATCH_CSV = "id,text\n" + "\n".join(
    f'{i},"{t}"' for i, t in enumerate(["Great trip, thank you!", "Two hours on hold. Never again.",
                                        "=HYPERLINK(\"http://evil.example\")", "The flight leaves at 6:40."]))


@dataclass
class Outcome:
    scenario: str
    outcome: str
    seconds: float
    detail: str = ""


@dataclass
class Soak:
    url: str
    fns: dict[str, int]  # api_name -> fn_index, from /config
    timeout_s: float
    results: list[Outcome] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            self.results.append(outcome)


def fn_indices(url: str) -> dict[str, int]:
    config = httpx.get(url + "config", timeout=30).json()
    return {d["api_name"]: d["id"] for d in config["dependencies"] if d.get("api_name")}


class Visitor:
    """One browser tab: a session hash, requests one after the other over the queue protocol."""

    def __init__(self, soak: Soak, http: httpx.Client):
        self.soak, self.http = soak, http
        self.session = uuid.uuid4().hex[:11]

    def run(self, api: str, data: list, cancel_after_first: bool = False) -> tuple[str, object]:
        """('complete' | 'error' | 'busy' | 'cancelled' | 'timeout', output or message)."""
        fn = self.soak.fns[api]
        joined = self.http.post("gradio_api/queue/join", json={
            "data": data, "fn_index": fn, "session_hash": self.session, "event_data": None, "trigger_id": None})
        if joined.status_code == 503 and "queue is full" in joined.text.lower():
            return "busy", joined.text[:120]
        if joined.status_code != 200:
            return "error", f"HTTP {joined.status_code}: {joined.text[:120]}"
        event_id = joined.json()["event_id"]
        deadline = time.monotonic() + self.soak.timeout_s
        cancelled = False
        with self.http.stream("GET", "gradio_api/queue/data", params={"session_hash": self.session}) as stream:
            for line in stream.iter_lines():
                if time.monotonic() > deadline:
                    return "timeout", f"no answer within {self.soak.timeout_s:.0f} s"
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("event_id") not in (None, event_id):
                    continue
                kind = message.get("msg")
                if kind == "process_generating" and cancel_after_first and not cancelled:
                    self.http.post("gradio_api/cancel", json={"session_hash": self.session, "fn_index": fn,
                                                               "event_id": event_id})
                    cancelled = True
                elif kind == "process_completed":
                    output = message.get("output") or {}
                    if cancelled:
                        return "cancelled", output
                    if message.get("success"):
                        return "complete", output.get("data")
                    return "error", output.get("error")
                elif kind == "close_stream":
                    break
        return ("cancelled", None) if cancelled else ("error", "stream ended without an answer")

    def upload(self, name: str, content: bytes) -> dict:
        response = self.http.post("gradio_api/upload", files={"files": (name, content, "text/csv")})
        response.raise_for_status()
        path = response.json()[0]
        return {"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def _clear(message) -> bool:
    return bool(message) and not any(g in str(message) for g in GENERIC)


def one_scenario(visitor: Visitor, scenario: str, rng: random.Random) -> tuple[str, str]:
    """Run one scenario; (outcome, detail)."""
    from bench.load import output_ok

    if scenario == "cancel_generate":
        data = ["Tell me a long story about a robot who opens a bakery.", "chat", 256, 0.8, 50, 0.95, 1.1,
                rng.randrange(2**31), "", ""]
        kind, out = visitor.run("generate", data, cancel_after_first=True)
        return ("ok", "") if kind in ("cancelled", "complete") else _unexplained_or_busy(kind, out)
    if scenario == "upload_batch":
        file = visitor.upload("reviews.csv", BATCH_CSV.encode())
        kind, out = visitor.run("classify_batch", [file, ""])
        if kind != "complete":
            return _unexplained_or_busy(kind, out)
        table = out[0]
        labels = [row[1] for row in table["data"]]
        good = len(labels) == 4 and set(labels) <= {"negative", "neutral", "positive"} and out[1]
        return ("ok", "") if good else ("unexplained", f"batch answer {str(out)[:120]}")
    if scenario == "bad_input":
        api, data, expected = rng.choice(BAD_INPUTS)
        if rng.random() < 0.3:  # a binary file passed off as CSV
            api, data, expected = "classify_batch", [visitor.upload("sheet.csv", b"PK\x03\x04\x00\x00" * 64), ""], \
                "binary"
        kind, out = visitor.run(api, data)
        if kind == "error" and _clear(out) and expected in str(out).lower():
            return "clear_error", ""
        return _unexplained_or_busy(kind, f"{api} bad input answered {kind}: {str(out)[:100]}")
    kind, out = visitor.run(scenario, request_for(scenario, rng))
    if kind == "complete":
        return ("ok", "") if output_ok(scenario, out) else ("unexplained", f"bad output {str(out)[:100]}")
    return _unexplained_or_busy(kind, out)


def _unexplained_or_busy(kind: str, detail) -> tuple[str, str]:
    return ("busy", "") if kind == "busy" else ("unexplained", f"{kind}: {str(detail)[:140]}")


def client_loop(soak: Soak, stop_at: float, seed: int) -> None:
    rng = random.Random(seed)
    names, weights = list(SCENARIOS), list(SCENARIOS.values())
    with httpx.Client(base_url=soak.url, timeout=soak.timeout_s) as http:
        visitor = Visitor(soak, http)
        while time.monotonic() < stop_at:
            scenario = rng.choices(names, weights)[0]
            start = time.monotonic()
            try:
                outcome, detail = one_scenario(visitor, scenario, rng)
            except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
                outcome, detail = "unexplained", f"{type(exc).__name__}: {exc}"[:160]
            soak.add(Outcome(scenario, outcome, time.monotonic() - start, detail))
            if outcome == "busy":
                time.sleep(1.0 + rng.random())  # a person waits a moment before trying again


def temp_files(root: Path | None) -> dict[str, float]:
    """Every file under the site's temp dir and its age in seconds (by ctime, as Gradio's cleaner judges it)."""
    if not root or not root.is_dir():
        return {}
    now, found = time.time(), {}
    for path in root.rglob("*"):
        try:
            if path.is_file():
                found[str(path)] = now - path.lstat().st_ctime
        except FileNotFoundError:  # removed while listing
            continue
    return found


def open_fds(pid: int | None) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd")) if pid else None
    except OSError:
        return None


def sampler(soak: Soak, pid: int | None, temp_root: Path | None, stop: threading.Event, started: float,
            baseline: set[str]) -> None:
    while True:
        status, report = health(soak.url)
        files = temp_files(temp_root)
        made = [age for path, age in files.items() if path not in baseline]  # by the soak, not the site's start
        soak.samples.append({"t_s": round(time.monotonic() - started), "rss_mb": rss_mb(pid), "open_fds": open_fds(pid),
                             "temp_files": len(files) if temp_root else None,
                             "oldest_temp_file_s": round(max(made)) if made else 0, "health": status,
                             "active_generations": report.get("active_generations"),
                             "active_translations": report.get("active_translations")})
        if stop.wait(SAMPLE_EVERY_S):
            return


def summarize(soak: Soak, seconds: float, warmup_s: float, temp_max_age_s: float | None) -> dict:
    by: dict[str, list[Outcome]] = defaultdict(list)
    for r in soak.results:
        by[r.scenario].append(r)
    scenarios = {}
    for name, rs in sorted(by.items()):
        done = [r.seconds for r in rs if r.outcome in ("ok", "clear_error")]
        scenarios[name] = {"n": len(rs), **dict(Counter(r.outcome for r in rs)),
                           "p50_s": round(percentile(done, 50), 2) if done else None,
                           "p95_s": round(percentile(done, 95), 2) if done else None}
    unexplained = [f"{r.scenario}: {r.detail}" for r in soak.results if r.outcome == "unexplained"]
    samples = soak.samples
    warm = next((s for s in samples if s["t_s"] >= warmup_s), samples[0]) if samples else {}
    first, last = (samples[0], samples[-1]) if samples else ({}, {})
    growth = (last["rss_mb"] / warm["rss_mb"] - 1) if warm.get("rss_mb") and last.get("rss_mb") else None
    temp = [s["temp_files"] for s in samples if s["temp_files"] is not None]
    # bounded: no file the soak caused outlives the prune age by more than one cleaning round and one sample
    limit = temp_max_age_s + max(10, temp_max_age_s // 6) + SAMPLE_EVERY_S + 5 if temp_max_age_s else None
    oldest = max((s["oldest_temp_file_s"] for s in samples), default=None)
    return {
        "seconds": round(seconds), "requests": len(soak.results),
        "outcomes": dict(Counter(r.outcome for r in soak.results)), "scenarios": scenarios,
        "unexplained_examples": unexplained[:20],
        "rss_mb": {"start": first.get("rss_mb"), "after_warmup": warm.get("rss_mb"), "end": last.get("rss_mb"),
                   "max": max((s["rss_mb"] for s in samples if s["rss_mb"]), default=None),
                   "growth_after_warmup": round(growth, 4) if growth is not None else None},
        "open_fds": {"start": first.get("open_fds"), "end": last.get("open_fds"),
                     "max": max((s["open_fds"] for s in samples if s["open_fds"]), default=None)},
        "temp_files": {"start": first.get("temp_files"), "end": last.get("temp_files"),
                       "max": max(temp, default=None), "oldest_seen_s": oldest, "allowed_age_s": limit},
        "active_at_end": {"generations": last.get("active_generations"),
                          "translations": last.get("active_translations")},
        "goals": {
            "no_unexplained_errors": not unexplained,
            "rss_growth_under_10_percent": growth is not None and growth < 0.10,
            "active_counts_back_to_0": last.get("active_generations") == 0 and last.get("active_translations") == 0,
            "temp_files_bounded": limit is not None and oldest is not None and oldest <= limit,
        },
    }


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_soak(url: str, pid: int | None, temp_root: Path | None, clients: int, minutes: float, timeout_s: float,
             seed: int, out: Path | None, temp_max_age_s: float | None = None) -> int:
    from bench.common import RESULTS_DIR, cpu_name

    soak = Soak(url=url, fns=fn_indices(url), timeout_s=timeout_s)
    seconds = minutes * 60
    warmup_s = min(120.0, seconds / 5)  # RSS growth is measured after the sessions and caches have filled
    started = time.monotonic()
    stop = threading.Event()
    baseline = set(temp_files(temp_root))
    sampling = threading.Thread(target=sampler, args=(soak, pid, temp_root, stop, started, baseline), daemon=True)
    sampling.start()
    threads = [threading.Thread(target=client_loop, args=(soak, started + seconds, seed * 1000 + i), daemon=True)
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + timeout_s + 30)
    settle = time.monotonic()  # requests still running when the time was up have finished; let counts settle
    while time.monotonic() - settle < 60:
        report = health(url)[1]
        if not report.get("active_generations") and not report.get("active_translations"):
            break
        time.sleep(1)
    stop.set()
    sampling.join(SAMPLE_EVERY_S + 20)
    sampler_once = threading.Event()
    sampler_once.set()
    sampler(soak, pid, temp_root, sampler_once, started, baseline)  # the final sample, after settling
    summary = summarize(soak, time.monotonic() - started, warmup_s, temp_max_age_s)
    payload = {"benchmark": "soak", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git_commit": git_commit(),
               "device": cpu_name(), "load_average": list(os.getloadavg()),
               "settings": {"clients": clients, "minutes": minutes, "timeout_s": timeout_s, "seed": seed,
                            "scenarios": SCENARIOS, "sample_every_s": SAMPLE_EVERY_S, "warmup_s": warmup_s,
                            "LAB_TEMP_MAX_AGE_S": os.environ.get("LAB_TEMP_MAX_AGE_S"),
                            "LAB_QUEUE_SIZE": os.environ.get("LAB_QUEUE_SIZE")},
               "summary": summary, "samples": soak.samples}
    path = out or RESULTS_DIR / f"soak-cpu-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))
    print(json.dumps(summary, indent=1))
    print(f"wrote {path}")
    return 0 if all(summary["goals"].values()) else 1
