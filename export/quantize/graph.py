"""ONNX graph writing for the quantized variants: load/save (2 GB external data), untying the output head,
the recipes, the MatMulNBits writer (with the Q4_1 "min correction") and in-place quantization of a graph."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from export.quantize.blocks import BLOCK, quantize_weight

MS_DOMAIN = "com.microsoft"
TWO_GB = 2**31 - 2**20


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
