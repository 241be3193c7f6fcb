"""`python -m bench`: medians, ratios against PyTorch, agreement with fp32, tables and result files, on fake
timings (no timing assertions: nothing here measures anything)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bench import classify, common, generate


def fake_decode(tok_s, ttft_ms, tokens, cpu=10.0):
    return {"tok_s": tok_s, "ttft_ms": ttft_ms, "cpu_ms_per_token": cpu, "tokens": tokens}


REF = [1, 2, 3, 4, 5, 6, 7, 8]
SAMPLES = {
    "onnxruntime fp32": [fake_decode(10, 300, REF), fake_decode(12, 280, REF), fake_decode(11, 900, REF)],
    "onnxruntime int4": [fake_decode(30, 200, REF[:5] + [0, 0, 0]), fake_decode(33, 210, REF[:5] + [0, 0, 0]),
                         fake_decode(31, 190, REF[:5] + [0, 0, 0])],
    "pytorch float32": [fake_decode(5, 400, REF), fake_decode(6, 420, REF), fake_decode(5.5, 410, REF)],
}
META = {
    "onnxruntime fp32": {"runtime": "onnxruntime", "variant": "fp32", "precision": "fp32", "provider": "CPU"},
    "onnxruntime int4": {"runtime": "onnxruntime", "variant": "int4", "precision": "int4 blocks", "provider": "CPU"},
    "pytorch float32": {"runtime": "pytorch", "variant": "float32", "precision": "float32", "provider": "cpu"},
}


def test_summary_takes_medians_and_ratios_against_pytorch_fp32():
    rows = {r["contender"]: r for r in generate.summarize(SAMPLES, META)}
    assert rows["onnxruntime fp32"]["tok_s"] == 11 and rows["onnxruntime fp32"]["ttft_ms"] == 300
    assert rows["onnxruntime int4"]["x_torch"] == pytest.approx(31 / 5.5)
    assert rows["onnxruntime int4"]["ttft_vs_torch"] == pytest.approx(200 / 410)
    assert rows["pytorch float32"]["x_torch"] == pytest.approx(1.0)
    assert rows["onnxruntime int4"]["same_tokens"] == "5/8" and rows["pytorch float32"]["same_tokens"] == "8/8"
    assert "x_torch_fp16" not in rows["onnxruntime int4"]  # only when PyTorch fp16 ran (CUDA)


def test_fp16_and_llamacpp_columns_appear_when_measured():
    samples = dict(SAMPLES, **{"pytorch float16": [fake_decode(20, 100, REF)], "llama.cpp": [fake_decode(25, 250, REF)]})
    meta = dict(META, **{"pytorch float16": {"runtime": "pytorch", "variant": "float16", "precision": "float16",
                                             "provider": "cuda"},
                         "llama.cpp": {"runtime": "llama.cpp", "variant": "gguf", "precision": "Q4_1", "provider": "cpu"}})
    rows = generate.summarize(samples, meta)
    int4 = next(r for r in rows if r["variant"] == "int4")
    assert int4["x_torch_fp16"] == pytest.approx(31 / 20)
    assert int4["x_llamacpp"] == pytest.approx(31 / 25) and int4["ttft_vs_llamacpp"] == pytest.approx(200 / 250)
    header = generate.table(rows).splitlines()[0]
    assert "× PyTorch fp16" in header and "× llama.cpp" in header and "TTFT ÷ llama.cpp" in header


def test_concurrent_streams_count_every_token_and_every_gap():
    from models.decoding import Step

    class FakeEngine:
        def stream(self, prompt_ids, settings):
            for i in range(settings.max_new_tokens):
                yield Step(i, "x")

    result = generate.concurrent_streams(FakeEngine(), [1, 2], tokens=5, streams=4)
    assert result["streams"] == 4 and result["agg_tok_s"] > 0 and result["same_tokens_all_streams"]
    assert result["itl_ms_p95"] >= result["itl_ms_p50"] >= 0
    table = generate.concurrency_table([dict(result, variant="int4", x_one_stream=1.0)])
    assert "inter-token p95 ms" in table.splitlines()[0] and "| 4 | int4 |" in table


def test_markdown_table_formats_numbers_and_missing_values():
    rows = generate.summarize(SAMPLES, META)
    lines = generate.table(rows).splitlines()
    assert lines[0].startswith("| runtime | variant | precision | tok/s (b1) | × PyTorch fp32 |")
    assert lines[1].startswith("|:---|:---|:---|---:|")
    assert len(lines) == 2 + len(rows)
    int4 = next(line for line in lines if "| int4 |" in line)
    assert "| 31.0 | 5.64× | 33.0 |" in int4 and "| 5/8 |" in int4
    assert common.markdown_table([common.Column("a", "A")], [{"a": None}]).splitlines()[2] == "| – |"


def test_classify_summary_reports_latency_ratios_and_probability_difference():
    probs = np.array([[0.2, 0.3, 0.5], [0.9, 0.05, 0.05]])
    samples = {
        "onnxruntime fp32": [{"p50_ms": 5.0, "p95_ms": 8.0, "sentences_per_s": 200.0, "probs": probs}],
        "onnxruntime int8": [{"p50_ms": 4.0, "p95_ms": 6.0, "sentences_per_s": 300.0, "probs": probs + [0.02, -0.02, 0]}],
        "pytorch float32": [{"p50_ms": 10.0, "p95_ms": 12.0, "sentences_per_s": 100.0, "probs": probs}],
    }
    meta = {k: {"runtime": k.split()[0], "variant": k.split()[1], "precision": k.split()[1], "provider": "cpu"}
            for k in samples}
    rows = {r["variant"]: r for r in classify.summarize(samples, meta)}
    assert rows["int8"]["max_prob_diff"] == pytest.approx(0.02)
    assert rows["int8"]["p50_vs_torch"] == pytest.approx(0.4) and rows["int8"]["x_torch_throughput"] == pytest.approx(3.0)
    assert "probs" not in rows["int8"]
    assert "| 0.0200 |" in classify.table(list(rows.values()))


def test_interleave_runs_contenders_in_turn():
    calls = []
    contenders = {"a": lambda: calls.append("a") or {"x": 1}, "b": lambda: calls.append("b") or {"x": 2}}
    results = common.interleave(contenders, rounds=2, warmup=1)
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert results == {"a": [{"x": 1}, {"x": 1}], "b": [{"x": 2}, {"x": 2}]}


def test_variants_for_picks_fp32_and_the_devices_variants(monkeypatch):
    variants = {"fp32": {"file": "model.onnx", "default_for": ["cuda"]},
                "int4": {"file": "model_int4.onnx", "default_for": ["cpu"], "devices": ["cpu"]},
                "fp16": {"file": "model_fp16.onnx", "default_for": ["cuda"]}}
    monkeypatch.setattr("models.runtime.manifest", lambda model_id: {"variants": variants})
    assert [n for n, _ in common.variants_for("m", "cpu")] == ["fp32", "int4"]
    assert [n for n, _ in common.variants_for("m", "cuda")] == ["fp32", "fp16"]
    assert [n for n, _ in common.variants_for("m", "cpu", ["int4"])] == ["int4"]
    with pytest.raises(SystemExit, match="no variant"):
        common.variants_for("m", "cpu", ["int2"])


def test_report_writes_named_json_with_environment(tmp_path):
    env = {"device": "cpu", "device_name": "Test CPU, 2 logical cores", "cpu": "Test CPU", "ort_threads": 2,
           "load_average": [1.0, 1.0, 1.0], "versions": {"onnxruntime": "1.0"}, "date": "2026-01-01T00:00:00"}
    report = common.Report("generate", env, {"tokens": 8}, rows=[{"tok_s": 1.5}])
    path = report.write(tmp_path)
    assert path.parent == tmp_path and path.name.startswith("generate-cpu-") and path.suffix == ".json"
    payload = json.loads(path.read_text())
    assert payload["environment"]["device_name"] == "Test CPU, 2 logical cores" and payload["rows"] == [{"tok_s": 1.5}]
    assert "Test CPU" in report.header() and "onnxruntime 1.0" in report.header()
