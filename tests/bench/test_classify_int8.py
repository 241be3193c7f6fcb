"""The int8 search's logic (bench/classify_int8.py) on a fake graph: which nodes the greedy pass keeps."""
from __future__ import annotations

from pathlib import Path

from bench import classify_int8 as c8

# per-node error when quantized; errors of a set add up (roughly how the real graph behaves)
ERRORS = {"a": 0.002, "b": 0.004, "c": 0.005, "d": 0.03}


def fake_graph(monkeypatch):
    monkeypatch.setattr(c8, "quantizable_nodes", lambda fp32: list(ERRORS))
    monkeypatch.setattr(c8, "quantize", lambda fp32, out, nodes: (out, tuple(nodes)))

    def scorer(graph):
        err = sum(ERRORS[n] for n in graph[1])
        return {"check_max_dp": err, "tweets_max_dp": err * 1.5, "tweets_label_agreement": 1.0}

    return scorer


def test_greedy_keeps_the_least_sensitive_nodes_while_both_sets_stay_within_the_gate(monkeypatch, tmp_path):
    sensitivity, chosen, score = c8.search(Path("fp32.onnx"), fake_graph(monkeypatch), tmp_path, log=lambda _: None)
    assert [e["node"] for e in sensitivity] == list(ERRORS)
    # a + b: tweets 0.009 <= 0.01; + c: 0.0165 fails; d alone is over the gate
    assert chosen == ["a", "b"] and c8.passes(score)


def test_the_gate_needs_both_the_check_set_and_the_tweets():
    assert c8.passes({"check_max_dp": 0.01, "tweets_max_dp": 0.0099})
    assert not c8.passes({"check_max_dp": 0.005, "tweets_max_dp": 0.011})
    assert not c8.passes({"check_max_dp": 0.02, "tweets_max_dp": 0.0})



def _relative_error(x, w, per="tensor", float_channels=0):
    import numpy as np

    y = c8.simulated_int8(x, w, per, float_channels=float_channels)
    return np.linalg.norm(y - x @ w) / np.linalg.norm(x @ w)


def test_simulated_int8_is_exact_on_the_grid_and_finer_scales_cut_the_error():
    import numpy as np

    rng = np.random.default_rng(0)
    w = rng.normal(size=(16, 8)).astype(np.float32)
    x = rng.normal(size=(2, 5, 16)).astype(np.float32)
    assert _relative_error(x, w, float_channels=16) < 1e-6  # every input channel in float: the plain product
    assert 0 < _relative_error(x, w) < 0.05  # 8 bits on well-spread values: small, not zero
    loud = x.copy()
    loud[0, 0] *= 40  # one token far louder than the rest sets the per-tensor scale for all the others

    def quiet_error(per):  # on the other sequence
        return np.linalg.norm((c8.simulated_int8(loud, w, per) - loud @ w)[1]) / np.linalg.norm((loud @ w)[1])

    assert quiet_error("token") < quiet_error("tensor") / 3
    hot = x.copy()
    hot[..., 3] *= 40  # one outlier channel: keeping it in float restores the others' precision
    assert _relative_error(hot, w, float_channels=1) < _relative_error(hot, w) / 3


def test_the_fake_quantized_graph_computes_what_the_simulation_does(tmp_path):
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    w = rng.normal(size=(16, 8)).astype(np.float32)
    x = rng.normal(size=(2, 5, 16)).astype(np.float32)
    x[0, 1] *= 30  # a loud token, so per tensor and per token differ
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None, 8])],
                              [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "fp32.onnx"))
    outputs = {}
    for per in ("tensor", "token"):
        path = c8.fake_quantized(tmp_path / "fp32.onnx", tmp_path / f"{per}.onnx", per)
        outputs[per] = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        assert np.allclose(outputs[per], c8.simulated_int8(x, w, per), atol=1e-4)
    assert not np.allclose(outputs["tensor"], outputs["token"], atol=1e-3)
