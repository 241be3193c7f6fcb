"""Block quantization (export/quantize.py): exact recipes for GGUF-style grids, the MatMulNBits layout as
onnxruntime reads it, and the untied output head (tiny random Llama). Graph, variants and gate:
test_quantize_decoder.py."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from export import quantize as q


def q4_1_weight(k=128, n=48, seed=0):
    """Values d*q + m per block of 32 along K, as llama.cpp's Q4_1 dequantizes them (m not a multiple of d)."""
    rng = np.random.default_rng(seed)
    blocks = k // 32
    d = rng.uniform(0.002, 0.02, size=(n, blocks, 1)).astype(np.float32)
    m = rng.uniform(-0.15, -0.01, size=(n, blocks, 1)).astype(np.float32)
    levels = rng.integers(0, 16, size=(n, blocks, 32))
    levels[..., 0], levels[..., 1] = 0, 15  # the block spans the whole grid, as Q4_1 blocks do
    return (d * levels + m).astype(np.float32).reshape(n, k).T.copy()


def symmetric_grid_weight(k=96, n=40, levels=(-16, 15), divisor_levels=16, seed=1):
    """Q5_0-like (values d*j, j in -16..15, block max at -16) or Q8_0-like (j in -127..127) blocks."""
    rng = np.random.default_rng(seed)
    blocks = k // 32
    d = rng.uniform(0.001, 0.01, size=(n, blocks, 1)).astype(np.float32)
    j = rng.integers(levels[0], levels[1] + 1, size=(n, blocks, 32))
    j[..., 0] = -divisor_levels
    return (d * j).astype(np.float32).reshape(n, k).T.copy()


def test_q4_with_min_correction_is_exact_for_q4_1_blocks_and_plain_q4_is_not():
    weight = q4_1_weight()
    corrected = q.quantize_weight(weight, ("q4c",))
    plain = q.quantize_weight(weight, ("q4",))
    assert corrected.max_abs_error < 1e-6
    np.testing.assert_allclose(q.dequantize(corrected, weight.shape[0]), weight, atol=1e-6)
    assert plain.max_abs_error > 1e-4  # an integer zero point cannot hold the block minimum
    np.testing.assert_allclose(q.dequantize(plain, weight.shape[0]), weight, atol=plain.max_abs_error * 1.001)


@pytest.mark.parametrize("levels,divisor", [((-16, 15), 16), ((-127, 127), 127)])
def test_q8_is_exact_for_q5_0_and_q8_0_blocks(levels, divisor):
    weight = symmetric_grid_weight(levels=levels, divisor_levels=divisor)
    qw = q.quantize_weight(weight, ("q8",))
    assert qw.bits == 8 and qw.max_abs_error < 1e-7
    np.testing.assert_allclose(q.dequantize(qw, weight.shape[0]), weight, atol=1e-7)


def test_least_error_recipe_wins_and_k_that_is_not_a_block_multiple_is_padded():
    weight = q4_1_weight()
    assert q.quantize_weight(weight, ("q8", "q4c")).recipe == "q4c"  # exact beats 8-bit rounding
    odd = np.random.default_rng(3).standard_normal((80, 24)).astype(np.float32)
    qw = q.quantize_weight(odd, ("q8",))
    assert qw.packed.shape == (24, 3, 32)
    np.testing.assert_allclose(q.dequantize(qw, 80), odd, atol=qw.max_abs_error * 1.001)


def _matmul_model(weight: np.ndarray) -> onnx.ModelProto:
    k, n = weight.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="/proj/MatMul")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "s", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "s", n])],
        [numpy_helper.from_array(weight, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("recipe", ["q4c", "q4", "q8"])
def test_matmulnbits_nodes_compute_x_times_the_dequantized_weight(recipe):
    """The packed layout, zero points and min correction as onnxruntime reads them (fp32 activations)."""
    weight = q4_1_weight(k=96, n=40)
    model = _matmul_model(weight)
    summary = q.quantize_model(model, q.Recipe(layers=(recipe,), head=(recipe,), accuracy_level=1))
    assert summary["matrices"] == 1 and "MatMulNBits" in {n.op_type for n in model.graph.node}
    x = np.random.default_rng(5).standard_normal((1, 7, 96)).astype(np.float32)
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    expected = x @ q.dequantize(q.quantize_weight(weight, (recipe,)), 96)
    np.testing.assert_allclose(got, expected, atol=2e-4)


def test_untie_lm_head_turns_transposed_embedding_into_a_weight(tiny_llama, tiny_model_root):
    model = q.load_model(tiny_model_root / "onnx" / "tiny-llama" / "model.onnx")
    before = {n.name for n, _ in q.weight_matmuls(model)}
    folded = q.untie_lm_head(model)
    after = {n.name: t for n, t in q.weight_matmuls(model)}
    assert folded and "/lm_head/MatMul" not in before and "/lm_head/MatMul" in after
    embedding = next(t for t in model.graph.initializer if t.name == "model.embed_tokens.weight")
    np.testing.assert_array_equal(numpy_helper.to_array(after["/lm_head/MatMul"]), numpy_helper.to_array(embedding).T)


def test_quantize_cli_exits_non_zero_when_a_built_variant_fails_its_gate(tmp_path, monkeypatch):
    import json

    from export.quantize import __main__ as cli

    directory = tmp_path / "onnx" / "smollm2-135m-instruct"
    directory.mkdir(parents=True)
    (directory / "build.json").write_text(json.dumps({"variants": {"fp32": {"file": "model.onnx"}}}))
    monkeypatch.setenv("LAB_MODEL_DIR", str(tmp_path))
    failing = {"fp32": {"file": "model.onnx"}, "int4": {"file": "model_int4.onnx", "gate": {"pass": False}}}
    monkeypatch.setattr(cli, "add_cpu_variants", lambda *a, **k: failing)
    monkeypatch.setattr(cli, "update_manifest", lambda *a, **k: None)
    assert cli.main(["--only", "smollm2-135m-instruct"]) == 1
    failing["int4"]["gate"]["pass"] = True
    assert cli.main(["--only", "smollm2-135m-instruct"]) == 0


def test_a_gate_result_is_recorded_in_a_committed_results_file(tmp_path, monkeypatch):
    import json

    from export.quantize import variants

    monkeypatch.setattr(variants, "GATE_RESULTS_DIR", tmp_path)
    path = variants.record_gate({"model": "m", "variant": "int4", "pass": True, "perplexity_change": 0.004})
    record = json.loads(path.read_text())
    assert path.name == "gate-m-int4.json" and record["pass"] is True and record["date"] and "versions" in record
