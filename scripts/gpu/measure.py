"""GPU measurements for the speed issue, run on the lent H100/H200 by scripts/gpu/run.sh.

One run, same machine, same prompts: PyTorch eager (fp16) vs the site's own runtime (models.engine on
onnxruntime CUDA, fp32 and fp16), MiniLM latency/throughput, and the fp16 quality gate (NaN, greedy tokens
vs fp32). Prints a table last; writes everything to $OUT/gpu_results.json. Each section is independent:
a failure is reported and the next section still runs.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("MODEL_DEVICE", "cuda")

from models.decoder import DecoderGraph  # noqa: E402
from models.engine import Engine, get_engine  # noqa: E402
from models.registry import MINILM, SMOLLM2  # noqa: E402
from models.sampling import SamplingSettings  # noqa: E402

OUT = Path(os.environ.get("OUT", "/tmp/out"))
PROMPTS = [
    "Write a short story about a robot who learns to paint.",
    "Explain what a GPU is in two sentences.",
    "List three ways a startup can lower its inference costs.",
    "What is the capital of France, and why is it famous?",
    "Give me a recipe for a simple tomato soup.",
]
NEW_TOKENS = 128
results: dict = {"sections": {}}
rows: list[tuple[str, str]] = []
SECTIONS: list = []


def section(name):
    def register(fn):
        SECTIONS.append((name, fn))
        return fn
    return register


def run_sections():
    for name, fn in SECTIONS:
        start = time.perf_counter()
        try:
            results["sections"][name] = fn()
        except Exception as exc:  # keep measuring the rest; the error is in the report
            results["sections"][name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
            rows.append((name, f"ERROR {type(exc).__name__}: {str(exc)[:300]}"))
        print(f"[{name}] {time.perf_counter() - start:.1f} s", flush=True)


def chat_ids(tokenizer, prompt):
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)


def ort_decode(lm, ids, n=NEW_TOKENS):
    settings = SamplingSettings(max_new_tokens=n, temperature=0, repetition_penalty=1.0, ignore_eos=True)
    start = time.perf_counter()
    first = None
    tokens = []
    for step in lm.stream(ids, settings):
        if first is None:
            first = time.perf_counter()
        tokens.append(step.token_id)
    end = time.perf_counter()
    return tokens, (first - start) * 1000, (len(tokens) - 1) / (end - first)


@section("device")
def device_info():
    import onnxruntime as ort
    import torch

    info = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "onnxruntime": ort.__version__,
            "providers": ort.get_available_providers(), "date": time.strftime("%Y-%m-%d")}
    rows.append(("device", f"{info['gpu']} · torch {info['torch']} · onnxruntime {info['onnxruntime']}"))
    return info


@section("pytorch_smollm2")
def pytorch_smollm2():
    import torch

    from export.torch_models import load_model, load_tokenizer

    tok = load_tokenizer(SMOLLM2)
    model = load_model(SMOLLM2, attn_implementation="eager").half().cuda()
    ids = torch.tensor([chat_ids(tok, PROMPTS[0])], device="cuda")
    mask = torch.ones_like(ids)
    kw = dict(do_sample=False, attention_mask=mask, pad_token_id=tok.eos_token_id, eos_token_id=None)
    model.generate(ids, max_new_tokens=8, **kw)
    torch.cuda.synchronize()
    t = time.perf_counter(); model.generate(ids, max_new_tokens=1, **kw); torch.cuda.synchronize()
    ttft = (time.perf_counter() - t) * 1000
    t = time.perf_counter(); out = model.generate(ids, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, **kw)
    torch.cuda.synchronize()
    total = time.perf_counter() - t
    tps = (NEW_TOKENS - 1) / max(total - ttft / 1000, 1e-9)
    rows.append(("PyTorch eager fp16 SmolLM2 b1", f"{tps:.1f} tok/s · TTFT {ttft:.1f} ms"))
    return {"tok_s": tps, "ttft_ms": ttft, "tokens": out[0, ids.shape[1]:].tolist()}


@section("ort_smollm2")
def ort_smollm2():
    out = {}
    reference = None
    for variant in ("fp32", "fp16"):
        lm = get_engine(SMOLLM2.id, variant)
        assert lm.info.provider == "CUDAExecutionProvider", lm.info.provider
        ids = chat_ids(lm.tokenizer, PROMPTS[0])
        ort_decode(lm, ids, 8)  # warm-up
        runs = [ort_decode(lm, ids) for _ in range(3)]
        tps = statistics.median(r[2] for r in runs)
        ttft = statistics.median(r[1] for r in runs)
        logits, _ = lm.graph.prefill(ids)
        greedy = [ort_decode(lm, chat_ids(lm.tokenizer, p), 32)[0] for p in PROMPTS]
        if variant == "fp32":
            reference = greedy
        matches = sum(a == b for a, b in zip(greedy, reference))
        out[variant] = {"tok_s": tps, "ttft_ms": ttft, "finite_logits": bool(np.isfinite(logits).all()),
                        "greedy32_match_fp32": f"{matches}/{len(PROMPTS)}"}
        rows.append((f"ORT CUDA {variant} SmolLM2 b1 (our loop)",
                     f"{tps:.1f} tok/s · TTFT {ttft:.1f} ms · finite {out[variant]['finite_logits']} · "
                     f"greedy32 = fp32 on {matches}/{len(PROMPTS)} prompts"))
    return out


@section("ort_smollm2_profile")
def ort_profile():
    """Where a decode step's time goes: ORT's profiler over 16 steps of the fp32 graph."""
    import onnxruntime as ort

    from models.paths import model_dir
    from models.runtime import _preload_cuda_libraries, session_options

    _preload_cuda_libraries()
    options = session_options()
    options.enable_profiling = True
    options.profile_file_prefix = str(OUT / "ort_profile")
    shared = get_engine(SMOLLM2.id, "fp32").graph
    session = ort.InferenceSession(str(model_dir(SMOLLM2.id) / "model.onnx"), sess_options=options,
                                   providers=[("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"])
    lm = Engine(DecoderGraph(session, shared.config, shared.tokenizer, shared.info))
    ids = chat_ids(lm.tokenizer, PROMPTS[0])
    ort_decode(lm, ids, 17)
    trace = json.loads(Path(session.end_profiling()).read_text())
    nodes = [e for e in trace if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    runs = [e for e in trace if e.get("name") == "model_run"]
    by_provider, by_op = {}, {}
    for e in nodes:
        provider = e["args"].get("provider", "?")
        by_provider[provider] = by_provider.get(provider, 0) + e["dur"]
        op = e["args"].get("op_name", "?")
        by_op[op] = by_op.get(op, 0) + e["dur"]
    steps = max(1, len(runs))
    top = sorted(by_op.items(), key=lambda kv: -kv[1])[:8]
    summary = {"runs": len(runs), "nodes_per_run": len(nodes) / steps,
               "run_us_median": statistics.median(e["dur"] for e in runs) if runs else None,
               "node_us_per_run_by_provider": {k: v / steps for k, v in by_provider.items()},
               "top_ops_us_per_run": {k: v / steps for k, v in top}}
    rows.append(("ORT profile fp32 decode step", f"{summary['nodes_per_run']:.0f} nodes/run · run {summary['run_us_median']} us · "
                 + ", ".join(f"{k}: {v:.0f} us" for k, v in summary["node_us_per_run_by_provider"].items())))
    rows.append(("ORT profile top ops (us/run)", ", ".join(f"{k} {v / steps:.0f}" for k, v in top)))
    return summary


@section("ort_smollm2_streams")
def ort_streams():
    from bench.generate import concurrent_streams  # the same measurement as `python -m bench generate --streams`

    lm = get_engine(SMOLLM2.id, "fp16")
    ids = chat_ids(lm.tokenizer, PROMPTS[0])
    result = concurrent_streams(lm, ids, 64, 16)
    rows.append((f"ORT CUDA fp16 SmolLM2, 16 streams through the engine ({'batched' if lm.batched else 'per-sequence'})",
                 f"{result['agg_tok_s']:.0f} tok/s aggregate · inter-token p95 {result['itl_ms_p95']:.1f} ms"))
    return result


def _latency(fn, n=200):
    for _ in range(20):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter(); fn(); times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), float(np.percentile(times, 95))


@section("minilm_optimized_export")
def minilm_optimized_export():
    """A plain MiniLM graph (no attention outputs) through ORT's transformer optimizer: fused attention,
    SkipLayerNorm, BiasGelu; then fp16. This is what the classifier would serve on GPU."""
    from onnxruntime.transformers.optimizer import optimize_model
    from optimum.exporters.onnx import onnx_export_from_model

    from export.torch_models import load_model

    target = Path("/tmp/minilm_opt")
    onnx_export_from_model(load_model(MINILM, attn_implementation="eager"), target, task="feature-extraction",
                           do_validation=False)
    optimized = optimize_model(str(target / "model.onnx"), model_type="bert", num_heads=12, hidden_size=384,
                               use_gpu=True)
    fused = optimized.get_fused_operator_statistics()
    optimized.convert_float_to_float16(keep_io_types=True)
    optimized.save_model_to_file(str(target / "model_fp16_opt.onnx"))
    rows.append(("MiniLM optimizer fusions", ", ".join(f"{k}={v}" for k, v in fused.items() if v)))
    return {"fused": fused}


@section("minilm")
def minilm():
    import onnxruntime as ort
    import torch

    from export.torch_models import load_model
    from models.paths import model_dir
    from models.runtime import create_session
    from models.tokenization import get_tokenizer

    tok = get_tokenizer(MINILM.id)
    text = "Startups that build on large language models must keep their inference costs under control now."
    enc = tok([text], padding="max_length", max_length=32, truncation=True, return_tensors="np")
    feed1 = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
    feedb = {k: np.repeat(v, 256, 0) for k, v in feed1.items()}
    out = {}
    model = load_model(MINILM, attn_implementation="sdpa").half().cuda()
    t1 = {k: torch.from_numpy(v).cuda() for k, v in feed1.items()}
    tb = {k: torch.from_numpy(v).cuda() for k, v in feedb.items()}

    def torch_run(f):
        with torch.no_grad():
            model(**f)
        torch.cuda.synchronize()

    p50, p95 = _latency(lambda: torch_run(t1))
    bp50, _ = _latency(lambda: torch_run(tb), 50)
    out["pytorch_fp16"] = {"b1_L32_ms_p50": p50, "b1_p95": p95, "batch256_sent_s": 256 / bp50 * 1000}
    rows.append(("PyTorch eager fp16 MiniLM", f"b1 L32 p50 {p50:.2f} ms p95 {p95:.2f} · batch 256: {256 / bp50 * 1000:,.0f} sent/s"))
    candidates = {"served fp32 (+attentions)": model_dir(MINILM.id) / "model.onnx",
                  "served fp16 (+attentions)": model_dir(MINILM.id) / "model_fp16.onnx",
                  "optimized fp16 (fused, no attentions)": Path("/tmp/minilm_opt/model_fp16_opt.onnx")}
    for name, path in candidates.items():
        if not path.is_file():
            rows.append((f"ORT CUDA MiniLM {name}", "missing"))
            continue
        session = create_session(path, "cuda")
        half = "float16" in session.get_outputs()[0].type
        names = {i.name for i in session.get_inputs()}
        wanted = [session.get_outputs()[0].name]
        f1 = {k: v for k, v in feed1.items() if k in names}
        fb = {k: v for k, v in feedb.items() if k in names}
        # IO binding with inputs already on the GPU: what a server with dynamic batching does per call
        def bound(feed):
            binding = session.io_binding()
            for k, v in feed.items():
                binding.bind_ortvalue_input(k, ort.OrtValue.ortvalue_from_numpy(v, "cuda", 0))
            binding.bind_output(wanted[0], "cuda")
            return binding
        b1, bb = bound(f1), bound(fb)
        p50, p95 = _latency(lambda: session.run_with_iobinding(b1))
        bp50, _ = _latency(lambda: session.run_with_iobinding(bb), 50)
        res = session.run(wanted, f1)[0]
        out[name] = {"b1_L32_ms_p50": p50, "b1_p95": p95, "batch256_sent_s": 256 / bp50 * 1000,
                     "finite": bool(np.isfinite(res).all()), "fp16": half}
        rows.append((f"ORT CUDA MiniLM {name}", f"b1 L32 p50 {p50:.3f} ms p95 {p95:.3f} · batch 256: {256 / bp50 * 1000:,.0f} sent/s"))
    return out


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    run_sections()
    (OUT / "gpu_results.json").write_text(json.dumps(results, indent=2, default=str))
    print("\n=== results ===")
    for name, value in rows:
        print(f"{name:48s} {value}")
