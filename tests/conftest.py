"""Shared fixtures: tiny random models built here (fast unit tests, no packages needed) and the live site
(integration and API tests against the real packaged models, exported by `python -m export`)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "The cat sat on the mat because it was tired.", "Large models cost money to train and to serve.",
    "Startups win with data, speed and focus.", "大模型创业需要算力、数据和人才。", "Hello world, hello model!",
] * 20


def build_tiny_tokenizer():
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=400, min_frequency=1,
                            special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|im_end|>",
                                        bos_token="<|im_start|>", unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHATML
    return tokenizer


# The runtime serves only exports with a passing recorded parity check (export/parity.py). Test fixtures are
# exported here from the very models the tests compare them with, so they carry this verdict.
FIXTURE_CHECK = {"ok": True, "summary": "test fixture exported in this session"}


def write_manifest(out_dir: Path, model_id: str, check: dict | None = FIXTURE_CHECK) -> None:
    manifest = {
        "model_id": model_id, "key": {},
        "variants": {"fp32": {"file": "model.onnx", "precision": "fp32", "default_for": ["cpu", "cuda"]}},
    }
    if check is not None:
        manifest["check"] = check
    (out_dir / "build.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="session")
def tiny_model_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lab-models")


@pytest.fixture(scope="session")
def tiny_llama(tiny_model_root):
    """A 2-layer random Llama (GQA: 4 query / 2 KV heads) exported exactly like the real decoders."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from export.optimum_export import export_causal_lm

    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
                         tie_word_embeddings=True, attn_implementation="eager")
    model = LlamaForCausalLM(config).eval()
    out = tiny_model_root / "onnx" / "tiny-llama"
    export_causal_lm(model, tokenizer, out)
    write_manifest(out, "tiny-llama")
    return model, tokenizer


@pytest.fixture(scope="session")
def tiny_fused_llama(tiny_model_root):
    """A random Llama with head_dim 16 (GroupQueryAttention needs a multiple of 16), exported like the real
    decoders plus its fused fp32 graph (export.quantize.build_fused_decoder), served by default on CPU:
    the graph the engine batches."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from export import quantize
    from export.optimum_export import export_causal_lm

    torch.manual_seed(1)
    tokenizer = build_tiny_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
                         tie_word_embeddings=True, attn_implementation="eager")
    model = LlamaForCausalLM(config).eval()
    out = tiny_model_root / "onnx" / "tiny-fused"
    export_causal_lm(model, tokenizer, out)
    config_dict = json.loads((out / "config.json").read_text())
    fused, _ = quantize.build_fused_decoder(quantize.load_model(out / "model.onnx"), config_dict, None)
    quantize.save_model(fused, out / "model_fused.onnx")
    (out / "build.json").write_text(json.dumps({"model_id": "tiny-fused", "key": {}, "check": FIXTURE_CHECK, "variants": {
        "fp32": {"file": "model.onnx", "precision": "fp32", "default_for": ["cuda"]},
        "fused": {"file": "model_fused.onnx", "precision": "fp32, fused graph", "default_for": ["cpu"]}}}))
    return model, tokenizer


@pytest.fixture
def make_engine(tiny_registry):
    """Engines over the tiny decoders; eos=False forgets the EOS ids (a random model emits them anywhere)."""
    from dataclasses import replace

    from models.decoder import DecoderGraph
    from models.engine import Engine

    def make(model_id: str = "tiny-llama", variant: str = "default", eos: bool = True, **options) -> Engine:
        graph = DecoderGraph.open(model_id, variant)
        if not eos:
            graph.config = replace(graph.config, eos_ids=frozenset())
        return Engine(graph, **options)

    return make


@pytest.fixture(scope="session")
def tiny_bert(tiny_model_root):
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from export.optimum_export import export_bert_encoder

    torch.manual_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted({w.lower().strip(".,!") for s in CORPUS for w in s.split()})
    vocab_file = tiny_model_root / "vocab.txt"
    vocab_file.write_text("\n".join(vocab))
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file))
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128, attn_implementation="eager")
    model = BertModel(config).eval()
    out = tiny_model_root / "onnx" / "tiny-bert"
    export_bert_encoder(model, tokenizer, out)
    write_manifest(out, "tiny-bert")
    return model, tokenizer


@pytest.fixture
def tiny_registry(tiny_model_root, monkeypatch):
    """Point the model cache at the tiny exports and register their ids for the runtime."""
    from models import registry, runtime, tokenization

    monkeypatch.setenv("LAB_MODEL_DIR", str(tiny_model_root))
    monkeypatch.setenv("MODEL_DEVICE", "cpu")
    for model_id, task in (("tiny-llama", "text-generation"), ("tiny-fused", "text-generation"),
                           ("tiny-bert", "feature-extraction")):
        spec = registry.ModelSpec(id=model_id, task=task, title=model_id, architecture="tiny random", license="n/a",
                                  provenance="built in tests", export=registry.ExportSettings(task=task))
        monkeypatch.setitem(registry.REGISTRY, model_id, spec)
    from models import engine

    runtime._sessions.clear()
    engine._engines.clear()
    tokenization._load.cache_clear()
    yield
    runtime._sessions.clear()
    engine._engines.clear()
    tokenization._load.cache_clear()


@pytest.fixture(scope="session")
def real_sentiment_export(tmp_path_factory):
    """The real sentiment graph (MiniLM + the committed head), exported once per test session."""
    from export.sentiment import export_onnx
    from models import sentiment

    out = tmp_path_factory.getbasetemp() / "sentiment-real" / "onnx" / sentiment.MODEL_ID
    if not (out / "build.json").is_file():
        export_onnx(out)
        write_manifest(out, sentiment.MODEL_ID)
    return out


@pytest.fixture(scope="module")
def real_sentiment(real_sentiment_export):
    """Serve the sentiment model from that export for one test module."""
    from models import runtime, sentiment, tokenization

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAB_MODEL_DIR", str(real_sentiment_export.parent.parent))
        mp.setenv("MODEL_DEVICE", "cpu")
        runtime._sessions.pop((sentiment.MODEL_ID, "default"), None)
        tokenization._load.cache_clear()
        yield
        runtime._sessions.pop((sentiment.MODEL_ID, "default"), None)
        tokenization._load.cache_clear()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def live_site():
    """The real site (real exported models) in a subprocess; yields its base URL."""
    port = _free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    artifacts = REPO / "artifacts"  # logs and screenshots CI keeps
    artifacts.mkdir(exist_ok=True)
    log = open(artifacts / "site.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--no-export", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    import urllib.request

    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the site exited with {proc.returncode}; see artifacts/site.log")
        try:
            with urllib.request.urlopen(url + "health", timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(1)
    else:
        proc.kill()
        raise RuntimeError("the site did not become healthy within 180 s; see artifacts/site.log")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(autouse=True)
def _gate_records_stay_out_of_the_repo(tmp_path_factory, monkeypatch):
    """Quality gates run by tests (tiny models) must not overwrite export/results/, the committed real runs."""
    from export.quantize import variants

    monkeypatch.setattr(variants, "GATE_RESULTS_DIR", tmp_path_factory.getbasetemp() / "gate-results")
