"""`python -m export --check`: PyTorch (from the same packaged weights) vs the served ONNX graphs.

Per model, at two or more input lengths: max |diff| of logits / hidden states and of attention
probabilities, and whether 32 greedy tokens are identical. Exit status 1 when any model is outside its
tolerance (fp32: 1e-3 on logits and hidden states, 1e-4 on attention probabilities).

`python -m export` runs the same check after each build and records the verdict in build.json
(`record_check`): the runtime serves only exports whose recorded check passed (models/runtime.py).
"""
from __future__ import annotations

import json
import time

import numpy as np
import torch

from export.torch_models import load_model
from models.paths import model_dir
from models.registry import REGISTRY, get_spec
from models.runtime import allow_unchecked, get_session

LOGIT_TOL = 1e-3
ATTENTION_TOL = 1e-4
GREEDY_TOKENS = 32
PROMPTS = {
    "short": "The cat sat on the mat.",
    "long": ("Large language models are trained on trillions of tokens. Startups that build on them must "
             "weigh the cost of compute, the value of proprietary data, and the speed of iteration. "
             "大模型创业需要权衡算力成本、数据价值与迭代速度。"),
}


def _onnx_encoder_forward(session, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict:
    feed = {"input_ids": input_ids, "attention_mask": attention_mask}
    if "token_type_ids" in {i.name for i in session.get_inputs()}:
        feed["token_type_ids"] = np.zeros_like(input_ids)
    outputs = [o.name for o in session.get_outputs()]
    return dict(zip(outputs, session.run(outputs, feed)))


def check_decoder(spec) -> dict:
    from models.decoder import DecoderGraph

    model = load_model(spec)
    graph = DecoderGraph.open(spec.id, "fp32")  # the reference export; faster variants pass the quality gate
    tokenizer = graph.tokenizer
    report = {"model": spec.id, "lengths": {}, "ok": True}
    for name, text in PROMPTS.items():
        ids = tokenizer(text)["input_ids"]
        with torch.no_grad():
            ref = model(torch.tensor([ids]), output_attentions=True)
        got = graph.forward(ids, logits="all", attentions=True, keep_cache=False)
        logit_diff = float(np.abs(got.logits - ref.logits.numpy()[0]).max())
        attn_diff = max(float(np.abs(got.attentions[i] - a.numpy()[0]).max()) for i, a in enumerate(ref.attentions))
        report["lengths"][len(ids)] = {"logits_max_abs_diff": logit_diff, "attention_max_abs_diff": attn_diff}
        report["ok"] &= logit_diff <= LOGIT_TOL and attn_diff <= ATTENTION_TOL
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Write a short story about a robot who learns to paint."}], add_generation_prompt=True)
    with torch.no_grad():
        torch_out = model.generate(torch.tensor([chat]), max_new_tokens=GREEDY_TOKENS, do_sample=False,
                                   attention_mask=torch.ones(1, len(chat), dtype=torch.long))
    torch_tokens = torch_out[0, len(chat):].tolist()
    onnx_tokens = graph.greedy(chat, GREEDY_TOKENS)
    same = onnx_tokens == torch_tokens  # both stop after EOS or after GREEDY_TOKENS tokens
    report["greedy_tokens"] = len(onnx_tokens)
    report["greedy_identical"] = bool(same)
    report["ok"] &= bool(same)
    return report


def check_encoder(spec) -> dict:
    from models.tokenization import get_tokenizer

    model = load_model(spec)
    session = get_session(spec.id, "fp32")
    tokenizer = get_tokenizer(spec.id)
    report = {"model": spec.id, "lengths": {}, "ok": True}
    batches = {name: [text] for name, text in PROMPTS.items()}
    batches["padded batch"] = list(PROMPTS.values())
    for name, texts in batches.items():
        enc = tokenizer(texts, padding=True, return_tensors="np")
        ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
        with torch.no_grad():
            ref = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                        token_type_ids=torch.zeros_like(torch.from_numpy(ids)), output_attentions=True)
        got = _onnx_encoder_forward(session, ids, mask)
        valid = mask.astype(bool)  # padded positions are undefined in both; compare real tokens only
        hidden_diff = float(np.abs(got["last_hidden_state"] - ref.last_hidden_state.numpy())[valid].max())
        attn_diff = max(float(np.abs(got[f"attentions.{i}"] - a.numpy())[valid[:, None, :, None].repeat(a.shape[1], 1)
                                                                            .repeat(a.shape[3], 3)].max())
                        for i, a in enumerate(ref.attentions))
        label = f"{ids.shape[1]}" + (f" x{ids.shape[0]}" if ids.shape[0] > 1 else "")
        report["lengths"][label] = {"hidden_max_abs_diff": hidden_diff, "attention_max_abs_diff": attn_diff}
        report["ok"] &= hidden_diff <= LOGIT_TOL and attn_diff <= ATTENTION_TOL
    return report


def check_custom(spec) -> dict:
    from importlib import import_module

    from models.paths import model_dir

    module = import_module(dict(spec.export.extra)["exporter"].split(":")[0])
    report = module.parity_report(model_dir(spec.id))
    report.setdefault("model", spec.id)
    return report


def check_model(model_id: str) -> dict:
    spec = get_spec(model_id)
    if spec.export.task == "custom":
        return check_custom(spec)
    return check_decoder(spec) if spec.gguf_file else check_encoder(spec)


def format_report(report: dict) -> str:
    lines = [f"{report['model']}: {'OK' if report['ok'] else 'OUT OF TOLERANCE'}"]
    for length, diffs in report.get("lengths", {}).items():
        pretty = ", ".join(f"{k}={v:.2e}" for k, v in diffs.items())
        lines.append(f"  length {length}: {pretty}")
    if "greedy_identical" in report:
        lines.append(f"  greedy {report['greedy_tokens']} tokens identical to PyTorch: {report['greedy_identical']}")
    for key, value in report.items():
        if key not in {"model", "ok", "lengths", "greedy_identical", "greedy_tokens"}:
            lines.append(f"  {key}: {value}")
    return "\n".join(lines)


def variant_verdict(name: str, entry: dict, parity_ok: bool) -> dict:
    """What checked one variant: fp32 is the graph compared with PyTorch; the quantized CPU variants are
    compared with fp32 by their quality gate (export/quantize.py). Other variants (fp16) have no check of
    their own here (scripts/gpu/measure.py compares them on a GPU); they serve only if fp32 passed."""
    if entry.get("file") == "model.onnx":
        return {"pass": parity_ok, "by": "parity with PyTorch (python -m export --check)"}
    if "gate" in entry:
        return {"pass": parity_ok and bool(entry["gate"].get("pass")), "by": "quality gate against fp32"}
    return {"pass": None, "by": "no check of its own on this machine; its fp32 reference passed" if parity_ok
            else "its fp32 reference failed the parity check"}


def summarize(report: dict) -> str:
    worst = max((v for diffs in report.get("lengths", {}).values() for v in diffs.values()), default=None)
    parts = [f"worst max |diff| {worst:.2e}" if worst is not None else ""]
    if "greedy_identical" in report:
        parts.append(f"greedy tokens identical: {report['greedy_identical']}")
    if "max_abs_diff" in report:
        parts.append(f"max |Δp| {report['max_abs_diff']:.2e} (tolerance {report.get('tolerance')})")
    return "; ".join(p for p in parts if p)


def record_check(model_id: str, report: dict | None = None) -> dict:
    """Run the parity check of an exported model (unless given its report) and write the verdict into its
    build.json: the model's result and, per variant, what checked it and whether it passed."""
    if report is None:
        with allow_unchecked():  # the graph has no verdict yet; what the check loads is not kept for serving
            report = check_model(model_id)
    path = model_dir(model_id) / "build.json"
    manifest = json.loads(path.read_text())
    ok = bool(report["ok"])
    manifest["check"] = {"ok": ok, "summary": summarize(report), "command": "python -m export --check",
                         "checked_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                         "report": json.loads(json.dumps(report, default=str))}
    for name, entry in manifest.get("variants", {}).items():
        entry["check"] = variant_verdict(name, entry, ok)
    path.write_text(json.dumps(manifest, indent=2))
    return report


def run_checks(ids: list[str] | None = None) -> bool:
    """The parity report for these (or all) models; each verdict is also recorded in the model's build.json."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    all_ok = True
    for model_id in ids or list(REGISTRY):
        report = record_check(model_id)
        print(format_report(report), flush=True)
        all_ok &= bool(report["ok"])
    print("parity: all models within tolerance" if all_ok else "parity: FAILED", flush=True)
    return all_ok
