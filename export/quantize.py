"""CPU variants of the exported fp32 graphs: block-quantized weights (onnxruntime's MatMulNBits) in a fused graph.

Why: a decode step reads every weight once, and on a 2-core CPU it also pays for every graph node. Two
changes, both checked by `quality_gate` against the fp32 export:

1. Weights in 4- or 8-bit blocks of 32 along K (MatMulNBits, int8 activations: accuracy_level 4, the
   fast MLAS path on AVX2). The fp32 graphs are dequantized GGUF weights (SmolLM2: Q4_1 layers, Q8_0
   embedding; Qwen: mostly Q5_0/Q8_0), so each matrix takes the candidate recipe of least error and most
   come out bit-exact (`quantize_weight`):
     - Q8_0 / Q5_0 / Q4_0 blocks: 8-bit symmetric, scale absmax/127 or absmax/128 (exact);
     - Q4_1 blocks (value = d*q + m, q in 0..15, any float m): 4-bit with scale d; the part of m an
       integer zero point cannot hold is added back by a small fp32 matmul of per-block activation
       sums (the "min correction"). Without it SmolLM2's perplexity rises 26 %; with it the weights
       are exact.
   The tied SmolLM2 head (MatMul by Transpose(embedding)) is quantized from the transposed embedding;
   quantizers that only look for constant B skip it and leave 28M fp32 parameters on the per-token path.
2. For decoders, a fused graph (`build_fused_decoder`) with the same inputs and outputs as optimum's
   (logits, present.*, attentions.*): SkipSimplifiedLayerNormalization, GroupQueryAttention (rotary, KV
   cache, causal softmax; qk_output=2 returns the attention probabilities), q/k/v and gate/up packed into
   one matmul each. ~25 nodes per layer instead of ~100; fp32 logits within 1e-4 of the export.

The remaining difference from fp32 is the int8 rounding of activations inside MatMulNBits: perplexity
+0.5-0.7 %, greedy tokens identical on some prompts and diverging after a few tokens on others
(near-ties). accuracy_level 1 (fp32 activations) is exact but as slow as fp32 on AVX2.

`add_cpu_variants(model_dir, spec)` writes the variants, runs the gate, and returns manifest entries;
a variant is the CPU default only when the gate passes, never the CUDA default.
CLI: `python -m export.quantize [--only ID ...] [--lossy-int4]` does the same for models already in the
cache and merges the entries into their build.json.
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
    large = sum(len(t.raw_data) for t in model.graph.initializer) > TWO_GB - 2**27  # ByteSize() fails past 2 GB
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


# --- recipes and graph writing ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """Candidate quantizations (see quantize_weight) for the layers and for the output head; () keeps fp32."""

    layers: tuple[str, ...]
    head: tuple[str, ...]
    accuracy_level: int = 4  # int8 activations: the fast MLAS path (1 = fp32 activations: as slow as fp32 on AVX2)
    block_size: int = BLOCK


# Least error first: exact 4-bit where the source weights are 4-bit, exact 8-bit where they are 5- or 8-bit.
LOSSLESS_FIRST = Recipe(layers=("q4c", "q8"), head=("q8",))
# Every layer in 4 bits (lossy for Qwen's Q5_0 weights; its perplexity gate margin is small): opt-in.
ALL_INT4 = Recipe(layers=("q4c",), head=("q8",))
# Encoders/classifiers: plain fp32 weights, 8-bit symmetric blocks.
INT8 = Recipe(layers=("q8",), head=("q8",))


class _GraphWriter:
    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.blocksums: dict[tuple[str, int], str] = {}
        self.summary = {"matrices": 0, "recipes": {}, "max_abs_error": 0.0, "bytes": 0}

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], name: str, domain: str = "", **attrs) -> list[str]:
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain or None, **attrs))
        return outputs

    def linear(self, x: str, weight: np.ndarray, out: str, name: str, recipes: tuple[str, ...], level: int,
               block_size: int = BLOCK, bias: np.ndarray | None = None) -> str:
        """out = x @ weight (+ bias): MatMulNBits with the least-error recipe, or fp32 MatMul (recipes=())."""
        k, n = weight.shape
        if not recipes:
            result = self.node("MatMul", [x, self.const(name + ".weight", weight.astype(np.float32))],
                               [out if bias is None else out + "_nobias"], name + "/MatMul")[0]
        else:
            qw = quantize_weight(weight, recipes, block_size)
            inputs = [x, self.const(name + ".qweight", qw.packed), self.const(name + ".scales", qw.scales)]
            inputs.append(self.const(name + ".zero_points", qw.zero_points) if qw.zero_points is not None else "")
            if bias is not None and qw.correction is None:
                inputs += ["", self.const(name + ".bias", bias.astype(np.float32))]
                bias = None
            while inputs and inputs[-1] == "":
                inputs.pop()
            plain = qw.correction is None and bias is None
            result = self.node("MatMulNBits", inputs, [out if plain else out + "_nbits"], name + "/MatMulNBits",
                               MS_DOMAIN, K=k, N=n, bits=qw.bits, block_size=qw.block_size, accuracy_level=level)[0]
            if qw.correction is not None:
                corrected = self.node("MatMul", [self.blocksum(x, k, qw.block_size),
                                                 self.const(name + ".min_correction", qw.correction)],
                                      [name + "/correction_out"], name + "/correction")[0]
                result = self.node("Add", [result, corrected], [out if bias is None else out + "_corrected"],
                                   name + "/add_correction")[0]
            s = self.summary
            s["matrices"] += 1
            s["recipes"][qw.recipe] = s["recipes"].get(qw.recipe, 0) + 1
            s["max_abs_error"] = max(s["max_abs_error"], qw.max_abs_error)
            s["bytes"] += qw.packed.nbytes + qw.scales.nbytes + (0 if qw.correction is None else qw.correction.nbytes)
        if bias is not None:
            result = self.node("Add", [result, self.const(name + ".bias", bias.astype(np.float32))], [out], name + "/bias")[0]
        return result

    def blocksum(self, x: str, k: int, block_size: int) -> str:
        """Sum of x over each block of `block_size` along its last axis, shared by the matmuls that read x.

        A matmul by a 0/1 matrix [K, k_blocks]: works for any rank of x and costs one small sgemv."""
        key = (x, block_size)
        if key not in self.blocksums:
            k_blocks = math.ceil(k / block_size)
            ones = np.zeros((k, k_blocks), dtype=np.float32)
            ones[np.arange(k), np.arange(k) // block_size] = 1.0
            name = f"{x}/blocksum{block_size}"
            self.blocksums[key] = self.node("MatMul", [x, self.const(name + ".ones", ones)], [name + "_out"],
                                            name + "/MatMul")[0]
        return self.blocksums[key]


def quantize_model(model: onnx.ModelProto, recipe: Recipe, log=None) -> dict:
    """Replace every constant-B MatMul (after untying the head) by MatMulNBits, in place, keeping the rest of
    the graph as it is (any model: encoders, the classifier). Returns a summary: recipes used, max error."""
    untied = untie_lm_head(model)
    graph = model.graph
    matmuls = weight_matmuls(model)
    head = matmuls[-1][0].name if matmuls else None
    writer = _GraphWriter()
    replacements: dict[str, list[onnx.NodeProto]] = {}
    for node, tensor in matmuls:
        weight = numpy_helper.to_array(tensor)
        k, n = weight.shape
        recipes = recipe.head if node.name == head and n > 4 * k else recipe.layers
        if not recipes:
            continue
        start = len(writer.nodes)
        prefix = (node.name or tensor.name).rstrip("/")
        writer.linear(node.input[0], weight, node.output[0], prefix, recipes, recipe.accuracy_level, recipe.block_size)
        replacements[node.name or node.output[0]] = writer.nodes[start:]
        if log:
            log(f"    {prefix}: {k}x{n}")
    nodes = []
    for node in graph.node:
        nodes.extend(replacements.get(node.name or node.output[0], [node]))
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(writer.initializers)
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return dict(writer.summary, untied=untied)


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
    text_ids = tokenizer(text)["input_ids"][: config.get("max_position_embeddings", 2048)]
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


# --- fused decoder graph ----------------------------------------------------------------------------------
#
# optimum's eager-attention export spends ~100 small nodes per layer (shape arithmetic, rotary slices,
# repeat_kv, mask building); on 2 cores they cost about a third of a quantized decode step. The fused graph
# has the same inputs and outputs (logits, present.*, attentions.*) and the same weights, written with
# onnxruntime's CPU contrib ops: SkipSimplifiedLayerNormalization (residual add + RMSNorm),
# GroupQueryAttention (rotary, KV cache concat, causal softmax; qk_output=2 returns the attention
# probabilities the Attention tab shows), MatMulNBits with q/k/v and gate/up packed into one matmul each.

class DecoderWeights:
    """The fp32 tensors of an optimum Llama/Qwen2 decoder export, found by optimum's node and tensor names."""

    def __init__(self, model: onnx.ModelProto):
        graph = model.graph
        self.inits = {t.name: t for t in graph.initializer}
        self.by_name = {n.name: n for n in graph.node}
        self.producers = {o: n for n in graph.node for o in n.output}

    def array(self, name: str) -> np.ndarray:
        return numpy_helper.to_array(self.inits[name])

    def matmul(self, node_name: str) -> np.ndarray:
        node = self.by_name[node_name]
        b = node.input[1]
        if b in self.inits:
            return self.array(b)
        transpose = self.producers[b]  # a tied head: MatMul(x, Transpose(embedding))
        if transpose.op_type != "Transpose" or transpose.input[0] not in self.inits:
            raise ValueError(f"{node_name}: B is neither an initializer nor Transpose(initializer)")
        return self.array(transpose.input[0]).T

    def constant_input(self, node_name: str) -> np.ndarray | None:
        """The initializer a node reads (found by node, not tensor, name: the exporter shares identical
        tensors, e.g. all-ones norm weights, under one name)."""
        node = self.by_name.get(node_name)
        if node is None:
            return None
        names = [self._through_identity(i) for i in node.input]
        names = [i for i in names if i in self.inits]
        return self.array(names[0]) if len(names) == 1 else None

    def _through_identity(self, name: str) -> str:
        while name not in self.inits and name in self.producers and self.producers[name].op_type == "Identity":
            name = self.producers[name].input[0]
        return name

    def norm(self, prefix: str) -> np.ndarray:
        weight = self.constant_input(f"{prefix}/Mul_1")
        if weight is None:
            raise ValueError(f"no RMSNorm weight at {prefix}/Mul_1")
        return weight

    def bias(self, proj: str, layer: int) -> np.ndarray | None:
        return self.constant_input(f"/model/layers.{layer}/self_attn/{proj}/Add")


def rotary_cache(config: dict, head_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin [max_positions, head_dim / 2] computed like transformers' default rotary embedding (fp32)."""
    if config.get("rope_scaling"):
        raise ValueError("rope_scaling is not supported by the fused graph")
    theta = float(config.get("rope_theta", 10000.0))
    inv_freq = (1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / head_dim))).astype(np.float32)
    positions = np.arange(config.get("max_position_embeddings", 2048), dtype=np.float32)
    freqs = np.outer(positions, inv_freq).astype(np.float32)
    return np.cos(freqs).astype(np.float32), np.sin(freqs).astype(np.float32)


def build_fused_decoder(model: onnx.ModelProto, config: dict, recipe: Recipe | None) -> tuple[onnx.ModelProto, dict]:
    """The decoder as a fused graph (see above); recipe None keeps every weight in fp32."""
    weights = DecoderWeights(model)
    layers = config["num_hidden_layers"]
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", heads)
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    eps = float(config.get("rms_norm_eps", 1e-6))
    if config.get("hidden_act", "silu") != "silu":
        raise ValueError(f"hidden_act {config.get('hidden_act')!r} is not supported by the fused graph")
    if head_dim % 16:
        raise ValueError(f"head_dim {head_dim}: onnxruntime's GroupQueryAttention needs a multiple of 16")
    layer_recipes = recipe.layers if recipe else ()
    head_recipes = recipe.head if recipe else ()
    level = recipe.accuracy_level if recipe else 4
    block = recipe.block_size if recipe else BLOCK
    w = _GraphWriter()
    float_t, int_t = TensorProto.FLOAT, TensorProto.INT64
    inputs = [helper.make_tensor_value_info("input_ids", int_t, ["batch_size", "sequence_length"]),
              helper.make_tensor_value_info("attention_mask", int_t, ["batch_size", "total_sequence_length"]),
              helper.make_tensor_value_info("position_ids", int_t, ["batch_size", "sequence_length"])]
    outputs = [helper.make_tensor_value_info("logits", float_t, ["batch_size", "sequence_length", config["vocab_size"]])]
    attentions = []
    for i in range(layers):
        for kv in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kv}", float_t,
                                                        ["batch_size", kv_heads, "past_sequence_length", head_dim]))
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kv}", float_t,
                                                         ["batch_size", kv_heads, "total_sequence_length", head_dim]))
        attentions.append(helper.make_tensor_value_info(f"attentions.{i}", float_t,
                                                        ["batch_size", heads, "sequence_length", "total_sequence_length"]))
    outputs += attentions

    # sequence bookkeeping for GroupQueryAttention: seqlens_k = tokens in the cache after this step - 1
    mask_sum = w.node("ReduceSum", ["attention_mask", w.const("const/axis1", np.array([1], dtype=np.int64))],
                      ["mask_sum"], "/model/seqlens/ReduceSum", keepdims=0)[0]
    seqlens = w.node("Sub", [mask_sum, w.const("const/one", np.array(1, dtype=np.int64))], ["seqlens_k_int64"],
                     "/model/seqlens/Sub")[0]
    seqlens = w.node("Cast", [seqlens], ["seqlens_k"], "/model/seqlens/Cast", to=TensorProto.INT32)[0]
    shape = w.node("Shape", ["attention_mask"], ["mask_shape"], "/model/total/Shape")[0]
    total = w.node("Gather", [shape, w.const("const/index1", np.array(1, dtype=np.int64))], ["total_len_int64"],
                   "/model/total/Gather", axis=0)[0]
    total = w.node("Cast", [total], ["total_sequence_length"], "/model/total/Cast", to=TensorProto.INT32)[0]
    cos, sin = rotary_cache(config, head_dim)
    w.const("cos_cache", cos)
    w.const("sin_cache", sin)

    hidden = w.node("Gather", [w.const("model.embed_tokens.weight", weights.constant_input("/model/embed_tokens/Gather")),
                               "input_ids"], ["/model/embed_tokens/output"], "/model/embed_tokens/Gather", axis=0)[0]
    residual, pending = hidden, None  # pending: the last sublayer output not yet added to the residual stream
    for i in range(layers):
        p = f"/model/layers.{i}"
        x, residual = _rms_norm(w, pending, residual, weights.norm(f"{p}/input_layernorm"),
                                eps, f"{p}/input_layernorm")
        qkv_weight = np.concatenate([weights.matmul(f"{p}/self_attn/{n}_proj/MatMul") for n in ("q", "k", "v")], axis=1)
        biases = [weights.bias(f"{n}_proj", i) for n in ("q", "k", "v")]
        bias = np.concatenate(biases) if all(b is not None for b in biases) else None
        qkv = w.linear(x, qkv_weight, f"{p}/self_attn/qkv", f"{p}/self_attn/qkv_proj", layer_recipes, level, block, bias)
        attn = w.node("GroupQueryAttention",
                      [qkv, "", "", f"past_key_values.{i}.key", f"past_key_values.{i}.value", "seqlens_k",
                       "total_sequence_length", "cos_cache", "sin_cache", "position_ids"],
                      [f"{p}/self_attn/output", f"present.{i}.key", f"present.{i}.value", f"attentions.{i}"],
                      f"{p}/self_attn/GroupQueryAttention", MS_DOMAIN, num_heads=heads, kv_num_heads=kv_heads,
                      do_rotary=1, rotary_interleaved=0, scale=1.0 / math.sqrt(head_dim), qk_output=2)[0]
        pending = w.linear(attn, weights.matmul(f"{p}/self_attn/o_proj/MatMul"), f"{p}/self_attn/o_proj/output",
                           f"{p}/self_attn/o_proj", layer_recipes, level, block)
        x, residual = _rms_norm(w, pending, residual, weights.norm(f"{p}/post_attention_layernorm"),
                                eps, f"{p}/post_attention_layernorm")
        gate_up_weight = np.concatenate([weights.matmul(f"{p}/mlp/gate_proj/MatMul"),
                                         weights.matmul(f"{p}/mlp/up_proj/MatMul")], axis=1)
        inter = gate_up_weight.shape[1] // 2
        gate_up = w.linear(x, gate_up_weight, f"{p}/mlp/gate_up", f"{p}/mlp/gate_up_proj", layer_recipes, level, block)
        gate, up = w.node("Split", [gate_up, w.const(f"{p}/mlp/split_sizes", np.array([inter, inter], dtype=np.int64))],
                          [f"{p}/mlp/gate", f"{p}/mlp/up"], f"{p}/mlp/Split", axis=-1)
        sig = w.node("Sigmoid", [gate], [f"{p}/mlp/gate_sigmoid"], f"{p}/mlp/act_fn/Sigmoid")[0]
        act = w.node("Mul", [gate, sig], [f"{p}/mlp/act"], f"{p}/mlp/act_fn/Mul")[0]
        act = w.node("Mul", [act, up], [f"{p}/mlp/act_up"], f"{p}/mlp/Mul")[0]
        pending = w.linear(act, weights.matmul(f"{p}/mlp/down_proj/MatMul"), f"{p}/mlp/down_proj/output",
                           f"{p}/mlp/down_proj", layer_recipes, level, block)
    x, _ = _rms_norm(w, pending, residual, weights.norm("/model/norm"), eps, "/model/norm")
    w.linear(x, weights.matmul("/lm_head/MatMul"), "logits", "/lm_head", head_recipes, level, block)

    graph = helper.make_graph(w.nodes, "decoder", inputs, outputs, w.initializers)
    opsets = [helper.make_opsetid("", max(17, next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17))),
              helper.make_opsetid(MS_DOMAIN, 1)]
    fused = helper.make_model(graph, opset_imports=opsets, producer_name="export.quantize")
    fused.ir_version = model.ir_version
    return fused, w.summary


def _rms_norm(w: _GraphWriter, pending: str | None, residual: str, gamma: np.ndarray, eps: float, name: str):
    """RMSNorm of residual + pending (when there is a pending sublayer output); returns (normed, new residual)."""
    scale = w.const(f"{name}.weight", gamma.astype(np.float32))
    if pending is None:
        out = w.node("SimplifiedLayerNormalization", [residual, scale], [f"{name}/output"], f"{name}/SimplifiedLayerNorm",
                     axis=-1, epsilon=eps, stash_type=1)[0]
        return out, residual
    out, _, _, summed = w.node("SkipSimplifiedLayerNormalization", [pending, residual, scale],
                               [f"{name}/output", "", "", f"{name}/residual"], f"{name}/SkipSimplifiedLayerNorm",
                               MS_DOMAIN, epsilon=eps)
    return out, summed


# --- variants for the build manifest ----------------------------------------------------------------------

def is_decoder(model_dir: Path) -> bool:
    config = Path(model_dir) / "config.json"
    if not config.is_file():
        return False
    data = json.loads(config.read_text())
    return data.get("model_type") in ("llama", "qwen2") and (Path(model_dir) / "model.onnx").is_file()


def _bits_name(summary: dict) -> str:
    four = sum(v for k, v in summary["recipes"].items() if k.startswith("q4"))
    return "int4" if four * 2 > summary["matrices"] else "int8"


def _precision(summary: dict, fused: bool) -> str:
    parts = [f"{n}× {r}" for r, n in sorted(summary["recipes"].items())]
    exact = "weights exact vs fp32" if summary["max_abs_error"] == 0 else f"weights max |Δ| {summary['max_abs_error']:.1e}"
    text = f"{_bits_name(summary)} weight blocks of {BLOCK} ({', '.join(parts)}; {exact}), int8 activations"
    return text + (", fused graph" if fused else "")


def write_decoder_variant(model_dir: Path, recipe: Recipe, name: str | None = None, log=print) -> tuple[str, dict]:
    """Fused + quantized decoder -> model_<name>.onnx; returns (name, summary). name None: int4/int8 by content."""
    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    start = time.perf_counter()
    model = load_model(model_dir / "model.onnx")
    try:
        written, summary = build_fused_decoder(model, config, recipe)
        summary["fused"] = True
    except ValueError as exc:  # an architecture the fused graph does not cover: quantize the export as it is
        log(f"    fused graph not possible ({exc}); quantizing the exported graph")
        summary = dict(quantize_model(model, recipe), fused=False)
        written = model
    del model
    name = name or _bits_name(summary)
    summary["files"] = save_model(written, model_dir / f"model_{name}.onnx")
    summary["seconds"] = round(time.perf_counter() - start, 1)
    log(f"    {name}: {summary['recipes']} max |Δw| {summary['max_abs_error']:.2e} in {summary['seconds']} s")
    return name, summary


def write_classifier_variant(model_dir: Path, recipe: Recipe = INT8, name: str = "int8", log=print) -> tuple[str, dict]:
    model_dir = Path(model_dir)
    start = time.perf_counter()
    model = load_model(model_dir / "model.onnx")
    summary = quantize_model(model, recipe)
    summary["files"] = save_model(model, model_dir / f"model_{name}.onnx")
    summary["seconds"] = round(time.perf_counter() - start, 1)
    summary["fused"] = False
    log(f"    {name}: {summary['recipes']} max |Δw| {summary['max_abs_error']:.2e} in {summary['seconds']} s")
    return name, summary


GATE_KEYS = ("pass", "greedy_identical", "prompts", "first_divergence", "perplexity_fp32", "perplexity",
             "perplexity_change", "max_abs_diff", "same_label_fraction")


def add_cpu_variants(model_dir: Path, spec, variants: dict | None = None, lossy_int4: bool = False,
                     log=print) -> dict:
    """Write the CPU variants of one exported model beside its model.onnx, gate them, return the variants.

    `variants` is the manifest's current variants (default: fp32 only). The result adds one entry per
    written variant ({"file", "precision", "default_for", "devices": ["cpu"], "gate": {...}}); the first
    variant that passes the gate gets default_for ["cpu"] and "cpu" is removed from the others' default_for.
    Models with nothing to gain (encoders without a classification head) come back unchanged.
    """
    model_dir = Path(model_dir)
    merged = {k: dict(v) for k, v in (variants or {"fp32": {"file": "model.onnx", "precision": "fp32",
                                                             "default_for": ["cpu", "cuda"]}}).items()}
    written: list[tuple[str, dict]] = []
    if spec.task in ("text-generation", "translation") and is_decoder(model_dir):
        written.append(write_decoder_variant(model_dir, LOSSLESS_FIRST, log=log))
        if lossy_int4 and written[0][0] != "int4":
            written.append(write_decoder_variant(model_dir, ALL_INT4, "int4", log=log))
    elif spec.task == "text-classification":
        written.append(write_classifier_variant(model_dir, log=log))
    else:
        log(f"    {spec.id}: no CPU variant (task {spec.task})")
        return merged
    default = None
    for name, summary in written:
        file = summary["files"][0]
        gate = quality_gate(spec.id, name, model_dir, file=file)
        log(f"    gate {name}: {format_gate(gate)}")
        entry = {"file": file, "precision": _precision(summary, summary["fused"]), "default_for": [],
                 "devices": ["cpu"], "gate": {k: gate[k] for k in GATE_KEYS if k in gate}}
        if gate["pass"] and default is None:
            default = name
            entry["default_for"] = ["cpu"]
        merged[name] = entry
    if default:
        for name, entry in merged.items():
            if name != default and "cpu" in entry.get("default_for", []):
                entry["default_for"] = [d for d in entry["default_for"] if d != "cpu"]
    elif "fp32" in merged and not any("cpu" in e.get("default_for", []) for e in merged.values()):
        merged["fp32"]["default_for"] = ["cpu", *merged["fp32"].get("default_for", [])]  # nothing passed
    return merged


def format_gate(gate: dict) -> str:
    verdict = "PASS" if gate["pass"] else "FAIL"
    if "perplexity_change" in gate:
        return (f"{verdict}: greedy tokens identical on {gate['greedy_identical']}/{gate['prompts']} prompts "
                f"(first divergence {gate['first_divergence']}), perplexity {gate['perplexity']:.3f} vs fp32 "
                f"{gate['perplexity_fp32']:.3f} ({gate['perplexity_change']:+.2%})")
    return f"{verdict}: max |Δp| {gate['max_abs_diff']:.4f} (tolerance {gate['tolerance']}), same label {gate['same_label_fraction']:.0%}"


def update_manifest(model_dir: Path, variants: dict) -> None:
    """Merge variants into an existing build.json (the CLI path; export/build.py writes its own)."""
    path = Path(model_dir) / "build.json"
    manifest = json.loads(path.read_text())
    manifest["variants"] = variants
    manifest["files"] = {v["file"]: {"bytes": (Path(model_dir) / v["file"]).stat().st_size} for v in variants.values()}
    path.write_text(json.dumps(manifest, indent=2))


def main(argv: list[str] | None = None) -> int:
    from models.paths import model_dir
    from models.registry import REGISTRY

    parser = argparse.ArgumentParser(prog="python -m export.quantize", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(REGISTRY), help="restrict to these model ids")
    parser.add_argument("--lossy-int4", action="store_true", help="also write an all-4-bit variant of 8-bit models")
    parser.add_argument("--gate-only", nargs=2, metavar=("MODEL_ID", "VARIANT"), help="only run the quality gate")
    args = parser.parse_args(argv)
    if args.gate_only:
        gate = quality_gate(*args.gate_only)
        print(json.dumps(gate, indent=1))
        return 0 if gate["pass"] else 1
    for model_id in args.only or list(REGISTRY):
        directory = model_dir(model_id)
        if not (directory / "build.json").is_file():
            print(f"{model_id}: not exported ({directory}); run `python -m export` first", file=sys.stderr)
            continue
        print(f"{model_id}:", flush=True)
        current = json.loads((directory / "build.json").read_text()).get("variants")
        base = {k: v for k, v in current.items() if k == "fp32" or "cpu" not in v.get("devices", [])}
        variants = add_cpu_variants(directory, REGISTRY[model_id], base, lossy_int4=args.lossy_int4)
        update_manifest(directory, variants)
    return 0


if __name__ == "__main__":
    sys.exit(main())
