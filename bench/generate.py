"""`python -m bench generate`: decode speed of the Generate tab's model (SmolLM2-135M-Instruct).

Every variant in the build manifest runs through the site's own decode loop (models.decoding.OnnxCausalLM:
IO binding, KV cache in OrtValues, sampling on the host) and, in the same run and on the same device,
PyTorch `generate` on the same weights (export.torch_models.load_model; sdpa attention). Both decode
greedily from the same chat prompt and produce exactly `--tokens` tokens (EOS ignored), so the token
streams can be compared: the table shows for how many leading tokens each contender agrees with
onnxruntime fp32.

Measured per run: TTFT (prompt in -> first token out), decode tok/s after the first token, and the process
CPU time per decoded token (less sensitive to other load on a shared machine than wall time). The table
shows medians over the rounds, and the best round's tok/s (closest to an idle machine).
`--streams N` adds an aggregate: N threads each decoding its own stream over the one shared session.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from bench.common import Column, Report, environment, interleave, markdown_table, median, ort_device, ratio, \
    variants_for

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


# --- onnxruntime (the site's decode loop) ----------------------------------------------------------------

def onnx_runner(model_id: str, variant: str, prompt_ids: list[int], tokens: int) -> tuple[Callable[[], dict], object]:
    from models.decoding import OnnxCausalLM
    from models.sampling import SamplingSettings

    lm = OnnxCausalLM(model_id, variant)
    lm.eos_ids = set()  # always decode exactly `tokens` tokens, so runs are comparable
    settings = SamplingSettings(max_new_tokens=tokens, temperature=0, repetition_penalty=1.0)

    def run() -> dict:
        times, ids, cpu_first = [], [], None
        start = time.perf_counter()
        for step in lm.stream(prompt_ids, settings):
            times.append(time.perf_counter())
            if cpu_first is None:
                cpu_first = time.process_time()
            ids.append(step.token_id)
        return _sample(start, times, ids, cpu_first, time.process_time())

    return run, lm


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


# --- concurrent streams ----------------------------------------------------------------------------------

def aggregate(run: Callable[[], dict], streams: int) -> dict:
    """`streams` threads each decode one stream at the same time; total tokens / wall time."""
    results: list[dict] = [{}] * streams
    errors: list[BaseException] = []

    def worker(index: int):
        try:
            results[index] = run()
        except BaseException as exc:  # noqa: BLE001 - reported after join
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(streams)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    total = sum(len(r["tokens"]) for r in results)
    return {"agg_tok_s": total / wall, "streams": streams, "ttft_ms_median": median([r["ttft_ms"] for r in results]),
            "per_stream_tok_s": median([r["tok_s"] for r in results])}


# --- the benchmark ---------------------------------------------------------------------------------------

def torch_dtypes(dev: str) -> list[str]:
    return ["float32", "float16"] if dev == "cuda" else ["float32"]


def decoder_benchmark(name: str, model_id: str, prompt_ids: list[int], tokens: int = 64, rounds: int = 3,
                      streams: int = 0, variants: list[str] | None = None, with_torch: bool = True,
                      log: Callable[[str], None] = print) -> Report:
    dev = ort_device()
    report = Report(name, environment(dev), {"model": model_id, "tokens": tokens, "rounds": rounds,
                                             "streams": streams, "prompt_tokens": len(prompt_ids)})
    contenders: dict[str, Callable[[], dict]] = {}
    meta: dict[str, dict] = {}
    tokenizer = None
    for variant, entry in variants_for(model_id, dev, variants):
        key = f"onnxruntime {variant}"
        contenders[key], lm = onnx_runner(model_id, variant, prompt_ids, tokens)
        tokenizer = lm.tokenizer
        meta[key] = {"runtime": "onnxruntime", "variant": variant, "precision": entry.get("precision", variant),
                     "provider": lm.info.provider}
    if with_torch:
        pad = tokenizer.pad_token_id if tokenizer is not None and tokenizer.pad_token_id is not None else 0
        for dtype in torch_dtypes(dev):
            key = f"pytorch {dtype}"
            model = torch_model(model_id, dev, dtype)
            contenders[key] = torch_runner(model, prompt_ids, tokens, dev, pad)
            meta[key] = {"runtime": "pytorch", "variant": dtype, "precision": dtype, "provider": dev}
    log(f"{name}: {model_id}, {len(prompt_ids)} prompt tokens, {tokens} new tokens, {rounds} rounds, device {dev}")
    samples = interleave(contenders, rounds, log=log)
    aggregates = {}
    if streams > 1:
        for key, run in contenders.items():
            aggregates[key] = aggregate(run, streams)
            log(f"  {streams} streams {key}: {aggregates[key]['agg_tok_s']:.1f} tok/s")
    report.rows = summarize(samples, meta, aggregates)
    report.samples = {k: [{kk: vv for kk, vv in s.items() if kk != "tokens"} for s in v] for k, v in samples.items()}
    report.samples["aggregates"] = aggregates
    return report


def summarize(samples: dict[str, list[dict]], meta: dict[str, dict], aggregates: dict[str, dict] | None = None) -> list[dict]:
    """Medians per contender, ratios against PyTorch fp32 (same run) and agreement with onnxruntime fp32."""
    aggregates = aggregates or {}
    rows = []
    for key, runs in samples.items():
        row = dict(meta[key])
        row["contender"] = key
        row["tok_s"] = median([r["tok_s"] for r in runs])
        row["tok_s_best"] = max((r["tok_s"] for r in runs if r["tok_s"] is not None), default=None)
        row["ttft_ms"] = median([r["ttft_ms"] for r in runs])
        row["cpu_ms_per_token"] = median([r["cpu_ms_per_token"] for r in runs])
        row["tokens"] = runs[-1]["tokens"] if runs else []
        if key in aggregates:
            row["agg_tok_s"] = aggregates[key]["agg_tok_s"]
            row["streams"] = aggregates[key]["streams"]
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
            row["agg_x_torch"] = ratio(row.get("agg_tok_s"), torch_fp32.get("agg_tok_s"))
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
    if any("agg_tok_s" in r for r in rows):
        streams = next(r["streams"] for r in rows if "streams" in r)
        columns += [Column("agg_tok_s", f"aggregate tok/s ({streams} streams)"), Column("agg_x_torch", "agg × PyTorch", "{:.2f}×")]
    return markdown_table(columns, rows)


def run(tokens: int = 64, rounds: int = 3, streams: int = 0, variants: list[str] | None = None,
        with_torch: bool = True, log: Callable[[str], None] = print) -> Report:
    from models.decoding import OnnxCausalLM
    from models.generation import GENERATION_MODEL, build_prompt

    lm = OnnxCausalLM(GENERATION_MODEL, "fp32")
    prompt_ids, _ = build_prompt(lm, "chat", GENERATE_PROMPT, reserve=tokens)
    report = decoder_benchmark("generate", GENERATION_MODEL, prompt_ids, tokens, rounds, streams, variants,
                               with_torch, log)
    report.settings["prompt"] = GENERATE_PROMPT
    return report
