"""Concurrent visitors through the whole site: N `/generate` clients at once vs one, on loopback.

    python -m bench.site_streams                      # starts app.py itself (models must be exported)
    python -m bench.site_streams --url http://127.0.0.1:7860/ --clients 1,16 --tokens 64

Each client sends one greedy completion request (its own prompt) through gradio_client and waits for the
whole answer; tokens are counted with the model's tokenizer on the returned text. Total throughput = all
tokens / wall time from the common start. Writes bench/results/site-streams-<device>-<date>.json.
"""
from __future__ import annotations

import argparse
import sys
import time

from bench.common import Report, environment, ort_device, ratio, run_at_once

PROMPTS = ["Once upon a time, in a city full of robots,", "The three biggest costs of training a model are",
           "A startup that sells to restaurants should", "The history of the GPU began when",
           "In the year 2030, small language models", "Our team learned three lessons this year:",
           "The best way to explain attention is", "Every founder should measure"]


def run_clients(url: str, clients: int, tokens: int) -> dict:
    from gradio_client import Client

    from models.generation import GENERATION_MODEL
    from models.tokenization import get_tokenizer

    tokenizer = get_tokenizer(GENERATION_MODEL)
    connections = [Client(url, verbose=False, download_files=False) for _ in range(clients)]
    texts: list[str | None] = [None] * clients
    errors: list[str] = []
    latencies: list[float] = [0.0] * clients

    def visitor(index: int):
        start = time.perf_counter()
        try:
            texts[index] = connections[index].predict(PROMPTS[index % len(PROMPTS)], "completion", tokens, 0, 50, 1.0,
                                                      1.0, index, "", "", api_name="/generate")
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
        latencies[index] = time.perf_counter() - start

    _, wall = run_at_once(visitor, clients)
    for client in connections:
        client.close()
    counted = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts if t]
    return {"clients": clients, "errors": len(errors), "error_samples": errors[:3], "tokens": sum(counted),
            "wall_s": wall, "tok_s": sum(counted) / wall if wall else None,
            "latency_s_max": max(latencies), "latency_s_median": sorted(latencies)[len(latencies) // 2]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.site_streams", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="site to load (default: start app.py on a free port)")
    parser.add_argument("--clients", default="1,16", help="comma-separated client counts")
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args(argv)
    from bench.load import start_site

    proc, url = (None, args.url) if args.url else start_site()
    try:
        counts = [int(c) for c in args.clients.split(",")]
        run_clients(url, 1, 8)  # warm-up: sessions loaded, first-call costs out of the way
        results = [run_clients(url, n, args.tokens) for n in counts]
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
    single = next((r["tok_s"] for r in results if r["clients"] == 1), None)
    for r in results:
        r["x_one_client"] = ratio(r["tok_s"], single)
        print(f"{r['clients']:>3} clients: {r['tok_s']:.1f} tok/s total ({r['x_one_client'] or 0:.2f}× one client), "
              f"{r['errors']} errors, slowest answer {r['latency_s_max']:.1f} s", flush=True)
    report = Report("site-streams", environment(ort_device()), {"tokens": args.tokens, "clients": counts,
                                                                 "prompts": PROMPTS})
    report.rows = results
    print(f"results: {report.write()}")
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
