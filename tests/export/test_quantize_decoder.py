"""Decoder and classifier variants (export/quantize.py) on tiny models built here: the fused graph equals the
export, a written variant loads and decodes through the site's runtime, manifest entries are well-formed,
and the quality gate passes an unchanged copy and fails a deliberately broken one."""
from __future__ import annotations

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from export import quantize as q

MODEL_ID = "tiny-trained-llama"
CLASSIFIER_ID = "sentiment-minilm"  # the classifier's registry id: the gate looks its task up by id


def _write_manifest(out, model_id):
    (out / "build.json").write_text(json.dumps({"model_id": model_id, "key": {}, "check": {"ok": True}, "variants": {
        "fp32": {"file": "model.onnx", "precision": "fp32", "default_for": ["cpu", "cuda"]}}}))


TEXT = ("The cat sat on the mat because it was tired. Large models cost money to train and to serve. "
        "Startups win with data, speed and focus. 大模型创业需要算力、数据和人才。Hello world, hello model! ") * 12


@pytest.fixture(scope="module")
def trained_root(tiny_llama, tmp_path_factory):
    """A 2-layer Llama (head_dim 16, as GroupQueryAttention needs) trained for a moment on a small text, so
    that its perplexity means something, exported like the real decoders (tokenizer: the tiny_llama one)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from export.optimum_export import export_causal_lm

    tokenizer = tiny_llama[1]
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
                         tie_word_embeddings=True, attn_implementation="eager")
    model = LlamaForCausalLM(config)
    ids = torch.tensor(tokenizer(TEXT)["input_ids"])
    batch = ids[: (len(ids) // 48) * 48].view(-1, 48)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss = model(batch, labels=batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    root = tmp_path_factory.mktemp("quantize-lab")
    out = root / "onnx" / MODEL_ID
    export_causal_lm(model.eval(), tokenizer, out)
    _write_manifest(out, MODEL_ID)
    return root


@pytest.fixture
def lab(trained_root, tmp_path, monkeypatch):
    """A private copy of the model cache (variants get written into it), registered for the site's runtime."""
    from models import registry, runtime, tokenization

    root = tmp_path / "lab"
    shutil.copytree(trained_root, root)
    monkeypatch.setenv("LAB_MODEL_DIR", str(root))
    monkeypatch.setenv("MODEL_DEVICE", "cpu")
    spec = registry.ModelSpec(id=MODEL_ID, task="text-generation", title=MODEL_ID, architecture="tiny trained",
                              license="n/a", provenance="built in tests",
                              export=registry.ExportSettings(task="text-generation-with-past"))
    monkeypatch.setitem(registry.REGISTRY, MODEL_ID, spec)
    runtime._sessions.clear()
    tokenization._load.cache_clear()
    yield root / "onnx" / MODEL_ID
    runtime._sessions.clear()
    tokenization._load.cache_clear()


def _run(session, config, ids, past, past_len):
    layers = config["num_hidden_layers"]
    total = past_len + len(ids)
    feed = {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, total), np.int64),
            "position_ids": np.arange(past_len, total, dtype=np.int64)[None]}
    for i in range(layers):
        feed[f"past_key_values.{i}.key"], feed[f"past_key_values.{i}.value"] = past[2 * i], past[2 * i + 1]
    names = (["logits"] + [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
             + [f"attentions.{i}" for i in range(layers)])
    out = session.run(names, feed)
    return out[0], out[1:1 + 2 * layers], out[1 + 2 * layers:]


def test_fused_fp32_graph_matches_the_optimum_export(lab, tmp_path):
    """Same logits, KV cache and attention probabilities, for a prompt and for cached decode steps."""
    config = json.loads((lab / "config.json").read_text())
    fused, summary = q.build_fused_decoder(q.load_model(lab / "model.onnx"), config, None)
    assert summary["matrices"] == 0
    assert {"GroupQueryAttention", "SkipSimplifiedLayerNormalization"} <= {n.op_type for n in fused.graph.node}
    assert len(fused.graph.node) < len(q.load_model(lab / "model.onnx").graph.node) / 2
    q.save_model(fused, tmp_path / "fused.onnx")
    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
                for p in (lab / "model.onnx", tmp_path / "fused.onnx")]
    heads = config["num_attention_heads"]
    empty = [np.zeros((1, config["num_key_value_heads"], 0, config["hidden_size"] // heads), np.float32)] \
        * (2 * config["num_hidden_layers"])
    prompt = [5, 17, 42, 8, 99, 3, 61]
    results = [_run(s, config, prompt, empty, 0) for s in sessions]
    for step in range(4):
        (ref_logits, ref_present, ref_attn), (logits, present, attn) = results
        np.testing.assert_allclose(logits, ref_logits, atol=1e-4)
        for a, b in zip(present, ref_present):
            np.testing.assert_allclose(a, b, atol=1e-4)
        for a, b in zip(attn, ref_attn):
            np.testing.assert_allclose(a, b, atol=1e-5)
        token = int(ref_logits[0, -1].argmax())
        results = [_run(s, config, [token], r[1], len(prompt) + step) for s, r in zip(sessions, results)]


def test_add_cpu_variants_writes_a_gated_variant_the_runtime_serves(lab, monkeypatch):
    from models import decoder, registry, runtime
    from models.decoder import DecoderGraph
    from models.engine import Engine
    from models.sampling import SamplingSettings

    variants = q.add_cpu_variants(lab, registry.get_spec(MODEL_ID), log=lambda m: None)
    q.update_manifest(lab, variants)
    added = [name for name in variants if name != "fp32"]
    assert len(added) == 1
    name = added[0]
    entry = variants[name]
    assert set(entry) >= {"file", "precision", "default_for", "devices", "gate"}
    assert (lab / entry["file"]).is_file() and entry["devices"] == ["cpu"]
    assert "cuda" not in entry["default_for"] and variants["fp32"]["default_for"][-1] == "cuda"
    gate = entry["gate"]
    assert {"greedy_identical", "perplexity_change", "perplexity", "perplexity_fp32", "pass"} <= set(gate)
    assert gate["pass"] and abs(gate["perplexity_change"]) <= q.PPL_TOLERANCE  # 8-bit weights barely move it
    assert entry["default_for"] == ["cpu"] and variants["fp32"]["default_for"] == ["cuda"]
    assert runtime.preferred_variant(MODEL_ID, variants) == name

    graph = DecoderGraph.open(MODEL_ID)  # "default" -> the CPU variant
    assert graph.info.variant == "default" and graph.info.path.endswith(entry["file"])
    assert graph.fused  # the variant is the fused graph, so the engine batches it
    greedy = SamplingSettings(max_new_tokens=12, temperature=0, repetition_penalty=1.0, ignore_eos=True)
    prompt = graph.tokenizer("The cat sat on the mat because it was")["input_ids"]
    tokens = [s.token_id for s in Engine(graph).stream(prompt, greedy)]
    assert len(tokens) == 12 and tokens == graph.greedy(prompt, 12, ignore_eos=True)
    monkeypatch.setattr(decoder, "PREFILL_LOGITS_BUDGET", 4 * graph.config.vocab_size * 3)  # 16-token chunks
    long_prompt = (prompt * 8)[:100]  # within the 256-position context
    chunked, _ = graph.prefill(long_prompt)
    monkeypatch.setattr(decoder, "PREFILL_LOGITS_BUDGET", 64 * 2**20)
    whole, _ = graph.prefill(long_prompt)
    np.testing.assert_allclose(chunked, whole, atol=1e-3)


def test_gate_passes_an_identical_copy_and_fails_a_broken_variant(lab):
    shutil.copy(lab / "model.onnx", lab / "model_copy.onnx")
    same = q.quality_gate(MODEL_ID, "copy", lab)
    assert same["pass"] and same["greedy_identical"] == same["prompts"] == len(q.GATE_PROMPTS)
    assert same["perplexity_change"] == 0

    model = q.load_model(lab / "model.onnx")
    embedding = next(t for t in model.graph.initializer if t.name == "model.embed_tokens.weight")
    embedding.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(embedding)), embedding.name))
    q.save_model(model, lab / "model_broken.onnx")  # one weight zeroed (tied: the head's too)
    broken = q.quality_gate(MODEL_ID, "broken", lab)
    assert not broken["pass"]
    assert abs(broken["perplexity_change"]) > q.PPL_TOLERANCE and broken["greedy_identical"] < broken["prompts"]


# --- classifier ------------------------------------------------------------------------------------------

@pytest.fixture
def classifier_dir(tmp_path, monkeypatch):
    """The sentiment graph (export.sentiment.export_onnx) over a tiny random BERT and head."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from export import sentiment as exp

    words = "good bad great awful the a flight was is not very service thank you delay love hate it ok".split()
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    (encoder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, ".", "!"]))
    BertTokenizerFast(vocab_file=str(encoder / "vocab.txt")).save_pretrained(str(encoder))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(words) + 7, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=160)).save_pretrained(str(encoder))
    head = exp.SentimentHead(64, 16)
    exp.save_head(head, tmp_path / "head.safetensors", [1, 2])
    out = tmp_path / "onnx" / CLASSIFIER_ID
    exp.export_onnx(out, encoder_dir=encoder, head_path=tmp_path / "head.safetensors")
    _write_manifest(out, CLASSIFIER_ID)
    return out


def test_classifier_variant_is_reported_and_the_gate_fails_a_broken_one(classifier_dir):
    from models.registry import get_spec

    variants = q.add_cpu_variants(classifier_dir, get_spec(CLASSIFIER_ID), log=lambda m: None)
    entry = variants["int8"]
    assert (classifier_dir / entry["file"]).is_file() and entry["devices"] == ["cpu"]
    assert 0 <= entry["gate"]["max_abs_diff"] < 1 and 0 <= entry["gate"]["same_label_fraction"] <= 1

    shutil.copy(classifier_dir / "model.onnx", classifier_dir / "model_copy.onnx")
    same = q.quality_gate(CLASSIFIER_ID, "copy", classifier_dir)
    assert same["pass"] and same["max_abs_diff"] == 0 and same["same_label_fraction"] == 1

    model = q.load_model(classifier_dir / "model.onnx")
    inits = {t.name: t for t in model.graph.initializer}
    last = [n for n in model.graph.node if n.op_type in ("Gemm", "MatMul") and n.input[1] in inits][-1]  # head output
    weight = inits[last.input[1]]
    weight.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(weight)), weight.name))
    q.save_model(model, classifier_dir / "model_broken.onnx")  # constant logits: probabilities from the bias only
    broken = q.quality_gate(CLASSIFIER_ID, "broken", classifier_dir)
    assert not broken["pass"] and broken["max_abs_diff"] > q.CLASSIFIER_TOLERANCE


def _with_cpu_variant(spec, pinned):
    """The spec with its export's cpu_variant pin replaced (None: no pin)."""
    from dataclasses import replace

    extra = tuple(kv for kv in spec.export.extra if kv[0] != "cpu_variant")
    extra += (("cpu_variant", pinned),) if pinned else ()
    return replace(spec, export=replace(spec.export, extra=extra))


@pytest.mark.parametrize("pinned, passes, int8_serves_on, fp32_serves_on", [
    (None, True, ["cpu"], ["cuda"]),  # a passing variant takes over the CPU
    (None, False, [], ["cpu", "cuda"]),  # a failing one is written and reported, but fp32 keeps serving
    ("fp32", True, [], ["cpu", "cuda"]),  # the registry pins fp32: int8 passes, is written, does not serve
    ("int8", False, [], ["cpu", "cuda"]),  # a pin never serves a variant that failed its gate
    ("int8", True, ["cpu"], ["cuda"]),
])
def test_only_a_variant_that_passes_its_gate_becomes_the_cpu_default(classifier_dir, monkeypatch, pinned, passes,
                                                                      int8_serves_on, fp32_serves_on):
    from export.quantize import variants as written
    from models.registry import get_spec

    monkeypatch.setattr(written, "quality_gate", lambda *a, **k: {"pass": passes, "max_abs_diff": 0.0, "tolerance": 0.01,
                                                                   "same_label_fraction": 1.0,
                                                                   "model": CLASSIFIER_ID, "variant": "int8"})
    spec = _with_cpu_variant(get_spec(CLASSIFIER_ID), pinned)
    variants = q.add_cpu_variants(classifier_dir, spec, log=lambda m: None)
    assert variants["int8"]["default_for"] == int8_serves_on
    assert variants["fp32"]["default_for"] == fp32_serves_on
    assert (classifier_dir / variants["int8"]["file"]).is_file()  # built and gated whatever serves


def test_a_pinned_fp32_takes_the_cpu_back_from_a_variant_an_earlier_manifest_served(classifier_dir, monkeypatch):
    from export.quantize import variants as written
    from models.registry import get_spec

    monkeypatch.setattr(written, "quality_gate", lambda *a, **k: {"pass": True, "max_abs_diff": 0.0, "tolerance": 0.01,
                                                                   "same_label_fraction": 1.0,
                                                                   "model": CLASSIFIER_ID, "variant": "int8"})
    earlier = {"fp32": {"file": "model.onnx", "precision": "fp32", "default_for": ["cuda"]},
               "int8": {"file": "model_int8.onnx", "precision": "int8", "default_for": ["cpu"], "devices": ["cpu"]}}
    variants = q.add_cpu_variants(classifier_dir, _with_cpu_variant(get_spec(CLASSIFIER_ID), "fp32"), earlier,
                                  log=lambda m: None)
    assert variants["fp32"]["default_for"] == ["cpu", "cuda"] and variants["int8"]["default_for"] == []


def test_the_served_classifier_is_pinned_to_fp32_on_cpu():
    """Why: bench/results/classify-cpu-*.json (int8 blocks slower batched than fp32); see models/registry.py."""
    from export.quantize.variants import cpu_variant
    from models.registry import get_spec

    assert cpu_variant(get_spec(CLASSIFIER_ID)) == "fp32"
    assert all(cpu_variant(get_spec(m)) is None for m in ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"))
