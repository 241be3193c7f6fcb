"""The fused decoder graph: the same inputs/outputs as optimum's export, ~25 nodes per layer instead of ~100."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from export.quantize.blocks import BLOCK
from export.quantize.graph import MS_DOMAIN, Recipe, _GraphWriter

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


@dataclass(frozen=True)
class _Plan:
    """What every layer of the fused graph needs: the model's shape and how its linears are quantized."""
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    eps: float
    layer_recipes: tuple
    head_recipes: tuple
    level: int
    block: int


def _plan(config: dict, recipe: Recipe | None) -> _Plan:
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    if config.get("hidden_act", "silu") != "silu":
        raise ValueError(f"hidden_act {config.get('hidden_act')!r} is not supported by the fused graph")
    if head_dim % 16:
        raise ValueError(f"head_dim {head_dim}: onnxruntime's GroupQueryAttention needs a multiple of 16")
    return _Plan(config["num_hidden_layers"], heads, config.get("num_key_value_heads", heads), head_dim,
                 float(config.get("rms_norm_eps", 1e-6)), recipe.layers if recipe else (),
                 recipe.head if recipe else (), recipe.accuracy_level if recipe else 4,
                 recipe.block_size if recipe else BLOCK)


def build_fused_decoder(model: onnx.ModelProto, config: dict, recipe: Recipe | None) -> tuple[onnx.ModelProto, dict]:
    """The decoder as a fused graph (see above); recipe None keeps every weight in fp32."""
    weights = DecoderWeights(model)
    plan = _plan(config, recipe)
    w = _GraphWriter()
    inputs, outputs = _signature(plan, config["vocab_size"])
    _sequence_lengths(w)
    cos, sin = rotary_cache(config, plan.head_dim)
    w.const("cos_cache", cos)
    w.const("sin_cache", sin)

    hidden = w.node("Gather", [w.const("model.embed_tokens.weight", weights.constant_input("/model/embed_tokens/Gather")),
                               "input_ids"], ["/model/embed_tokens/output"], "/model/embed_tokens/Gather", axis=0)[0]
    residual, pending = hidden, None  # pending: the last sublayer output not yet added to the residual stream
    for i in range(plan.layers):
        pending, residual = _decoder_layer(w, weights, plan, i, pending, residual)
    x, _ = _rms_norm(w, pending, residual, weights.norm("/model/norm"), plan.eps, "/model/norm")
    w.linear(x, weights.matmul("/lm_head/MatMul"), "logits", "/lm_head", plan.head_recipes, plan.level, plan.block)

    graph = helper.make_graph(w.nodes, "decoder", inputs, outputs, w.initializers)
    opsets = [helper.make_opsetid("", max(17, next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17))),
              helper.make_opsetid(MS_DOMAIN, 1)]
    fused = helper.make_model(graph, opset_imports=opsets, producer_name="export.quantize")
    fused.ir_version = model.ir_version
    return fused, w.summary


def _signature(plan: _Plan, vocab_size: int) -> tuple[list, list]:
    """The same inputs and outputs as the exported decoder (names, dtypes, symbolic shapes)."""
    float_t, int_t = TensorProto.FLOAT, TensorProto.INT64
    inputs = [helper.make_tensor_value_info("input_ids", int_t, ["batch_size", "sequence_length"]),
              helper.make_tensor_value_info("attention_mask", int_t, ["batch_size", "total_sequence_length"]),
              helper.make_tensor_value_info("position_ids", int_t, ["batch_size", "sequence_length"])]
    outputs = [helper.make_tensor_value_info("logits", float_t, ["batch_size", "sequence_length", vocab_size])]
    attentions = []
    for i in range(plan.layers):
        for kv in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kv}", float_t,
                                                        ["batch_size", plan.kv_heads, "past_sequence_length",
                                                         plan.head_dim]))
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kv}", float_t,
                                                         ["batch_size", plan.kv_heads, "total_sequence_length",
                                                          plan.head_dim]))
        attentions.append(helper.make_tensor_value_info(f"attentions.{i}", float_t,
                                                        ["batch_size", plan.heads, "sequence_length",
                                                         "total_sequence_length"]))
    return inputs, outputs + attentions


def _sequence_lengths(w: _GraphWriter) -> None:
    """GroupQueryAttention's bookkeeping: seqlens_k = tokens in the cache after this step - 1, and the total."""
    mask_sum = w.node("ReduceSum", ["attention_mask", w.const("const/axis1", np.array([1], dtype=np.int64))],
                      ["mask_sum"], "/model/seqlens/ReduceSum", keepdims=0)[0]
    seqlens = w.node("Sub", [mask_sum, w.const("const/one", np.array(1, dtype=np.int64))], ["seqlens_k_int64"],
                     "/model/seqlens/Sub")[0]
    w.node("Cast", [seqlens], ["seqlens_k"], "/model/seqlens/Cast", to=TensorProto.INT32)
    shape = w.node("Shape", ["attention_mask"], ["mask_shape"], "/model/total/Shape")[0]
    total = w.node("Gather", [shape, w.const("const/index1", np.array(1, dtype=np.int64))], ["total_len_int64"],
                   "/model/total/Gather", axis=0)[0]
    w.node("Cast", [total], ["total_sequence_length"], "/model/total/Cast", to=TensorProto.INT32)


def _decoder_layer(w: _GraphWriter, weights: DecoderWeights, plan: _Plan, i: int, pending: str | None,
                   residual: str) -> tuple[str, str]:
    """One transformer layer: norm, packed QKV, GroupQueryAttention (rotary + KV cache), o_proj, norm, packed
    gate/up, SiLU, down_proj. Returns (the MLP output still to be added, the residual stream)."""
    p = f"/model/layers.{i}"
    quant = (plan.layer_recipes, plan.level, plan.block)
    x, residual = _rms_norm(w, pending, residual, weights.norm(f"{p}/input_layernorm"), plan.eps, f"{p}/input_layernorm")
    qkv_weight = np.concatenate([weights.matmul(f"{p}/self_attn/{n}_proj/MatMul") for n in ("q", "k", "v")], axis=1)
    biases = [weights.bias(f"{n}_proj", i) for n in ("q", "k", "v")]
    bias = np.concatenate(biases) if all(b is not None for b in biases) else None
    qkv = w.linear(x, qkv_weight, f"{p}/self_attn/qkv", f"{p}/self_attn/qkv_proj", *quant, bias)
    attn = w.node("GroupQueryAttention",
                  [qkv, "", "", f"past_key_values.{i}.key", f"past_key_values.{i}.value", "seqlens_k",
                   "total_sequence_length", "cos_cache", "sin_cache", "position_ids"],
                  [f"{p}/self_attn/output", f"present.{i}.key", f"present.{i}.value", f"attentions.{i}"],
                  f"{p}/self_attn/GroupQueryAttention", MS_DOMAIN, num_heads=plan.heads, kv_num_heads=plan.kv_heads,
                  do_rotary=1, rotary_interleaved=0, scale=1.0 / math.sqrt(plan.head_dim), qk_output=2)[0]
    pending = w.linear(attn, weights.matmul(f"{p}/self_attn/o_proj/MatMul"), f"{p}/self_attn/o_proj/output",
                       f"{p}/self_attn/o_proj", *quant)
    x, residual = _rms_norm(w, pending, residual, weights.norm(f"{p}/post_attention_layernorm"), plan.eps,
                            f"{p}/post_attention_layernorm")
    gate_up_weight = np.concatenate([weights.matmul(f"{p}/mlp/gate_proj/MatMul"),
                                     weights.matmul(f"{p}/mlp/up_proj/MatMul")], axis=1)
    inter = gate_up_weight.shape[1] // 2
    gate_up = w.linear(x, gate_up_weight, f"{p}/mlp/gate_up", f"{p}/mlp/gate_up_proj", *quant)
    gate, up = w.node("Split", [gate_up, w.const(f"{p}/mlp/split_sizes", np.array([inter, inter], dtype=np.int64))],
                      [f"{p}/mlp/gate", f"{p}/mlp/up"], f"{p}/mlp/Split", axis=-1)
    sig = w.node("Sigmoid", [gate], [f"{p}/mlp/gate_sigmoid"], f"{p}/mlp/act_fn/Sigmoid")[0]
    act = w.node("Mul", [gate, sig], [f"{p}/mlp/act"], f"{p}/mlp/act_fn/Mul")[0]
    act = w.node("Mul", [act, up], [f"{p}/mlp/act_up"], f"{p}/mlp/Mul")[0]
    pending = w.linear(act, weights.matmul(f"{p}/mlp/down_proj/MatMul"), f"{p}/mlp/down_proj/output",
                       f"{p}/mlp/down_proj", *quant)
    return pending, residual


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
