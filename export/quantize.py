"""CPU variants of the exported fp32 graphs: block-quantized weights read by onnxruntime's MatMulNBits kernel.

Why: decoding one token reads every weight once, so on a 2-core CPU the decoder is bound by the bytes it
reads per token (539 MB for SmolLM2 in fp32, 2.5 GB for Qwen). MatMulNBits keeps 4- or 8-bit weights in
blocks of 32 along K with one fp32 scale per block (and computes with int8 activations, accuracy_level 4).

Quality: the fp32 graphs are themselves dequantized GGUF weights (SmolLM2: Q4_1 layers, Q8_0 embedding;
Qwen: Q5_0/Q8_0/Q4_K/Q6_K). Block quantization with the same block (32) can reproduce those weights
exactly when the scales follow the GGUF grid, so each matrix is quantized with the candidate recipe of
least error (`quantize_weight`), and 'lossless' matrices stay lossless:
  - Q8_0 / Q5_0 / Q4_0 blocks: 8-bit symmetric with scale absmax/127 or absmax/128 (exact);
  - Q4_1 blocks (value = d*q + m, q in 0..15, m any float): 4-bit with scale d; the part of m that an
    integer zero point cannot express is added back by a small fp32 matmul of per-block activation sums
    ("min correction", exact: see `_add_min_correction`).
The tied SmolLM2 output head (MatMul by Transpose(embedding)) is first materialised as an initializer;
otherwise quantizers skip it ("B is not constant") and 28M fp32 parameters stay on the per-token path.

The gate (`quality_gate`) compares each variant with fp32: greedy tokens over 5 chat prompts and
perplexity on export/data/perplexity_text.txt (English + Chinese). A variant is the CPU default only if
it passes; never on CUDA (the int8-compute path is CPU-only).

CLI: `python -m export.quantize [--only ID ...] [--variants q4 q8 ...]` quantizes models already in the
cache, runs the gate and merges the entries into their build.json.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MS_DOMAIN = "com.microsoft"
TWO_GB = 2**31 - 2**20
BLOCK = 32
PERPLEXITY_TEXT = Path(__file__).resolve().parent / "data" / "perplexity_text.txt"
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


# --- loading and saving ---------------------------------------------------------------------------------

def load_model(path: Path) -> onnx.ModelProto:
    return onnx.load(str(path), load_external_data=True)


def save_model(model: onnx.ModelProto, path: Path) -> list[str]:
    """Write `path` (and `<name>_data` beside it when the graph is over protobuf's 2 GB); returns the files."""
    path = Path(path)
    data = path.with_name(path.name + "_data")
    data.unlink(missing_ok=True)
    large = model.ByteSize() > TWO_GB
    onnx.save(model, str(path), save_as_external_data=large, all_tensors_to_one_file=True,
              location=data.name if large else None, size_threshold=1024)
    return [path.name] + ([data.name] if large else [])


# --- graph edits ------------------------------------------------------------------------------------------

def untie_lm_head(model: onnx.ModelProto) -> list[str]:
    """Replace Transpose(initializer) feeding a MatMul by a transposed initializer; returns the folded names.

    optimum exports a tied output head as MatMul(hidden, Transpose(embed_tokens.weight)); onnxruntime folds
    it at load time for fp32, but weight quantizers only see constant B and skip it.
    """
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    folded = []
    for node in list(graph.node):
        if node.op_type != "Transpose" or node.input[0] not in inits:
            continue
        users = consumers.get(node.output[0], [])
        if not users or any(u.op_type != "MatMul" or u.input[1] != node.output[0] for u in users):
            continue
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        weight = numpy_helper.to_array(inits[node.input[0]])
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight.transpose(perm)), node.output[0]))
        graph.node.remove(node)
        folded.append(node.output[0])
    return folded


def weight_matmuls(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, onnx.TensorProto]]:
    """MatMul nodes whose B is a 2-D fp32 initializer (the linear layers and the output head)."""
    inits = {t.name: t for t in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in inits:
            tensor = inits[node.input[1]]
            if len(tensor.dims) == 2 and tensor.data_type == TensorProto.FLOAT:
                found.append((node, tensor))
    return found


# --- block quantization --------------------------------------------------------------------------------

@dataclass
class QuantizedWeight:
    bits: int
    block_size: int
    packed: np.ndarray  # uint8 [N, k_blocks, block_size * bits / 8]
    scales: np.ndarray  # float32 [N * k_blocks]
    zero_points: np.ndarray | None  # uint8, packed like MatMulNBits wants; None = 2**(bits-1)
    correction: np.ndarray | None  # float32 [k_blocks, N]: added as blocksum(A) @ correction
    max_abs_error: float  # of the dequantized weight (with correction) against fp32
    recipe: str


def _blocks(weight: np.ndarray, block_size: int) -> np.ndarray:
    """[K, N] -> [N, k_blocks, block_size] (zero-padded along K)."""
    k, n = weight.shape
    k_blocks = math.ceil(k / block_size)
    padded = np.zeros((k_blocks * block_size, n), dtype=np.float32)
    padded[:k] = weight
    return np.ascontiguousarray(padded.T).reshape(n, k_blocks, block_size)


def _pack(q: np.ndarray, bits: int) -> np.ndarray:
    if bits == 8:
        return q.astype(np.uint8)
    q = q.astype(np.uint8)
    return (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)


def _pack_zero_points(zp: np.ndarray, bits: int) -> np.ndarray:
    """[N, k_blocks] -> MatMulNBits layout: 8-bit one byte each; 4-bit two per byte, rows padded to bytes."""
    if bits == 8:
        return zp.astype(np.uint8).reshape(-1)
    n, k_blocks = zp.shape
    if k_blocks % 2:
        zp = np.concatenate([zp, np.zeros((n, 1), dtype=zp.dtype)], axis=1)
    zp = zp.astype(np.uint8)
    return (zp[:, 0::2] | (zp[:, 1::2] << 4)).reshape(-1)


def _symmetric(blocks: np.ndarray, bits: int, divisor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scale = absmax / divisor; q = round(w / scale) + 2**(bits-1) (MatMulNBits' default zero point)."""
    half = 2 ** (bits - 1)
    absmax = np.abs(blocks).max(-1)
    scales = np.where(absmax > 0, absmax / divisor, 1.0).astype(np.float32)
    q = np.clip(np.rint(blocks / scales[..., None]), -half, half - 1)
    recon = q * scales[..., None]
    return (q + half).astype(np.uint8), scales, recon


def _asymmetric(blocks: np.ndarray, bits: int, correct_min: bool):
    """scale = (max - min) / (2**bits - 1); integer zero point; optional exact min correction."""
    levels = 2**bits - 1
    lo, hi = blocks.min(-1), blocks.max(-1)
    if not correct_min:  # the range must hold 0 so that an integer zero point exists (onnxruntime's RTN)
        lo, hi = np.minimum(lo, 0), np.maximum(hi, 0)
    scales = np.where(hi > lo, (hi - lo) / levels, 1.0).astype(np.float32)
    zp = np.clip(np.rint(-lo / scales), 0, levels)
    q = np.clip(np.rint(blocks / scales[..., None] + zp[..., None]), 0, levels)
    recon = (q - zp[..., None]) * scales[..., None]
    correction = None
    if correct_min:
        # value = scale * (q - zp) + residual, residual = lo + zp * scale (|residual| <= scale / 2)
        q = np.clip(np.rint((blocks - lo[..., None]) / scales[..., None]), 0, levels)
        residual = (lo + zp * scales).astype(np.float32)
        recon = (q - zp[..., None]) * scales[..., None] + residual[..., None]
        correction = np.ascontiguousarray(residual.T)  # [k_blocks, N]
    return q.astype(np.uint8), scales, zp.astype(np.uint8), recon, correction


def quantize_weight(weight: np.ndarray, recipes: tuple[str, ...], block_size: int = BLOCK) -> QuantizedWeight:
    """Quantize B [K, N] with each recipe and keep the one of least max error (ties: the first listed).

    Recipes: 'q4' (4-bit, integer zero point), 'q4c' (4-bit + exact min correction), 'q4s' (4-bit
    symmetric), 'q8' (8-bit symmetric, scale absmax/127 or /128, whichever is exact for the block).
    """
    blocks = _blocks(weight, block_size)
    k = weight.shape[0]
    best: QuantizedWeight | None = None
    for recipe in recipes:
        correction = zp = None
        if recipe == "q8":
            bits = 8
            q127, s127, r127 = _symmetric(blocks, 8, 127.0)
            q128, s128, r128 = _symmetric(blocks, 8, 128.0)
            use128 = np.abs(r128 - blocks).max(-1) < np.abs(r127 - blocks).max(-1)
            q = np.where(use128[..., None], q128, q127)
            scales = np.where(use128, s128, s127)
            recon = np.where(use128[..., None], r128, r127)
        elif recipe == "q4s":
            bits = 4
            q, scales, recon = _symmetric(blocks, 4, 8.0)
        elif recipe in ("q4", "q4c"):
            bits = 4
            q, scales, zp, recon, correction = _asymmetric(blocks, 4, correct_min=recipe == "q4c")
        else:
            raise ValueError(f"unknown quantization recipe {recipe!r}")
        error = float(np.abs(recon - blocks).max())
        if best is None or error < best.max_abs_error * 0.999:  # a lossless recipe wins over a lossy one
            best = QuantizedWeight(bits, block_size, _pack(q, bits), scales.reshape(-1).astype(np.float32),
                                   None if zp is None else _pack_zero_points(zp, bits), correction, error, recipe)
    assert best is not None and k > 0
    return best


def dequantize(qw: QuantizedWeight, k: int) -> np.ndarray:
    """The weight [K, N] a QuantizedWeight stands for (for tests and error reports)."""
    n, k_blocks, _ = qw.packed.shape
    if qw.bits == 8:
        q = qw.packed.astype(np.float32)
    else:
        q = np.stack([qw.packed & 0x0F, qw.packed >> 4], axis=-1).reshape(n, k_blocks, -1).astype(np.float32)
    if qw.zero_points is None:
        zp = np.full((n, k_blocks), 2 ** (qw.bits - 1), dtype=np.float32)
    elif qw.bits == 8:
        zp = qw.zero_points.reshape(n, k_blocks).astype(np.float32)
    else:
        zp = np.stack([qw.zero_points & 0x0F, qw.zero_points >> 4], -1).reshape(n, -1)[:, :k_blocks].astype(np.float32)
    values = (q - zp[..., None]) * qw.scales.reshape(n, k_blocks)[..., None]
    if qw.correction is not None:
        values = values + qw.correction.T[..., None]
    return values.reshape(n, -1)[:, :k].T


# --- writing a variant ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """How one variant quantizes: candidate recipes for the layers and for the output head."""

    layers: tuple[str, ...]
    head: tuple[str, ...]
    accuracy_level: int = 4  # int8 activations: the fast MLAS path (1 = fp32 activations, slow on AVX2)
    block_size: int = BLOCK
    precision: str = ""


RECIPES: dict[str, Recipe] = {
    # lossless for GGUF-dequantized weights where possible, 4-bit elsewhere
    "q4": Recipe(layers=("q4c", "q8", "q4"), head=("q8",), precision="int4/int8 blocks of 32 (MatMulNBits)"),
}


def _add_min_correction(graph: onnx.GraphProto, node: onnx.NodeProto, output: str, qw: QuantizedWeight,
                        k: int, cache: dict[str, str], prefix: str) -> list[onnx.NodeProto]:
    """output = MatMulNBits(A) + blocksum(A) @ correction, blocksum(A)[..., b] = sum of A over K block b."""
    a = node.input[0]
    nodes = []
    k_blocks = qw.correction.shape[0]
    if a not in cache:
        name = f"{prefix}/blocksum"
        pad = k_blocks * qw.block_size - k
        src = a
        if pad:
            pads = numpy_helper.from_array(np.array([0, 0, 0, 0, 0, pad], dtype=np.int64), name + "_pads")
            graph.initializer.append(pads)
            nodes.append(helper.make_node("Pad", [a, pads.name], [name + "_padded"], name=name + "/Pad"))
            src = name + "_padded"
        shape = numpy_helper.from_array(np.array([0, 0, k_blocks, qw.block_size], dtype=np.int64), name + "_shape")
        axes = numpy_helper.from_array(np.array([-1], dtype=np.int64), name + "_axes")
        graph.initializer.extend([shape, axes])
        nodes.append(helper.make_node("Reshape", [src, shape.name], [name + "_blocks"], name=name + "/Reshape"))
        nodes.append(helper.make_node("ReduceSum", [name + "_blocks", axes.name], [name + "_out"], name=name + "/ReduceSum",
                                      keepdims=0))
        cache[a] = name + "_out"
    corr = numpy_helper.from_array(qw.correction.astype(np.float32), f"{prefix}/min_correction")
    graph.initializer.append(corr)
    nodes.append(helper.make_node("MatMul", [cache[a], corr.name], [f"{prefix}/correction_out"], name=f"{prefix}/correction"))
    nodes.append(helper.make_node("Add", [f"{prefix}/nbits_out", f"{prefix}/correction_out"], [output], name=f"{prefix}/add_correction"))
    return nodes


def quantize_model(model: onnx.ModelProto, recipe: Recipe, log=None) -> dict:
    """Replace every constant-B MatMul by MatMulNBits in place; returns a summary (recipes used, errors)."""
    untied = untie_lm_head(model)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    matmuls = weight_matmuls(model)
    last = matmuls[-1][0].name if matmuls else None
    order = {id(n): i for i, n in enumerate(graph.node)}
    summary = {"untied": untied, "matrices": 0, "recipes": {}, "max_abs_error": 0.0, "bytes": 0}
    blocksums: dict[str, str] = {}
    replacements: dict[int, list[onnx.NodeProto]] = {}
    dead = set()
    for node, tensor in matmuls:
        weight = numpy_helper.to_array(tensor)
        k, n = weight.shape
        is_head = node.name == last and n > 4 * k  # the output head: [hidden, vocab]
        candidates = recipe.head if is_head else recipe.layers
        if not candidates:  # this part stays fp32
            continue
        qw = quantize_weight(weight, candidates, recipe.block_size)
        prefix = (node.name or tensor.name).rstrip("/") + "_Q"
        b = numpy_helper.from_array(qw.packed, prefix + "/B")
        s = numpy_helper.from_array(qw.scales, prefix + "/scales")
        graph.initializer.extend([b, s])
        inputs = [node.input[0], b.name, s.name]
        if qw.zero_points is not None:
            zp = numpy_helper.from_array(qw.zero_points, prefix + "/zero_points")
            graph.initializer.append(zp)
            inputs.append(zp.name)
        out = prefix + "/nbits_out" if qw.correction is not None else node.output[0]
        new = [helper.make_node("MatMulNBits", inputs, [out], name=prefix + "/MatMulNBits", domain=MS_DOMAIN,
                                K=k, N=n, bits=qw.bits, block_size=qw.block_size,
                                accuracy_level=recipe.accuracy_level)]
        if qw.correction is not None:
            new += _add_min_correction(graph, node, node.output[0], qw, k, blocksums, prefix)
        replacements[order[id(node)]] = new
        dead.add(tensor.name)
        summary["matrices"] += 1
        summary["recipes"][qw.recipe] = summary["recipes"].get(qw.recipe, 0) + 1
        summary["max_abs_error"] = max(summary["max_abs_error"], qw.max_abs_error)
        summary["bytes"] += qw.packed.nbytes + qw.scales.nbytes + (0 if qw.correction is None else qw.correction.nbytes)
        if log:
            log(f"    {node.name}: {k}x{n} -> {qw.recipe} (max |err| {qw.max_abs_error:.2e})")
    nodes = []
    for i, node in enumerate(graph.node):
        nodes.extend(replacements.get(i, [node]))
    del graph.node[:]
    graph.node.extend(nodes)
    still_used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name not in dead or t.name in still_used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return summary


def write_variant(model_dir: Path, name: str, recipe: Recipe, source: str = "model.onnx", log=None) -> dict:
    model_dir = Path(model_dir)
    model = load_model(model_dir / source)
    start = time.perf_counter()
    summary = quantize_model(model, recipe, log=log)
    files = save_model(model, model_dir / f"model_{name}.onnx")
    summary["files"] = files
    summary["seconds"] = round(time.perf_counter() - start, 1)
    return summary


# --- quality gate ---------------------------------------------------------------------------------------

def _cpu_session(path: Path):
    import onnxruntime as ort

    from models.runtime import session_options

    return ort.InferenceSession(str(path), sess_options=session_options(), providers=["CPUExecutionProvider"])


class GreedyDecoder:
    """Greedy decoding and perplexity for one ONNX file of a decoder (plain `session.run`, CPU).

    The gate compares two files of the same model with this same loop, so only the weights differ."""

    def __init__(self, path: Path, config: dict):
        self.session = _cpu_session(path)
        self.layers = config["num_hidden_layers"]
        self.kv_heads = config.get("num_key_value_heads", config["num_attention_heads"])
        self.head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
        names = {i.name for i in self.session.get_inputs()}
        self.has_position_ids = "position_ids" in names
        self.outputs = ["logits"] + [f"present.{i}.{kv}" for i in range(self.layers) for kv in ("key", "value")]

    def forward(self, ids: list[int], past: list[np.ndarray] | None, past_len: int) -> tuple[np.ndarray, list]:
        """Logits [len(ids), vocab] after `past_len` cached positions, and the new cache."""
        total = past_len + len(ids)
        feed = {"input_ids": np.asarray([ids], dtype=np.int64), "attention_mask": np.ones((1, total), dtype=np.int64)}
        if self.has_position_ids:
            feed["position_ids"] = np.arange(past_len, total, dtype=np.int64)[None, :]
        if past is None:
            past = [np.zeros((1, self.kv_heads, 0, self.head_dim), dtype=np.float32)] * (2 * self.layers)
        for i in range(self.layers):
            feed[f"past_key_values.{i}.key"], feed[f"past_key_values.{i}.value"] = past[2 * i], past[2 * i + 1]
        logits, *present = self.session.run(self.outputs, feed)
        return logits[0], present

    def greedy(self, prompt_ids: list[int], max_new_tokens: int, eos_ids: set[int]) -> list[int]:
        logits, past = self.forward(prompt_ids, None, 0)
        tokens: list[int] = []
        position = len(prompt_ids)
        while len(tokens) < max_new_tokens:
            token = int(np.argmax(logits[-1]))
            tokens.append(token)
            if token in eos_ids:
                break
            logits, past = self.forward([token], past, position)
            position += 1
        return tokens

    def perplexity(self, ids: list[int]) -> float:
        logits, _ = self.forward(ids, None, 0)
        logits = logits[:-1].astype(np.float64)
        log_norm = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
        nll = log_norm - logits[np.arange(len(ids) - 1), ids[1:]]
        return float(np.exp(nll.mean()))


def _eos_ids(config: dict, tokenizer) -> set[int]:
    ids: set[int] = set()
    for source in (config.get("eos_token_id"), tokenizer.eos_token_id):
        if isinstance(source, int):
            ids.add(source)
        elif isinstance(source, list):
            ids.update(source)
    for token in ("<|im_end|>", "<|endoftext|>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    return ids


def decoder_gate(model_dir: Path, variant_file: str, reference_file: str = "model.onnx",
                 prompts: tuple[str, ...] = GATE_PROMPTS, tokens: int = GATE_TOKENS,
                 text: str | None = None) -> dict:
    """Greedy tokens (chat template) and perplexity of a variant against the fp32 reference file."""
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    eos = _eos_ids(config, tokenizer)
    text = PERPLEXITY_TEXT.read_text(encoding="utf-8") if text is None else text
    text_ids = tokenizer(text)["input_ids"]
    result = {"prompts": len(prompts), "tokens": tokens, "perplexity_tokens": len(text_ids)}
    runs = {}
    for label, file in (("reference", reference_file), ("variant", variant_file)):
        decoder = GreedyDecoder(model_dir / file, config)
        outputs = []
        for prompt in prompts:
            ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
            outputs.append(decoder.greedy(list(ids), tokens, eos))
        runs[label] = {"tokens": outputs, "perplexity": decoder.perplexity(text_ids)}
        del decoder
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
    from transformers import AutoTokenizer

    from models.sentiment import MAX_TOKENS, normalize_text

    model_dir = Path(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    texts = classifier_texts() if texts is None else texts
    cleaned = [normalize_text(t) for t in texts]
    batches = [[t] for t in cleaned] + [cleaned[i:i + 16] for i in range(0, len(cleaned), 16)]
    probs = {}
    for label, file in (("reference", reference_file), ("variant", variant_file)):
        session = _cpu_session(model_dir / file)
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


def _variant_file(model_dir: Path, variant: str) -> str:
    build = Path(model_dir) / "build.json"
    if build.is_file():
        entry = json.loads(build.read_text()).get("variants", {}).get(variant)
        if entry:
            return entry["file"]
    return f"model_{variant}.onnx"


def quality_gate(model_id: str, variant: str, model_dir: Path | None = None) -> dict:
    """Compare a written variant with the fp32 graph of the same model; the result has 'pass'.

    Decoders: greedy tokens on GATE_PROMPTS (first GATE_TOKENS) and perplexity on PERPLEXITY_TEXT; pass when
    all prompts give identical tokens OR perplexity is within PPL_TOLERANCE. Classifier: probabilities
    within CLASSIFIER_TOLERANCE. Both measures are always reported."""
    from models.paths import model_dir as cache_dir
    from models.registry import get_spec

    spec = get_spec(model_id)
    model_dir = Path(model_dir) if model_dir else cache_dir(model_id)
    file = _variant_file(model_dir, variant)
    start = time.perf_counter()
    if spec.task == "text-classification":
        result = classifier_gate(model_dir, file)
    elif (model_dir / "config.json").is_file() and "num_hidden_layers" in json.loads((model_dir / "config.json").read_text()) \
            and spec.task in ("text-generation", "translation"):
        result = decoder_gate(model_dir, file)
    else:
        raise ValueError(f"no quality gate for {model_id!r} (task {spec.task!r})")
    result.update({"model": model_id, "variant": variant, "file": file,
                   "seconds": round(time.perf_counter() - start, 1)})
    return result
