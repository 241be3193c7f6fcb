"""python -m bench.scale: what the Ray backend buys and costs, in one short run on a cluster it starts itself.

1. Classifier throughput, 16 concurrent clients, 1 replica x 1 thread vs 2 replicas x 1 thread.
2. SmolLM2 aggregate tok/s, 16 concurrent streams, the same two set-ups.
3. One visitor: TTFT and tok/s in-process (1 onnxruntime thread, as a replica has) vs through Ray.
4. Fault: a decoder replica SIGKILLed under 16 streams: completed / cut short with a message / re-sent / lost,
   and the seconds until Serve runs 2 replicas again.
Contenders alternate round by round (the machine is shared and noisy: read ratios within this one run).
The cluster runs on a free port (scripts/cluster.sh start --no-front) and is stopped at the end, also on error.
Results: bench/results/scale-cpu-<date>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["ORT_NUM_THREADS"] = "1"  # the in-process contender gets what one replica gets

from bench.common import Report, environment, git_commit, interleave, median, ratio  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CLIENTS = 16
PROMPT = "Give me three ideas for a small business that uses AI to help local restaurants."


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """scripts/cluster.sh on a free port, decoder + classifier only (the translator is not measured here)."""

    def __init__(self):
        self.env = dict(os.environ, LAB_RAY_PORT=str(free_port()), LAB_RAY_APPS="decoder,classifier",
                        LAB_CLUSTER_DIR=str(REPO / "artifacts" / "cluster-bench"), VENV=str(Path(sys.executable).parent.parent))
        self.env.pop("ORT_NUM_THREADS")  # the head's own setting; replicas get theirs from runtime_env
        self.address = f"127.0.0.1:{self.env['LAB_RAY_PORT']}"

    def __enter__(self):
        started = subprocess.run([str(REPO / "scripts" / "cluster.sh"), "start", "--no-front"], cwd=REPO, env=self.env,
                                 capture_output=True, text=True, timeout=600)
        if started.returncode != 0:
            raise SystemExit(f"cluster start failed:\n{started.stdout[-2000:]}\n{started.stderr[-2000:]}")
        return self

    def __exit__(self, *exc):
        subprocess.run([str(REPO / "scripts" / "cluster.sh"), "stop"], cwd=REPO, env=self.env, capture_output=True,
                       timeout=120)


def deploy_single_replica_copies(address: str) -> None:
    """'decoder-1' and 'classifier-1': the same deployments with 1 replica, beside the 2-replica apps, so the
    contenders alternate without a redeploy (replicas restart and handles re-learn them) between rounds."""
    from models.ray_app import deploy, settings_from_env

    kinds = ("decoder", "classifier")
    deploy(address, kinds, {k: replace(settings_from_env(k), replicas=1) for k in kinds}, suffix="-1")


def warm(backend) -> None:
    for _ in range(3):
        backend.classify_one("warm up")
    one_stream(backend, 4, 0)


def classify_load(backend, seconds: float) -> dict:
    done, errors = [0] * CLIENTS, []
    stop_at = time.monotonic() + seconds

    def client(i: int) -> None:
        while time.monotonic() < stop_at:
            try:
                backend.classify_one(f"The flight was delayed again, visitor {i}, request {done[i]}.")
                done[i] += 1
            except Exception as exc:  # noqa: BLE001 (counted, reported)
                errors.append(repr(exc)[:120])

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))
    elapsed = time.monotonic() - started
    return {"requests_per_s": sum(done) / elapsed, "requests": sum(done), "errors": len(errors)}


def one_stream(backend, tokens: int, seed: int) -> dict:
    """Client-side TTFT and tok/s of one greedy stream."""
    from models.sampling import SamplingSettings

    settings = SamplingSettings(max_new_tokens=tokens, temperature=0, repetition_penalty=1.0, seed=seed)
    started = time.perf_counter()
    first = None
    update = None
    for update in backend.generate(PROMPT, settings, alternatives=5):
        if first is None and update.n_tokens:
            first = time.perf_counter()
    end = time.perf_counter()
    n = update.n_tokens
    return {"ttft_ms": (first - started) * 1e3, "tokens": n,
            "tokens_per_s": (n - 1) / (end - first) if n > 1 and end > first else None}


def generate_load(backend, tokens: int) -> dict:
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        runs = list(pool.map(lambda i: one_stream(backend, tokens, i), range(CLIENTS)))
    elapsed = time.monotonic() - started
    total = sum(r["tokens"] for r in runs)
    return {"aggregate_tokens_per_s": total / elapsed, "tokens": total, "seconds": elapsed,
            "median_ttft_ms": median([r["ttft_ms"] for r in runs])}


def decoders(backend) -> list[dict]:
    return [r for r in backend.replicas() if r["app"] == "decoder"]


def fault_run(backend, tokens: int) -> dict:
    """16 streams; SIGKILL the decoder replica with the most active streams once the first tokens arrive."""
    from models.ray_backend import ReplicaLost
    from models.sampling import SamplingSettings

    first_token = threading.Event()
    retries_before = backend.retries

    def stream(i: int) -> str:
        try:
            for update in backend.generate(PROMPT, SamplingSettings(max_new_tokens=tokens, temperature=0, seed=i)):
                if update.n_tokens:
                    first_token.set()
            return "completed"
        except ReplicaLost:
            return "cut_short_with_message"
        except Exception as exc:  # noqa: BLE001
            return f"lost: {exc!r}"[:160]

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(stream, i) for i in range(CLIENTS)]
        first_token.wait(120)
        busy = max(decoders(backend), key=lambda r: r["active"])
        os.kill(busy["pid"], signal.SIGKILL)
        killed_at = time.monotonic()
        outcomes = [f.result() for f in futures]
    recovered = None
    while time.monotonic() - killed_at < 180:
        running = backend.health()["applications"]["decoder"]["replica_states"].get("RUNNING", 0)
        live = [r for r in decoders(backend) if r["pid"] != busy["pid"]]
        if running >= 2 and len(live) >= 2:
            recovered = time.monotonic() - killed_at
            break
        time.sleep(0.25)
    counts = {k: outcomes.count(k) for k in ("completed", "cut_short_with_message")}
    return {"requests": CLIENTS, **counts, "lost": CLIENTS - sum(counts.values()),
            "lost_detail": [o for o in outcomes if o.startswith("lost")],
            "resent_before_streaming": backend.retries - retries_before,
            "streams_on_killed_replica": busy["active"], "recovery_s": recovered}


def table(payload: dict) -> str:
    """The Markdown table docs/scale-out.md shows, from one results file."""
    env, settings = payload["environment"], payload["settings"]
    rows = {row["measure"]: row for row in payload["rows"]}
    lines = [f"{env['device_name']}, {env['date'][:10]}, commit {settings['commit']}, load average "
             f"{env['load_average'][0]:.1f} at the start; {settings['clients']} concurrent clients, "
             f"{settings['rounds']} rounds per contender, 1 onnxruntime thread per replica.", "",
             "| measure | 1 replica | 2 replicas | ratio |", "|---|---:|---:|---:|"]
    for name in ("classifier requests/s, 16 clients", "SmolLM2 aggregate tok/s, 16 streams"):
        row = rows[name]
        lines.append(f"| {name} | {row['one']:.1f} | {row['two']:.1f} | {row['ratio']:.2f}x |")
    one, fault = rows["one visitor"], rows["fault"]
    lines += ["", "| one visitor, SmolLM2 | in-process | through Ray | difference |", "|---|---:|---:|---:|",
              f"| time to first token (ms, client side) | {one['local_ttft_ms']:.1f} | {one['ray_ttft_ms']:.1f} | "
              f"{one['added_ttft_ms']:+.1f} ms |",
              f"| tokens/s after the first | {one['local_tokens_per_s']:.1f} | {one['ray_tokens_per_s']:.1f} | "
              f"{(one['tokens_per_s_ratio'] - 1) * 100:+.1f}% |", "",
              f"Kill a decoder replica (SIGKILL) under {fault['requests']} streams: {fault['completed']} completed, "
              f"{fault['cut_short_with_message']} cut short with the message, {fault['lost']} lost, "
              f"{fault['resent_before_streaming']} re-sent before streaming; "
              + (f"2 replicas running again after {fault['recovery_s']:.1f} s." if fault["recovery_s"] is not None
                 else "the replica was not back within 180 s.")]
    return "\n".join(lines)


def summarize(clf: dict, gen: dict, visitor: dict) -> tuple[list[dict], dict]:
    """Median of each contender's rounds: the replica-scaling rows and the one-visitor overhead."""
    def med(samples, key):
        return median([s[key] for s in samples])

    rows = [
        {"measure": "classifier requests/s, 16 clients", "one": med(clf["1 replica"], "requests_per_s"),
         "two": med(clf["2 replicas"], "requests_per_s")},
        {"measure": "SmolLM2 aggregate tok/s, 16 streams", "one": med(gen["1 replica"], "aggregate_tokens_per_s"),
         "two": med(gen["2 replicas"], "aggregate_tokens_per_s")},
    ]
    for row in rows:
        row["ratio"] = ratio(row["two"], row["one"])
    overhead = {"local_ttft_ms": med(visitor["local"], "ttft_ms"), "ray_ttft_ms": med(visitor["ray"], "ttft_ms"),
                "local_tokens_per_s": med(visitor["local"], "tokens_per_s"),
                "ray_tokens_per_s": med(visitor["ray"], "tokens_per_s")}
    overhead["added_ttft_ms"] = overhead["ray_ttft_ms"] - overhead["local_ttft_ms"]
    overhead["tokens_per_s_ratio"] = ratio(overhead["ray_tokens_per_s"], overhead["local_tokens_per_s"])
    return rows, overhead


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0, help="classifier load per contender and round")
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per stream under load")
    parser.add_argument("--visitor-tokens", type=int, default=64)
    parser.add_argument("--out")
    parser.add_argument("--table", metavar="FILE", help="print the Markdown table of a results file and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return 0

    env = environment("cpu")
    report = Report("scale", env, {"clients": CLIENTS, "rounds": args.rounds, "seconds": args.seconds,
                                   "tokens": args.tokens, "visitor_tokens": args.visitor_tokens,
                                   "commit": git_commit(), "ray_threads_per_replica": 1})
    with Cluster() as cluster:
        from models.backend import LocalBackend
        from models.ray_backend import RayBackend

        log(f"cluster at {cluster.address}; deploying the 1-replica copies")
        deploy_single_replica_copies(cluster.address)
        one, two, local = RayBackend(cluster.address, "-1"), RayBackend(cluster.address), LocalBackend()
        for backend in (one, two, local):
            warm(backend)
        log("classifier, 16 clients")
        clf = interleave({"1 replica": lambda: classify_load(one, args.seconds),
                          "2 replicas": lambda: classify_load(two, args.seconds)}, rounds=args.rounds, warmup=0, log=log)
        log("SmolLM2, 16 streams")
        gen = interleave({"1 replica": lambda: generate_load(one, args.tokens),
                          "2 replicas": lambda: generate_load(two, args.tokens)}, rounds=args.rounds, warmup=0, log=log)
        log("one visitor: in-process vs Ray")
        visitor = interleave({"local": lambda: one_stream(local, args.visitor_tokens, 1),
                              "ray": lambda: one_stream(two, args.visitor_tokens, 1)},
                             rounds=args.rounds + 1, warmup=0, log=log)
        log("fault: kill a decoder replica under 16 streams")
        fault = fault_run(two, args.tokens)
        log(f"  {fault}")

    rows, overhead = summarize(clf, gen, visitor)
    report.rows = rows + [dict(measure="one visitor", **overhead), dict(measure="fault", **fault)]
    report.samples = {"classifier": clf, "decoder": gen, "one_visitor": visitor}
    report.notes = ["shared 2-core machine (other agents' jobs running): ratios are from this one run, "
                    "contenders alternated round by round; each replica and the in-process contender use 1 "
                    "onnxruntime thread; load generated by 16 threads in the bench process (the front's role)"]
    path = report.write(Path(args.out) if args.out else None)
    for row in rows:
        print(f"{row['measure']}: 1 replica {row['one']:.1f}, 2 replicas {row['two']:.1f}, x{row['ratio']:.2f}")
    print(f"one visitor: {overhead}")
    print(f"fault: {fault}")
    print(table(json.loads(path.read_text())))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
