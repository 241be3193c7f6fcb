"""Can any int8 classifier pass the 0.01 probability gate? A measured search, not a served variant.

    python -m bench.classify_int8 [--rounds 3]

Dynamic int8 (onnxruntime.quantization.quantize_dynamic: weights per channel, activations per tensor, the
fused graph's MatMul and Attention nodes) is the only int8 form that is faster than fp32 at batch size 32 on
these CPUs (the MatMulNBits blocks the export builds are not; see bench/results/classify-cpu-*.json). This
script asks how much of the graph can be int8 while every probability stays within GATE (the export's
parity tolerance) of fp32, on the 50-sentence check set AND on the 400 test-split tweets of the throughput
benchmark:

  1. sensitivity: each quantizable node alone in int8, max |Δp| on both sets;
  2. greedy: nodes added least-sensitive first, kept while both sets stay within GATE;
  3. speed: fp32, the greedy set, all nodes in int8, and PyTorch fp32, interleaved, batched over the tweets;
  4. why (activation_error): for each MatMul alone in int8, the relative error of its output over the tweets
     (batched as served, padding rows included) as onnxruntime computes it, with int8 and with uint8 weights, next to numpy
     simulations of the same weights with finer activation scales: the same per-tensor int8 (what
     onnxruntime gives when no kernel saturates), one scale per token, and per tensor with the two largest
     input channels kept in float (LLM.int8()'s outlier split). onnxruntime's CPU int8 kernels take one
     activation scale per tensor;
  5. every node in int8 with per-tensor and with per-token activation scales, simulated in float ops
     (fake_quantized), scored like the others: would finer scales than the kernels offer pass the gate?

Writes bench/results/classify-int8-<device>-<date>.json.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as in `python -m bench`: PyTorch must not spin

GATE = 0.01  # export.quantize's classifier tolerance (max |Δp| vs fp32)


def quantizable_nodes(fp32: Path) -> list[str]:
    import onnx

    model = onnx.load(str(fp32), load_external_data=False)
    weights = {init.name for init in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type in ("MatMul", "Attention") and n.input[1] in weights]


def quantize(fp32: Path, out: Path, nodes: list[str] | None, unsigned_weights: bool = False) -> Path:
    """Dynamic int8 of `nodes` (None: every MatMul/Attention with constant weights); the one place it is built.
    unsigned_weights: uint8 weights (onnxruntime's U8U8 kernels) instead of int8 (U8S8, the fast default,
    whose AVX2 kernel without VNNI adds pairs of products in 16 bits and can saturate)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # DefaultTensorType: shape inference cannot type the outputs of the fused contrib ops; they are float
    quantize_dynamic(str(fp32), str(out), per_channel=True,
                     weight_type=QuantType.QUInt8 if unsigned_weights else QuantType.QInt8,
                     nodes_to_quantize=nodes, extra_options={"DefaultTensorType": 1})
    return out


class Scorer:
    """max |Δp| vs fp32 on the check set and on the tweets, for a graph file."""

    def __init__(self, fp32: Path, check: list[str], tweets: list[str]):
        from bench.classify import bucketed, onnx_session

        self.open = lambda path: bucketed(onnx_session(path))
        self.check, self.tweets = check, tweets
        ref = self.open(fp32)
        self.ref_check, self.ref_tweets = ref(check), ref(tweets)

    def __call__(self, path: Path) -> dict:
        predict = self.open(path)
        got_check, got_tweets = predict(self.check), predict(self.tweets)
        return {"check_max_dp": float(np.abs(got_check - self.ref_check).max()),
                "tweets_max_dp": float(np.abs(got_tweets - self.ref_tweets).max()),
                "tweets_label_agreement": float((got_tweets.argmax(1) == self.ref_tweets.argmax(1)).mean())}


def passes(score: dict) -> bool:
    return score["check_max_dp"] <= GATE and score["tweets_max_dp"] <= GATE


def search(fp32: Path, scorer: Scorer, work: Path, log=print) -> tuple[list[dict], list[str], dict | None]:
    """(per-node sensitivity, the greedy set, its score)."""
    nodes = quantizable_nodes(fp32)
    sensitivity = []
    for i, name in enumerate(nodes):
        score = scorer(quantize(fp32, work / f"one-{i}.onnx", [name]))
        sensitivity.append({"node": name, **score})
        log(f"  alone {name}: check {score['check_max_dp']:.4f} tweets {score['tweets_max_dp']:.4f}")
    chosen, chosen_score = [], None
    for entry in sorted(sensitivity, key=lambda e: max(e["check_max_dp"], e["tweets_max_dp"])):
        trial = chosen + [entry["node"]]
        score = scorer(quantize(fp32, work / f"greedy-{len(trial)}.onnx", trial))
        log(f"  greedy +{entry['node']}: check {score['check_max_dp']:.4f} tweets {score['tweets_max_dp']:.4f}")
        if passes(score):
            chosen, chosen_score = trial, score
    return sensitivity, chosen, chosen_score


class _Probe:
    """A session over a graph file whose named inner tensors are extra outputs (optimizations off, so they
    stay), built once and asked for any subset of them."""

    def __init__(self, path: Path, names: list[str]):
        import onnx
        import onnxruntime as ort

        model = onnx.load(str(path))
        model.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        self.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def __call__(self, names: list[str], feeds: list[dict]) -> list[list[np.ndarray]]:
        return [self.session.run(names, feed) for feed in feeds]


def simulated_int8(x: np.ndarray, w: np.ndarray, per: str, float_channels: int = 0) -> np.ndarray:
    """x @ w with w int8 per output channel (symmetric) and x uint8 (asymmetric, range including 0) with one
    scale per tensor or per token (row); the float_channels largest input channels of x stay float."""
    kept = np.argsort(-np.abs(x).reshape(-1, x.shape[-1]).max(0))[:float_channels]
    rest = x.copy()
    rest[..., kept] = 0
    axis = None if per == "tensor" else -1
    low, high = np.minimum(rest.min(axis=axis, keepdims=True), 0), np.maximum(rest.max(axis=axis, keepdims=True), 0)
    scale = np.maximum(high - low, 1e-12) / 255
    zero = np.round(-low / scale)
    xq = np.clip(np.round(rest / scale) + zero, 0, 255) - zero
    wscale = np.maximum(np.abs(w).max(0), 1e-12) / 127
    return (xq @ np.round(w / wscale)) * scale * wscale + x[..., kept] @ w[kept]


def fake_quantized(fp32: Path, out: Path, per: str) -> Path:
    """Every quantizable node's weights rounded to int8 per output channel and its input rounded to uint8 with
    one scale per tensor or per token, computed in float ops (quantize, then dequantize): what an int8 graph
    with such scales would output, whatever kernels exist. Per tensor it reproduces quantize_dynamic's error,
    which checks the simulation; per token is what onnxruntime's CPU int8 kernels cannot run."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(fp32))
    weights = {t.name: t for t in model.graph.initializer}
    model.graph.initializer.extend(numpy_helper.from_array(np.array(v, np.float32), f"fq_{name}")
                                   for name, v in (("zero", 0), ("top", 255), ("eps", 1e-12)))
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    reduce = {"keepdims": 1} if per == "tensor" else {"keepdims": 1, "axes": [-1]}
    assert per == "tensor" or opset < 18, "axes became an input of ReduceMax in opset 18"
    inserted = []
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Attention") or node.input[1] not in weights:
            continue
        w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
        scale = np.maximum(np.abs(w).max(0), 1e-12) / 127
        weights[node.input[1]].CopyFrom(numpy_helper.from_array(np.round(w / scale) * scale, node.input[1]))
        x, t = node.input[0], f"fq{len(inserted)}_"
        steps = [("ReduceMax", [x], "hi0", reduce), ("ReduceMin", [x], "lo0", reduce),
                 ("Max", ["hi0", "fq_zero"], "hi", {}), ("Min", ["lo0", "fq_zero"], "lo", {}),
                 ("Sub", ["hi", "lo"], "range", {}), ("Div", ["range", "fq_top"], "s0", {}),
                 ("Max", ["s0", "fq_eps"], "s", {}), ("Div", ["lo", "s"], "los", {}), ("Neg", ["los"], "zp0", {}),
                 ("Round", ["zp0"], "zp", {}), ("Div", [x, "s"], "xs", {}), ("Round", ["xs"], "xr", {}),
                 ("Add", ["xr", "zp"], "xz", {}), ("Clip", ["xz", "fq_zero", "fq_top"], "q", {}),
                 ("Sub", ["q", "zp"], "qz", {}), ("Mul", ["qz", "s"], "x", {})]
        local = lambda name: name if name == x or name.startswith("fq_") else t + name  # noqa: E731
        inserted.append((node, [helper.make_node(op, [local(i) for i in ins], [t + o], **attrs)
                                for op, ins, o, attrs in steps]))
        node.input[0] = t + "x"
    for node, steps in inserted:
        at = list(model.graph.node).index(node)
        for offset, step in enumerate(steps):
            model.graph.node.insert(at + offset, step)
    onnx.save(model, str(out))
    return out


def activation_error(fp32: Path, tweets: list[str], work: Path, log=print) -> list[dict]:
    """Relative output error of each weight MatMul alone in int8: onnxruntime's, and simulated finer scales."""
    import onnx
    from onnx import numpy_helper

    from models import sentiment
    from models.tokenization import get_tokenizer

    batches, _ = sentiment.bucketed_batches(get_tokenizer(sentiment.MODEL_ID), tweets)
    feeds = [arrays for _, arrays in batches]
    model = onnx.load(str(fp32))
    weights = {t.name: t for t in model.graph.initializer}
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    # one fp32 session for every node's input and output; they are fetched a node at a time (all of them at
    # once would hold every intermediate tensor of every batch in memory)
    fp32_probe = _Probe(fp32, sorted({name for n in matmuls for name in (n.input[0], n.output[0])}))
    rows = []
    for node in matmuls:
        w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
        reference = fp32_probe([node.input[0], node.output[0]], feeds)
        signed, unsigned = (_Probe(quantize(fp32, work / "alone.onnx", [node.name], unsigned_weights=unsigned),
                                   [node.output[0]])([node.output[0]], feeds) for unsigned in (False, True))
        y = np.concatenate([r[1].reshape(-1) for r in reference])

        def relative(outputs: list[np.ndarray]) -> float:
            return float(np.linalg.norm(np.concatenate([o.reshape(-1) for o in outputs]) - y) / np.linalg.norm(y))

        row = {"node": node.name, "input_max_abs": float(max(np.abs(r[0]).max() for r in reference)),
               "onnxruntime_per_tensor": relative([o[0] for o in signed]),
               "onnxruntime_per_tensor_u8_weights": relative([o[0] for o in unsigned]),
               "simulated_per_tensor": relative([simulated_int8(r[0], w, "tensor") for r in reference]),
               "simulated_per_token": relative([simulated_int8(r[0], w, "token") for r in reference]),
               "simulated_per_tensor_2_float_channels": relative([simulated_int8(r[0], w, "tensor", 2)
                                                                  for r in reference])}
        rows.append(row)
        log(f"  error {node.name}: onnxruntime {row['onnxruntime_per_tensor']:.4f} (u8 weights "
            f"{row['onnxruntime_per_tensor_u8_weights']:.4f}, simulated {row['simulated_per_tensor']:.4f}), per token "
            f"{row['simulated_per_token']:.4f}, 2 float channels {row['simulated_per_tensor_2_float_channels']:.4f}")
    return rows


MATMUL_KINDS = {"attention/output/dense": "attention output | attention context",
                "intermediate/dense": "FFN in | LayerNorm output", "output/dense": "FFN out | GELU output"}
ERROR_COLUMNS = (("onnxruntime_per_tensor", "onnxruntime, int8 weights"),
                 ("onnxruntime_per_tensor_u8_weights", "onnxruntime, uint8 weights"),
                 ("simulated_per_tensor", "simulated, per tensor"),
                 ("simulated_per_token", "simulated, per token"),
                 ("simulated_per_tensor_2_float_channels", "simulated, 2 channels in float"))


def error_table(payload: dict) -> str:
    """Markdown: relative output error of one MatMul in int8, median (max) over the 6 layers, per kind of MatMul
    (docs/perf-notes.md shows exactly this, from the newest results file)."""
    import re

    kinds = {}
    for row in payload["settings"]["activation_error"]:
        kind = re.sub(r"^.*layer\.\d+/|/MatMul$", "", row["node"])  # e.g. intermediate/dense
        kinds.setdefault(MATMUL_KINDS.get(kind, kind), []).append(row)
    lines = ["| MatMul | its input | largest \\|input\\| | " + " | ".join(label for _, label in ERROR_COLUMNS) + " |",
             "|---|---|---:|" + "---:|" * len(ERROR_COLUMNS)]
    for kind, rows in kinds.items():
        cells = [f"{np.median([r[key] for r in rows]):.1%} ({max(r[key] for r in rows):.1%})" for key, _ in ERROR_COLUMNS]
        lines.append(f"| {kind} | {min(r['input_max_abs'] for r in rows):.0f}-{max(r['input_max_abs'] for r in rows):.0f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def throughput(predict, corpus: list[str]) -> dict:
    start = time.perf_counter()
    predict(corpus)
    return {"sentences_per_s": len(corpus) / (time.perf_counter() - start)}


def run(rounds: int = 3, log=print):
    from bench.classify import bucketed, onnx_session, texts, throughput_texts, torch_session
    from bench.common import Report, environment, interleave, median, ort_device
    from models import sentiment
    from models.paths import model_dir

    dev = ort_device()
    fp32 = model_dir(sentiment.MODEL_ID) / "model.onnx"
    check, tweets = texts(), throughput_texts()
    scorer = Scorer(fp32, check, tweets)
    report = Report("classify-int8", environment(dev), {
        "model": sentiment.MODEL_ID, "gate_max_dp": GATE, "check_sentences": len(check), "tweets": len(tweets),
        "quantizer": "onnxruntime.quantization.quantize_dynamic, per_channel=True, QInt8 weights",
        "rounds": rounds})
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sensitivity, chosen, chosen_score = search(fp32, scorer, work, log)
        every = [e["node"] for e in sensitivity]
        graphs = {"fp32": fp32, "all int8": quantize(fp32, work / "all.onnx", every)}
        if chosen:
            graphs["greedy int8 set"] = quantize(fp32, work / "chosen.onnx", chosen)
        contenders = {name: (lambda p=bucketed(onnx_session(path)): throughput(p, tweets))
                      for name, path in graphs.items()}
        contenders["pytorch float32"] = lambda p=bucketed(torch_session(dev, "float32")): throughput(p, tweets)
        samples = interleave(contenders, rounds, log=log)
        scores = {"fp32": None, "all int8": scorer(graphs["all int8"]), "greedy int8 set": chosen_score}
        errors = activation_error(fp32, tweets, work, log)
        simulated = {per: scorer(fake_quantized(fp32, work / f"fake-{per}.onnx", per)) for per in ("tensor", "token")}
        log(f"  every node, simulated: {simulated}")
    torch_rate = median([s["sentences_per_s"] for s in samples["pytorch float32"]])
    for name, runs in samples.items():
        rate = median([s["sentences_per_s"] for s in runs])
        report.rows.append({"graph": name, "sentences_per_s": rate, "x_torch": rate / torch_rate,
                            "int8_nodes": {"fp32": 0, "all int8": len(every), "greedy int8 set": len(chosen)}.get(name),
                            **(scores.get(name) or {})})
    report.settings |= {"sensitivity": sensitivity, "greedy_set": chosen, "quantizable_nodes": len(every),
                        "activation_error": errors, "simulated_every_node": simulated}
    report.samples = samples
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.classify_int8", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", help="directory for the JSON results (default bench/results)")
    parser.add_argument("--table", action="store_true",
                        help="only print the error table of the newest results file (docs/perf-notes.md shows it)")
    args = parser.parse_args(argv)
    if args.table:
        from bench.readme_table import newest

        found = newest("classify-int8-cpu-*.json")
        if found is None or "activation_error" not in found[1]["settings"]:
            raise SystemExit("no results file with activation_error: run `python -m bench.classify_int8` first")
        print(error_table(found[1]))
        return 0
    report = run(args.rounds)
    for row in report.rows:
        dp = (f"check {row['check_max_dp']:.4f}, tweets {row['tweets_max_dp']:.4f}" if "check_max_dp" in row
              else "reference")
        print(f"{row['graph']:16} {row['sentences_per_s']:6.0f} sentences/s  {row['x_torch']:.2f}x PyTorch  {dp}")
    print(error_table({"settings": report.settings}))
    print(f"results: {report.write(Path(args.out) if args.out else None)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
