"""`python -m bench classify`: latency and throughput of the Classify tab's model (sentiment-minilm).

Each manifest variant runs through the site's own classification code (models.sentiment: text
normalisation, tokenizer, padded batches, `probabilities` output) on a session made by the site's
runtime (models.runtime.create_session, so MODEL_DEVICE applies); PyTorch runs the same classifier
(export.sentiment.build_torch_classifier: encoder + pooling + trained head) on the same token ids.

Measured: batch-1 latency per sentence (tokenize + run, p50 and p95 over the check-set sentences) and
batched throughput (sentences/s, length-sorted batches of models.sentiment.BATCH_SIZE, as predict_proba
does), and the largest probability difference against onnxruntime fp32.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from bench.common import Column, Report, environment, interleave, markdown_table, median, ort_device, \
    percentile, ratio, variants_for

BATCH_COPIES = 4  # the check set (50 sentences) x4 for the throughput measurement


def texts() -> list[str]:
    from export.quantize import classifier_texts

    return classifier_texts()


def onnx_classifier(variant: str, entry: dict):
    from models import sentiment
    from models.paths import model_dir
    from models.runtime import create_session
    from models.tokenization import get_tokenizer

    session = create_session(model_dir(sentiment.MODEL_ID) / entry["file"])
    tokenizer = get_tokenizer(sentiment.MODEL_ID)

    def predict(batch: list[str]) -> np.ndarray:
        arrays, _ = sentiment._encode(tokenizer, batch)
        return sentiment._run(session, arrays)

    return predict, session.get_providers()[0]


def torch_classifier(dev: str, dtype: str):
    import torch

    from export.sentiment import build_torch_classifier
    from models import sentiment
    from models.runtime import cpu_threads
    from models.tokenization import get_tokenizer

    if dev == "cpu":
        torch.set_num_threads(cpu_threads())
    model = build_torch_classifier().to(device=dev, dtype=getattr(torch, dtype)).eval()
    tokenizer = get_tokenizer(sentiment.MODEL_ID)

    def predict(batch: list[str]) -> np.ndarray:
        arrays, _ = sentiment._encode(tokenizer, batch)
        with torch.inference_mode():
            out = model(torch.from_numpy(arrays["input_ids"]).to(dev), torch.from_numpy(arrays["attention_mask"]).to(dev))
        return out.float().cpu().numpy()

    return predict


def measure(predict: Callable[[list[str]], np.ndarray], sentences: list[str], batch_size: int) -> dict:
    latencies = []
    probs = []
    for text in sentences:
        start = time.perf_counter()
        probs.append(predict([text])[0])
        latencies.append((time.perf_counter() - start) * 1000)
    corpus = sorted(sentences * BATCH_COPIES, key=len)
    start = time.perf_counter()
    for i in range(0, len(corpus), batch_size):
        predict(corpus[i:i + batch_size])
    elapsed = time.perf_counter() - start
    return {"latencies_ms": latencies, "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "sentences_per_s": len(corpus) / elapsed, "probs": np.asarray(probs)}


def run(rounds: int = 3, variants: list[str] | None = None, with_torch: bool = True,
        log: Callable[[str], None] = print, **_ignored) -> Report:
    from models import sentiment

    dev = ort_device()
    sentences = texts()
    report = Report("classify", environment(dev), {"model": sentiment.MODEL_ID, "sentences": len(sentences),
                                                   "batch_size": sentiment.BATCH_SIZE, "rounds": rounds,
                                                   "throughput_sentences": len(sentences) * BATCH_COPIES})
    contenders, meta = {}, {}
    for variant, entry in variants_for(sentiment.MODEL_ID, dev, variants):
        predict, provider = onnx_classifier(variant, entry)
        key = f"onnxruntime {variant}"
        contenders[key] = (lambda p=predict: measure(p, sentences, sentiment.BATCH_SIZE))
        meta[key] = {"runtime": "onnxruntime", "variant": variant, "precision": entry.get("precision", variant),
                     "provider": provider}
    if with_torch:
        from bench.generate import torch_dtypes

        for dtype in torch_dtypes(dev):
            predict = torch_classifier(dev, dtype)
            key = f"pytorch {dtype}"
            contenders[key] = (lambda p=predict: measure(p, sentences, sentiment.BATCH_SIZE))
            meta[key] = {"runtime": "pytorch", "variant": dtype, "precision": dtype, "provider": dev}
    log(f"classify: {sentiment.MODEL_ID}, {len(sentences)} sentences, {rounds} rounds, device {dev}")
    samples = interleave(contenders, rounds, log=log)
    report.rows = summarize(samples, meta)
    report.samples = {k: [{kk: vv for kk, vv in s.items() if kk not in ("probs", "latencies_ms")} for s in v]
                      for k, v in samples.items()}
    return report


def summarize(samples: dict[str, list[dict]], meta: dict[str, dict]) -> list[dict]:
    rows = []
    for key, runs in samples.items():
        row = dict(meta[key], contender=key)
        row["p50_ms"] = median([r["p50_ms"] for r in runs])
        row["p95_ms"] = median([r["p95_ms"] for r in runs])
        row["sentences_per_s"] = median([r["sentences_per_s"] for r in runs])
        row["probs"] = runs[-1]["probs"] if runs else None
        rows.append(row)
    reference = next((r for r in rows if r["runtime"] == "onnxruntime" and r["variant"] == "fp32"), None)
    torch_fp32 = next((r for r in rows if r["runtime"] == "pytorch" and r["variant"] == "float32"), None)
    for row in rows:
        if reference is not None and row["probs"] is not None:
            row["max_prob_diff"] = float(np.abs(row["probs"] - reference["probs"]).max())
        if torch_fp32 is not None:
            row["p50_vs_torch"] = ratio(row["p50_ms"], torch_fp32["p50_ms"])
            row["x_torch_throughput"] = ratio(row["sentences_per_s"], torch_fp32["sentences_per_s"])
    for row in rows:
        del row["probs"]
    return rows


def table(rows: list[dict]) -> str:
    columns = [Column("runtime", "runtime", align="left"), Column("variant", "variant", align="left"),
               Column("precision", "precision", align="left"), Column("p50_ms", "b1 p50 ms", "{:.2f}"),
               Column("p95_ms", "b1 p95 ms", "{:.2f}"), Column("p50_vs_torch", "p50 ÷ PyTorch", "{:.2f}"),
               Column("sentences_per_s", "batched sentences/s", "{:.0f}"),
               Column("x_torch_throughput", "× PyTorch", "{:.2f}×"),
               Column("max_prob_diff", "max |Δp| vs ORT fp32", "{:.4f}")]
    return markdown_table(columns, rows)
