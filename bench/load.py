"""Load test: N concurrent clients mixing every public API of the site, on loopback.

    python -m bench.load --url http://127.0.0.1:7860/ --clients 20 --seconds 60
    python -m bench.load --clients 20 --seconds 60        # starts the site itself (app.py --no-export)
    python -m bench.load --soak --minutes 30 --clients 6  # soak: cancels, uploads, bad input; RSS, fds, temp files

Each client is a closed loop (send, wait for the whole answer, send the next) over gradio's REST protocol
(POST /gradio_api/call/<api>, then read the event stream), so what it measures is what any HTTP client sees,
including the queue's own refusals: a full queue answers 503 "Queue is full" before any work is done, and
that is counted as a clear "busy" answer, not as an error. Reports requests, outcomes by kind, p50/p95
latency (and time to the first streamed output) per endpoint, and /health before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MIX = "generate=3,translate=2,classify=3,attention=2,estimate_training=2"

# Inputs per endpoint: small, realistic requests (a visitor's first try), varied so no cache helps.
PROMPTS = ["Write a haiku about startups.", "Explain what a GPU is in one sentence.",
           "Give me one idea for an AI product for restaurants.", "What is a transformer model?"]
SENTENCES = ["The meeting has been moved to Thursday afternoon.", "Our team ships a new version every week.",
             "Where is the nearest train station?", "Startups must keep inference costs under control."]
REVIEWS = ["The staff were friendly and my bag arrived before I did. Great trip!",
           "Two hours on hold and the refund still hasn't come through. Never again.",
           "The flight to Denver leaves at 6:40 tomorrow morning.", "Not bad at all."]


def request_for(api: str, rng: random.Random) -> list:
    if api == "generate":
        return [rng.choice(PROMPTS), "chat", 32, 0.7, 50, 0.95, 1.1, rng.randrange(2**31), "", ""]
    if api == "translate":
        return [rng.choice(SENTENCES), "en", rng.choice(["zh", "fr", "de"])]
    if api == "classify":
        return [rng.choice(REVIEWS)]
    if api == "attention":
        model = "smollm2-135m-instruct" if rng.random() < 0.3 else "minilm-l6-v2"
        return [rng.choice(SENTENCES), model, 0, -1]
    if api == "estimate_training":
        return [f"{rng.choice([1, 7, 13, 70])}e9", f"{rng.choice([1, 2, 15])}e12",
                rng.choice(["H100-80GB", "A100-80GB"]), rng.choice([64, 512, 1024]), "", "", "", "custom",
                "on-demand", 1.2, 0.4, "", ""]
    raise ValueError(f"unknown api {api!r}")


def output_ok(api: str, data) -> bool:
    """Does a completed answer look like a real answer (not an empty or malformed one)?"""
    try:
        if api in ("generate", "translate"):
            return isinstance(data[0], str) and bool(data[0].strip())
        if api == "classify":
            return data[0]["label"] in ("negative", "neutral", "positive")
        if api == "attention":
            return data[0]["type"] == "plotly" and len(data[1]["data"]) >= 2
        if api == "estimate_training":
            return data[1]["gpu_hours"] > 0
    except (TypeError, KeyError, IndexError):
        return False
    return False


@dataclass
class Result:
    api: str
    outcome: str  # ok | busy | app_error | bad_output | http_<code> | timeout | connection
    seconds: float
    first_output_s: float | None = None
    detail: str = ""


@dataclass
class Stats:
    results: list[Result] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, result: Result) -> None:
        with self.lock:
            self.results.append(result)


def call(http: httpx.Client, api: str, data: list, timeout_s: float) -> Result:
    start = time.monotonic()
    try:
        posted = http.post(f"gradio_api/call/{api}", json={"data": data}, timeout=timeout_s)
        if posted.status_code == 503 and "queue is full" in posted.text.lower():
            return Result(api, "busy", time.monotonic() - start, detail=posted.json().get("detail", "")[:120])
        if posted.status_code != 200:
            return Result(api, f"http_{posted.status_code}", time.monotonic() - start, detail=posted.text[:120])
        event_id = posted.json()["event_id"]
        first = None
        event = None
        deadline = start + timeout_s
        with http.stream("GET", f"gradio_api/call/{api}/{event_id}", timeout=timeout_s) as stream:
            for line in stream.iter_lines():
                if time.monotonic() > deadline:
                    return Result(api, "timeout", time.monotonic() - start, first)
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("generating", "complete", "error"):
                    payload = json.loads(line.split(":", 1)[1].strip() or "null")
                    if event == "generating" and first is None:
                        first = time.monotonic() - start
                    elif event == "complete":
                        elapsed = time.monotonic() - start
                        if first is None:
                            first = elapsed
                        return Result(api, "ok" if output_ok(api, payload) else "bad_output", elapsed, first,
                                      "" if output_ok(api, payload) else str(payload)[:120])
                    elif event == "error":
                        message = (payload or {}).get("error") if isinstance(payload, dict) else payload
                        kind = "busy" if message and "busy" in str(message).lower() else "app_error"
                        return Result(api, kind, time.monotonic() - start, first, str(message)[:120])
        return Result(api, "connection", time.monotonic() - start, first, "stream ended without an answer")
    except httpx.TimeoutException:
        return Result(api, "timeout", time.monotonic() - start)
    except (httpx.HTTPError, ValueError) as exc:
        return Result(api, "connection", time.monotonic() - start, detail=f"{type(exc).__name__}: {exc}"[:120])


def client_loop(url: str, apis: list[str], weights: list[float], stop_at: float, timeout_s: float, seed: int,
                stats: Stats, busy_backoff_s: float) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=timeout_s) as http:
        while time.monotonic() < stop_at:
            api = rng.choices(apis, weights)[0]
            result = call(http, api, request_for(api, rng), timeout_s)
            stats.add(result)
            if result.outcome == "busy":  # a person (or a polite client) waits a moment before trying again
                time.sleep(busy_backoff_s * (0.5 + rng.random()))


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def health(url: str) -> tuple[int, dict]:
    try:
        response = httpx.get(url + "health", timeout=15)
        return response.status_code, response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return 0, {"error": str(exc)}


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of the site's process (only known when this script started it)."""
    if not pid:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        return None
    return None


def start_site(timeout_s: float = 300, extra_env: dict | None = None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (REPO / "artifacts").mkdir(exist_ok=True)
    log = open(REPO / "artifacts" / "bench-load-site.log", "w")
    env = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1",
               **(extra_env or {}))
    proc = subprocess.Popen([sys.executable, "app.py", "--no-export", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the site exited with {proc.returncode}; see artifacts/bench-load-site.log")
        if health(url)[0] == 200:
            return proc, url
        time.sleep(1)
    proc.kill()
    raise SystemExit("the site did not become healthy; see artifacts/bench-load-site.log")


def report(results: list[Result], seconds: float, clients: int) -> tuple[str, dict]:
    by_api: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by_api[r.api].append(r)
    outcomes = Counter(r.outcome for r in results)
    errors = {k: v for k, v in outcomes.items() if k not in ("ok", "busy")}
    summary = {
        "clients": clients, "seconds": round(seconds, 1), "requests": len(results),
        "ok": outcomes.get("ok", 0), "busy": outcomes.get("busy", 0), "errors": errors,
        "throughput_rps": round(len(results) / seconds, 2) if seconds else 0.0, "endpoints": {},
    }
    lines = [f"{len(results)} requests from {clients} clients in {seconds:.0f} s "
             f"({summary['throughput_rps']} req/s): {summary['ok']} ok, {summary['busy']} busy (clear queue-full "
             f"answer), {sum(errors.values())} errors {dict(sorted(errors.items())) or ''}".rstrip(),
             "", f"{'endpoint':<18} {'n':>5} {'ok':>5} {'busy':>5} {'err':>5} {'p50 s':>7} {'p95 s':>7} "
             f"{'first p50':>9} {'first p95':>9}"]
    for api in sorted(by_api):
        rs = by_api[api]
        done = [r.seconds for r in rs if r.outcome == "ok"]
        firsts = [r.first_output_s for r in rs if r.outcome == "ok" and r.first_output_s is not None]
        n_err = sum(1 for r in rs if r.outcome not in ("ok", "busy"))
        n_busy = sum(1 for r in rs if r.outcome == "busy")
        row = {"n": len(rs), "ok": len(done), "busy": n_busy, "errors": n_err,
               "p50_s": round(percentile(done, 50), 2) if done else None,
               "p95_s": round(percentile(done, 95), 2) if done else None,
               "first_output_p50_s": round(percentile(firsts, 50), 2) if firsts else None,
               "first_output_p95_s": round(percentile(firsts, 95), 2) if firsts else None,
               "error_kinds": dict(Counter(r.outcome for r in rs if r.outcome not in ("ok", "busy")))}
        summary["endpoints"][api] = row

        def fmt(x):
            return f"{x:.2f}" if x is not None else "-"

        lines.append(f"{api:<18} {len(rs):>5} {len(done):>5} {n_busy:>5} {n_err:>5} {fmt(row['p50_s']):>7} "
                     f"{fmt(row['p95_s']):>7} {fmt(row['first_output_p50_s']):>9} {fmt(row['first_output_p95_s']):>9}")
    samples = {}
    for r in results:
        if r.outcome not in ("ok",) and r.detail and r.outcome not in samples:
            samples[r.outcome] = f"{r.api}: {r.detail}"
    if samples:
        lines += ["", "examples:"] + [f"  {k}: {v}" for k, v in sorted(samples.items())]
    return "\n".join(lines), summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="site to load (default: start app.py on a free port)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--timeout", type=float, default=180, help="per-request limit, seconds")
    parser.add_argument("--mix", default=DEFAULT_MIX, help=f"endpoint weights (default {DEFAULT_MIX})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--busy-backoff", type=float, default=2.0, help="seconds a client waits after a busy answer")
    parser.add_argument("--json", type=Path, help="also write the summary as JSON here")
    parser.add_argument("--soak", action="store_true", help="soak mode (bench/soak.py): mixed visitors for --minutes")
    parser.add_argument("--minutes", type=float, default=30, help="soak duration (default 30)")
    parser.add_argument("--temp-max-age", type=int, default=300,
                        help="soak: LAB_TEMP_MAX_AGE_S of the site it starts, so temp-file pruning shows within the run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.soak:
        return soak_main(args)

    mix = dict(part.split("=") for part in args.mix.split(","))
    apis, weights = list(mix), [float(w) for w in mix.values()]
    proc = None
    url = args.url
    if not url:
        print("starting the site (app.py --no-export)...", flush=True)
        proc, url = start_site()
    url = url.rstrip("/") + "/"
    try:
        status, before = health(url)
        print(f"{url} /health {status}, active_generations {before.get('active_generations')}, "
              f"server RSS {rss_mb(proc.pid if proc else None) or '?'} MB", flush=True)
        stats = Stats()
        started = time.monotonic()
        stop_at = started + args.seconds
        threads = [threading.Thread(target=client_loop, daemon=True, name=f"client-{i}",
                                    args=(url, apis, weights, stop_at, args.timeout, args.seed * 1000 + i, stats,
                                          args.busy_backoff))
                   for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(args.seconds + args.timeout + 30)
        elapsed = time.monotonic() - started
        text, summary = report(stats.results, elapsed, args.clients)
        print(text)
        settle = time.monotonic()
        while health(url)[1].get("active_generations") and time.monotonic() - settle < 30:
            time.sleep(0.5)
        status, after = health(url)
        summary["health_after"] = {"status": status, "active_generations": after.get("active_generations")}
        summary["server_rss_mb_after"] = rss_mb(proc.pid if proc else None)
        print(f"\nafter: /health {status}, active_generations {after.get('active_generations')}, "
              f"server RSS {summary['server_rss_mb_after'] or '?'} MB; requests still running when the "
              f"{args.seconds:.0f} s ended were allowed to finish (wall {elapsed:.0f} s)")
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2))
        return 0 if status == 200 else 1
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def soak_main(args) -> int:
    import tempfile

    from bench.soak import run_soak

    proc, temp_root = None, None
    url = args.url
    if not url:
        temp_root = Path(tempfile.mkdtemp(prefix="lab-soak-gradio-"))  # the site's temp files, counted exactly
        print(f"starting the site (app.py --no-export), GRADIO_TEMP_DIR={temp_root}...", flush=True)
        proc, url = start_site(extra_env={"GRADIO_TEMP_DIR": str(temp_root),
                                          "LAB_TEMP_MAX_AGE_S": str(args.temp_max_age)})
        os.environ["LAB_TEMP_MAX_AGE_S"] = str(args.temp_max_age)  # recorded in the results
    try:
        return run_soak(url.rstrip("/") + "/", proc.pid if proc else None, temp_root, args.clients, args.minutes,
                        args.timeout, args.seed, args.json, args.temp_max_age if proc else None)
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    raise SystemExit(main())
