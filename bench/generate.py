"""`python -m bench generate`: decode speed of the Generate tab's model (SmolLM2-135M-Instruct).

Contenders, in the same run, interleaved round by round, all decoding greedily from the same prompt ids and
producing exactly `--tokens` tokens (EOS ignored):
- every variant in the build manifest through the site's own engine (models.engine: the same scheduler,
  KV buffer and sampling code that serve visitors);
- llama.cpp (llama-cpp-python, optional: requirements-bench.txt) on the packaged GGUF file the weights come
  from, with the same number of threads: what a user would pick instead;
- PyTorch `generate` on the same weights (export.torch_models.load_model; sdpa attention).
The table shows for how many leading tokens each contender agrees with onnxruntime fp32.

Measured per run: TTFT (prompt in -> first token out), decode tok/s after the first token, and the process
CPU time per decoded token. The table shows medians over the rounds and the best round's tok/s.
`--streams 1,4,16` adds, for the served variant, N concurrent streams through the engine: aggregate tok/s
and per-stream inter-token latency p50/p95.
"""
from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence

from bench.common import (
    Column,
    Report,
    environment,
    interleave,
    markdown_table,
    median,
    ort_device,
    percentile,
    ratio,
    run_at_once,
    variants_for,
)

GENERATE_PROMPT = "Write a short story about a robot who learns to paint."


def first_mismatch(tokens: list[int], reference: list[int]) -> int:
    """How many leading tokens agree."""
    for index, (a, b) in enumerate(zip(tokens, reference)):
        if a != b:
            return index
    return min(len(tokens), len(reference))


def _sample(start: float, times: list[float], ids: list[int], cpu_first: float | None, cpu_end: float) -> dict:
    n = len(times)
    decode = times[-1] - times[0] if n > 1 else None
    return {
        "ttft_ms": (times[0] - start) * 1000 if times else None,
        "tok_s": (n - 1) / decode if decode else None,
        "cpu_ms_per_token": (cpu_end - cpu_first) * 1000 / (n - 1) if n > 1 and cpu_first is not None else None,
        "tokens": ids,
    }


# --- onnxruntime (the site's engine) ---------------------------------------------------------------------

def greedy_settings(tokens: int):
    from models.sampling import SamplingSettings

    return SamplingSettings(max_new_tokens=tokens, temperature=0, repetition_penalty=1.0, ignore_eos=True)


def timed_stream(steps) -> tuple[list[float], list[int], float | None]:
    """Arrival time of every token (a Step or a token id), the ids, and the CPU clock at the first one."""
    times, ids, cpu_first = [], [], None
    for step in steps:
        times.append(time.perf_counter())
        if cpu_first is None:
            cpu_first = time.process_time()
        ids.append(step.token_id if hasattr(step, "token_id") else int(step))
    return times, ids, cpu_first


def onnx_runner(model_id: str, variant: str, prompt_ids: list[int], tokens: int) -> tuple[Callable[[], dict], object]:
    from models.engine import get_engine

    engine = get_engine(model_id, variant)
    settings = greedy_settings(tokens)

    def run() -> dict:
        start = time.perf_counter()
        times, ids, cpu_first = timed_stream(engine.stream(prompt_ids, settings))
        return _sample(start, times, ids, cpu_first, time.process_time())

    return run, engine


# --- llama.cpp (the peer) ---------------------------------------------------------------------------------

LLAMACPP_PROBE = """
import itertools, sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=64, n_threads=1, verbose=False)
print(list(itertools.islice(llm.generate([1, 2, 3], temp=0.0, top_k=1), 2)))
"""


def llamacpp_problem(gguf: str) -> str | None:
    """None when llama.cpp decodes here; else why not. Probed in a child process: a build for the wrong CPU
    (e.g. AMX kernels the kernel does not grant) dies with SIGILL, which would take the benchmark with it."""
    import subprocess
    import sys

    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return "llama-cpp-python is not installed (make bench-peers)"
    probe = subprocess.run([sys.executable, "-c", LLAMACPP_PROBE, gguf], capture_output=True, text=True, timeout=300)
    return None if probe.returncode == 0 else f"llama.cpp probe failed (exit {probe.returncode}): {probe.stderr[-200:]}"


def llamacpp_runner(model_id: str, prompt_ids: list[int], tokens: int) -> Callable[[], dict] | str:
    """llama-cpp-python on the packaged GGUF, greedy, same threads; a string saying why when it cannot run."""
    from models.registry import get_spec
    from models.runtime import cpu_threads
    from models.sources import source_path

    problem = llamacpp_problem(str(source_path(get_spec(model_id))))
    if problem:
        return problem
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(source_path(get_spec(model_id))), n_ctx=len(prompt_ids) + tokens + 8,
                          n_threads=cpu_threads(), n_threads_batch=cpu_threads(), n_batch=512, verbose=False)

    def generate_timed() -> dict:
        llm.reset()
        start = time.perf_counter()
        # temp 0 is llama.cpp's greedy sampler; EOS is not special-cased, the loop takes exactly `tokens`
        tokens_out = llm.generate(prompt_ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0)
        times, ids, cpu_first = timed_stream(itertools.islice(tokens_out, tokens))
        return _sample(start, times, ids, cpu_first, time.process_time())

    return generate_timed


# --- PyTorch (HF generate) -------------------------------------------------------------------------------

def torch_model(model_id: str, dev: str, dtype: str):
    import torch

    from export.torch_models import load_model
    from models.registry import get_spec
    from models.runtime import cpu_threads

    if dev == "cpu":
        torch.set_num_threads(cpu_threads())  # the same number of cores as onnxruntime gets
    model = load_model(get_spec(model_id), attn_implementation="sdpa")
    return model.to(device=dev, dtype=getattr(torch, dtype)).eval()


def torch_runner(model, prompt_ids: list[int], tokens: int, dev: str, pad_token_id: int) -> Callable[[], dict]:
    import torch
    from transformers.generation.streamers import BaseStreamer

    class TimingStreamer(BaseStreamer):
        """generate() calls put() once with the prompt, then once per new token (on the host, after sync)."""

        def __init__(self):
            self.calls = 0
            self.times: list[float] = []
            self.cpu_first: float | None = None

        def put(self, value):
            self.calls += 1
            if self.calls > 1:
                self.times.append(time.perf_counter())
                if self.cpu_first is None:
                    self.cpu_first = time.process_time()

        def end(self):
            pass

    input_ids = torch.tensor([prompt_ids], device=dev)
    mask = torch.ones_like(input_ids)

    def run() -> dict:
        streamer = TimingStreamer()
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids, attention_mask=mask, max_new_tokens=tokens, min_new_tokens=tokens,
                                 do_sample=False, temperature=None, top_p=None, top_k=None, streamer=streamer,
                                 pad_token_id=pad_token_id)
        ids = out[0, len(prompt_ids):].tolist()
        return _sample(start, streamer.times, ids, streamer.cpu_first, time.process_time())

    return run


# --- concurrent streams through the engine ----------------------------------------------------------------

def concurrent_streams(engine, prompt_ids: list[int], tokens: int, streams: int) -> dict:
    """`streams` visitors at once, each its own greedy stream through one engine: aggregate tok/s (all tokens /
    wall time from the common start) and every stream's inter-token latency (p50/p95 over all gaps)."""
    settings = greedy_settings(tokens)
    results: list[tuple[list[float], list[int]]] = [([], [])] * streams
    errors: list[BaseException] = []

    def worker(index: int):
        try:
            times, ids, _ = timed_stream(engine.stream(prompt_ids, settings))
            results[index] = (times, ids)
        except BaseException as exc:  # noqa: BLE001 - reported after join
            errors.append(exc)

    start, wall = run_at_once(worker, streams)
    if errors:
        raise errors[0]
    gaps = [(b - a) * 1000 for times, _ in results for a, b in zip(times, times[1:])]
    ttfts = [(times[0] - start) * 1000 for times, _ in results if times]
    return {"streams": streams, "agg_tok_s": sum(len(ids) for _, ids in results) / wall,
            "itl_ms_p50": percentile(gaps, 50), "itl_ms_p95": percentile(gaps, 95),
            "ttft_ms_p50": percentile(ttfts, 50), "ttft_ms_p95": percentile(ttfts, 95),
            "same_tokens_all_streams": len({tuple(ids) for _, ids in results}) == 1}


# --- the benchmark ---------------------------------------------------------------------------------------

def torch_dtypes(dev: str) -> list[str]:
    return ["float32", "float16"] if dev == "cuda" else ["float32"]


def decoder_benchmark(name: str, model_id: str, prompt_ids: list[int], tokens: int = 64, rounds: int = 3,
                      streams: Sequence[int] = (), variants: list[str] | None = None, with_torch: bool = True,
                      log: Callable[[str], None] = print) -> Report:
    from models.runtime import manifest, preferred_variant

    dev = ort_device()
    report = Report(name, environment(dev), {"model": model_id, "tokens": tokens, "rounds": rounds,
                                             "streams": list(streams), "prompt_tokens": len(prompt_ids)})
    served = preferred_variant(model_id, manifest(model_id).get("variants", {}))
    report.settings["served_variant"] = served
    contenders: dict[str, Callable[[], dict]] = {}
    meta: dict[str, dict] = {}
    engines = {}
    for variant, entry in variants_for(model_id, dev, variants):
        key = f"onnxruntime {variant}"
        contenders[key], engines[variant] = onnx_runner(model_id, variant, prompt_ids, tokens)
        meta[key] = {"runtime": "onnxruntime", "variant": variant, "precision": entry.get("precision", variant),
                     "provider": engines[variant].info.provider, "served": variant == served,
                     "batched": engines[variant].batched}
    peer = llamacpp_runner(model_id, prompt_ids, tokens)
    if not isinstance(peer, str):
        from models.registry import get_spec

        contenders["llama.cpp"] = peer
        meta["llama.cpp"] = {"runtime": "llama.cpp", "variant": "gguf", "precision": get_spec(model_id).gguf_file,
                             "provider": "cpu"}
    else:
        report.notes.append(f"llama.cpp not measured: {peer}")
        log(f"  llama.cpp not measured: {peer}")
    if with_torch:
        tokenizer = next(iter(engines.values())).tokenizer if engines else None
        pad = tokenizer.pad_token_id if tokenizer is not None and tokenizer.pad_token_id is not None else 0
        for dtype in torch_dtypes(dev):
            key = f"pytorch {dtype}"
            model = torch_model(model_id, dev, dtype)
            contenders[key] = torch_runner(model, prompt_ids, tokens, dev, pad)
            meta[key] = {"runtime": "pytorch", "variant": dtype, "precision": dtype, "provider": dev}
    log(f"{name}: {model_id}, {len(prompt_ids)} prompt tokens, {tokens} new tokens, {rounds} rounds, device {dev}")
    samples = interleave(contenders, rounds, log=log)
    report.rows = summarize(samples, meta)
    report.samples = {k: [{kk: vv for kk, vv in s.items() if kk != "tokens"} for s in v] for k, v in samples.items()}
    if streams and served in engines:
        for n in streams:
            result = dict(concurrent_streams(engines[served], prompt_ids, tokens, n), variant=served)
            report.concurrency.append(result)
            log(f"  {n} streams ({served}): {result['agg_tok_s']:.1f} tok/s aggregate, inter-token p95 "
                f"{result['itl_ms_p95']:.0f} ms")
        single = next((c["agg_tok_s"] for c in report.concurrency if c["streams"] == 1), None)
        for c in report.concurrency:
            c["x_one_stream"] = ratio(c["agg_tok_s"], single)
    return report


def summarize(samples: dict[str, list[dict]], meta: dict[str, dict]) -> list[dict]:
    """Medians per contender, ratios against PyTorch fp32 and llama.cpp (same run), agreement with ORT fp32."""
    rows = []
    for key, runs in samples.items():
        row = dict(meta[key])
        row["contender"] = key
        row["tok_s"] = median([r["tok_s"] for r in runs])
        row["tok_s_best"] = max((r["tok_s"] for r in runs if r["tok_s"] is not None), default=None)
        row["ttft_ms"] = median([r["ttft_ms"] for r in runs])
        row["cpu_ms_per_token"] = median([r["cpu_ms_per_token"] for r in runs])
        row["tokens"] = runs[-1]["tokens"] if runs else []
        rows.append(row)
    reference = next((r for r in rows if r["runtime"] == "onnxruntime" and r["variant"] == "fp32"), None)
    baselines = {r["variant"]: r for r in rows if r["runtime"] == "pytorch"}
    torch_fp32 = baselines.get("float32")
    for row in rows:
        if reference is not None:
            row["same_tokens"] = f"{first_mismatch(row['tokens'], reference['tokens'])}/{len(reference['tokens'])}"
        if torch_fp32 is not None:
            row["x_torch"] = ratio(row["tok_s"], torch_fp32["tok_s"])
            row["ttft_vs_torch"] = ratio(row["ttft_ms"], torch_fp32["ttft_ms"])
        peer = next((r for r in rows if r["runtime"] == "llama.cpp"), None)
        if peer is not None:
            row["x_llamacpp"] = ratio(row["tok_s"], peer["tok_s"])
            row["ttft_vs_llamacpp"] = ratio(row["ttft_ms"], peer["ttft_ms"])
        if "float16" in baselines:
            row["x_torch_fp16"] = ratio(row["tok_s"], baselines["float16"]["tok_s"])
    for row in rows:
        del row["tokens"]
    return rows


def table(rows: list[dict]) -> str:
    columns = [Column("runtime", "runtime", align="left"), Column("variant", "variant", align="left"),
               Column("precision", "precision", align="left"), Column("tok_s", "tok/s (b1)"),
               Column("x_torch", "× PyTorch fp32", "{:.2f}×"), Column("tok_s_best", "best tok/s"), Column("ttft_ms", "TTFT ms", "{:.0f}"),
               Column("ttft_vs_torch", "TTFT ÷ PyTorch", "{:.2f}"),
               Column("cpu_ms_per_token", "CPU ms/token", "{:.1f}"),
               Column("same_tokens", "tokens = ORT fp32")]
    if any("x_torch_fp16" in r for r in rows):
        columns.insert(5, Column("x_torch_fp16", "× PyTorch fp16", "{:.2f}×"))
    if any("x_llamacpp" in r for r in rows):
        columns.insert(5, Column("x_llamacpp", "× llama.cpp", "{:.2f}×"))
        columns.insert(8, Column("ttft_vs_llamacpp", "TTFT ÷ llama.cpp", "{:.2f}"))
    return markdown_table(columns, rows)


def concurrency_table(results: list[dict]) -> str:
    columns = [Column("streams", "streams", "{:d}"), Column("variant", "variant", align="left"),
               Column("agg_tok_s", "aggregate tok/s"), Column("x_one_stream", "× 1 stream", "{:.2f}×"),
               Column("itl_ms_p50", "inter-token p50 ms", "{:.0f}"), Column("itl_ms_p95", "inter-token p95 ms", "{:.0f}"),
               Column("ttft_ms_p50", "TTFT p50 ms", "{:.0f}"), Column("ttft_ms_p95", "TTFT p95 ms", "{:.0f}")]
    return markdown_table(columns, results)


def run(tokens: int = 64, rounds: int = 3, streams: Sequence[int] = (), variants: list[str] | None = None,
        with_torch: bool = True, log: Callable[[str], None] = print) -> Report:
    from models.generation import GENERATION_MODEL, build_prompt, get_generator

    prompt_ids, _ = build_prompt(get_generator(), "chat", GENERATE_PROMPT, reserve=tokens)
    report = decoder_benchmark("generate", GENERATION_MODEL, prompt_ids, tokens, rounds, streams, variants,
                               with_torch, log)
    report.settings["prompt"] = GENERATE_PROMPT
    return report
