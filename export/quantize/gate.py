"""The quality gate: a written variant against the fp32 export of the same model.

Decoders: greedy tokens on GATE_PROMPTS (first GATE_TOKENS) and perplexity on PERPLEXITY_TEXT, both through
the one decoder abstraction (models.decoder.DecoderGraph) on private CPU sessions of the two files, so only
the weights differ. Classifier: probabilities within CLASSIFIER_TOLERANCE.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

PERPLEXITY_TEXT = Path(__file__).resolve().parent.parent / "data" / "perplexity_text.txt"
GATE_PROMPTS = (
    "Write a short story about a robot who learns to paint.",
    "Explain in two sentences why the sky is blue.",
    "List three things a startup should measure every week.",
    "用一句话介绍大语言模型。",
    "Translate to French: The weather is nice today and we are going to the park.",
)
GATE_TOKENS = 32
PPL_TOLERANCE = 0.03  # relative perplexity increase allowed against fp32
CLASSIFIER_TOLERANCE = 0.01  # max |probability difference| against fp32


def decoder_gate(model_dir: Path, variant_file: str, reference_file: str = "model.onnx",
                 prompts: tuple[str, ...] = GATE_PROMPTS, tokens: int = GATE_TOKENS,
                 text: str | None = None) -> dict:
    """Greedy tokens (chat template) and perplexity of a variant against the fp32 reference file."""
    from transformers import AutoTokenizer

    from models.decoder import DecoderGraph

    model_dir = Path(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    text = PERPLEXITY_TEXT.read_text(encoding="utf-8") if text is None else text
    runs = {}
    for label, file in (("reference", reference_file), ("variant", variant_file)):
        decoder = DecoderGraph.from_file(model_dir / file, model_dir, tokenizer)
        text_ids = tokenizer(text)["input_ids"][: decoder.config.max_context]
        outputs = []
        for prompt in prompts:
            ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
            outputs.append(decoder.greedy(list(ids), tokens))
        runs[label] = {"tokens": outputs, "perplexity": decoder.perplexity(text_ids)}
        del decoder
    result = {"prompts": len(prompts), "tokens": tokens, "perplexity_tokens": len(text_ids)}
    divergence = []
    for ref, got in zip(runs["reference"]["tokens"], runs["variant"]["tokens"]):
        first = next((i for i, (a, b) in enumerate(zip(ref, got)) if a != b), None)
        if first is None and len(ref) != len(got):
            first = min(len(ref), len(got))
        divergence.append(first)
    ppl_ref, ppl = runs["reference"]["perplexity"], runs["variant"]["perplexity"]
    result.update({
        "greedy_identical": sum(d is None for d in divergence),
        "first_divergence": divergence,  # per prompt: index of the first differing token, None if identical
        "perplexity_fp32": round(ppl_ref, 4),
        "perplexity": round(ppl, 4),
        "perplexity_change": round(ppl / ppl_ref - 1, 5),
    })
    result["tokens_ok"] = result["greedy_identical"] == len(prompts)
    result["perplexity_ok"] = abs(result["perplexity_change"]) <= PPL_TOLERANCE
    result["pass"] = result["tokens_ok"] or result["perplexity_ok"]
    return result


def classifier_texts() -> list[str]:
    from models.paths import REPO_ROOT

    rows = (REPO_ROOT / "models" / "data" / "sentiment_checkset.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [row.split("\t", 1)[1] for row in rows if "\t" in row]


def classifier_gate(model_dir: Path, variant_file: str, reference_file: str = "model.onnx",
                    texts: list[str] | None = None) -> dict:
    """Max |probability difference| against fp32: each text alone and all texts as padded batches."""
    import onnxruntime as ort
    from transformers import AutoTokenizer

    from models.runtime import session_options
    from models.sentiment import MAX_TOKENS, normalize_text

    model_dir = Path(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    texts = classifier_texts() if texts is None else texts
    cleaned = [normalize_text(t) for t in texts]
    batches = [[t] for t in cleaned] + [cleaned[i:i + 16] for i in range(0, len(cleaned), 16)]
    probs = {}
    for label, file in (("reference", reference_file), ("variant", variant_file)):
        session = ort.InferenceSession(str(model_dir / file), sess_options=session_options(),
                                       providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
        out = []
        for batch in batches:
            enc = tokenizer(batch, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="np")
            feed = {k: v.astype(np.int64) for k, v in enc.items() if k in names}
            out.append(session.run(["probabilities"], feed)[0])
        probs[label] = np.concatenate(out)
    diff = float(np.abs(probs["reference"] - probs["variant"]).max())
    same_label = float((probs["reference"].argmax(1) == probs["variant"].argmax(1)).mean())
    return {"texts": len(texts), "max_abs_diff": round(diff, 5), "same_label_fraction": same_label,
            "tolerance": CLASSIFIER_TOLERANCE, "pass": diff <= CLASSIFIER_TOLERANCE}


def is_decoder(model_dir: Path) -> bool:
    config = Path(model_dir) / "config.json"
    if not config.is_file():
        return False
    data = json.loads(config.read_text())
    return data.get("model_type") in ("llama", "qwen2") and (Path(model_dir) / "model.onnx").is_file()


def _variant_file(model_dir: Path, variant: str) -> str:
    build = Path(model_dir) / "build.json"
    if build.is_file():
        entry = json.loads(build.read_text()).get("variants", {}).get(variant)
        if entry:
            return entry["file"]
    return f"model_{variant}.onnx"


def quality_gate(model_id: str, variant: str, model_dir: Path | None = None, file: str | None = None) -> dict:
    """Compare a written variant with the fp32 graph of the same model; the result has 'pass'.

    Decoders: greedy tokens on GATE_PROMPTS (first GATE_TOKENS) and perplexity on PERPLEXITY_TEXT; pass when
    all prompts give identical tokens OR perplexity is within PPL_TOLERANCE. Classifier: probabilities
    within CLASSIFIER_TOLERANCE. Both measures are always reported."""
    from models.paths import model_dir as cache_dir
    from models.registry import get_spec

    spec = get_spec(model_id)
    model_dir = Path(model_dir) if model_dir else cache_dir(model_id)
    file = file or _variant_file(model_dir, variant)
    start = time.perf_counter()
    if spec.task == "text-classification":
        result = classifier_gate(model_dir, file)
    elif spec.task in ("text-generation", "translation") and is_decoder(model_dir):
        result = decoder_gate(model_dir, file)
    else:
        raise ValueError(f"no quality gate for {model_id!r} (task {spec.task!r})")
    result.update({"model": model_id, "variant": variant, "file": file,
                   "seconds": round(time.perf_counter() - start, 1)})
    return result


def format_gate(gate: dict) -> str:
    verdict = "PASS" if gate["pass"] else "FAIL"
    if "perplexity_change" in gate:
        return (f"{verdict}: greedy tokens identical on {gate['greedy_identical']}/{gate['prompts']} prompts "
                f"(first divergence {gate['first_divergence']}), perplexity {gate['perplexity']:.3f} vs fp32 "
                f"{gate['perplexity_fp32']:.3f} ({gate['perplexity_change']:+.2%})")
    return f"{verdict}: max |Δp| {gate['max_abs_diff']:.4f} (tolerance {gate['tolerance']}), same label {gate['same_label_fraction']:.0%}"
