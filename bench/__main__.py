"""python -m bench generate|translate|classify|all [options]

Benchmarks the site's own runtime (every variant in each model's build manifest, e.g. fp32 and the CPU
int4/int8 variants) against PyTorch on the same device in the same run, and prints a Markdown table:

  generate   SmolLM2-135M-Instruct, greedy, batch 1: tok/s, TTFT, CPU ms/token, ratios vs PyTorch fp32,
             and how many leading tokens agree with onnxruntime fp32
  translate  Qwen2.5-Coder-0.5B-Instruct on the site's translation prompt: same columns
  classify   sentiment-minilm: batch-1 latency p50/p95, batched throughput, max probability difference

Device: MODEL_DEVICE=cpu|cuda (as for the site). On CUDA, PyTorch runs in float32 and float16.
Results: bench/results/<name>-<device>-<date>.json (environment, settings, rows, raw samples).

Examples:
  LAB_MODEL_DIR=/tmp/labcache python -m bench generate --tokens 64 --rounds 3
  python -m bench generate --streams 1,4,16
  python -m bench translate --variants fp32 int8 --streams 1,16
  MODEL_DEVICE=cuda python -m bench all
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# PyTorch's OpenMP threads spin while they wait; on a shared 2-core machine that made a 13 ms MiniLM call take
# 300-600 ms with 2 threads. Passive waiting is what a fair comparison wants (onnxruntime has its own pool).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

BENCHMARKS = ("generate", "translate", "classify")


def stream_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--streams takes whole numbers separated by commas, got {text!r}") from None
    if not counts or any(n < 1 or n > 64 for n in counts):
        raise argparse.ArgumentTypeError("--streams: each count between 1 and 64")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=[*BENCHMARKS, "all"])
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per decode run (generate/translate)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; contenders are interleaved per round")
    parser.add_argument("--streams", type=stream_counts, default=(),
                        help="comma-separated stream counts, e.g. 1,4,16: that many concurrent visitors through the "
                             "engine (aggregate tok/s, inter-token latency p50/p95)")
    parser.add_argument("--variants", nargs="+", help="manifest variants to run (default: fp32 + the device's)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--out", help="directory for the JSON results (default bench/results)")
    args = parser.parse_args(argv)

    from pathlib import Path

    from bench import classify, generate, translate
    from models.runtime import RuntimeUnavailable

    modules = {"generate": generate, "translate": translate, "classify": classify}
    chosen = BENCHMARKS if args.which == "all" else (args.which,)
    status = 0
    for name in chosen:
        module = modules[name]
        try:
            report = module.run(tokens=args.tokens, rounds=args.rounds, streams=args.streams,
                                variants=args.variants if args.which != "all" else None,
                                with_torch=not args.no_torch, log=lambda m: print(m, file=sys.stderr, flush=True))
        except RuntimeUnavailable as exc:
            print(f"{name}: skipped: {exc}", file=sys.stderr)
            status = 1
            continue
        path = report.write(Path(args.out) if args.out else None)
        extra = f"\n\n{module.concurrency_table(report.concurrency)}" if report.concurrency else ""
        print(f"\n## {name}\n\n{report.header()}\n\n{module.table(report.rows)}{extra}\n\nresults: {path}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
