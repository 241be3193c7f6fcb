"""Export of the sentiment classifier: one ONNX graph equal to the PyTorch module at every length.

Unit tests use a tiny random BERT (2 layers, hidden 32) built here, so they need no packaged model;
the last tests use the real MiniLM encoder and the committed head.
"""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertModel, BertTokenizerFast

from export import sentiment as exp
from export.train_sentiment.data import SPLIT_PATH, augment, dedup_key, load_corpus, make_split
from export.train_sentiment.evaluate import metrics
from export.train_sentiment.head import class_weights
from export.train_sentiment.report import METRICS_PATH
from models.sentiment import LABELS

WORDS = ("good bad great awful the a flight was is not very service thank you delay love hate it "
         "ok fine today phone app late early crew bag lost").split()


def make_tiny_encoder(path, seed=0):
    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, ",", ".", "!"]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(str(path))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=160)
    BertModel(config).eval().save_pretrained(str(path))
    return path


def make_random_head(path, pool_layers=(1, 2), hidden=16, in_dim=32, seed=0):
    torch.manual_seed(seed)
    head = exp.SentimentHead(in_dim * len(pool_layers), hidden)
    head.feature_mean.normal_()
    head.feature_scale.uniform_(0.5, 2.0)
    exp.save_head(head, path, list(pool_layers))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-sentiment")
    encoder = make_tiny_encoder(root / "encoder")
    head = make_random_head(root / "head.safetensors")
    out = root / "onnx"
    exp.export_onnx(out, encoder_dir=encoder, head_path=head)
    return {"encoder": encoder, "head": head, "out": out}


def test_head_round_trips_through_safetensors_with_its_shape(tmp_path):
    path = make_random_head(tmp_path / "h.safetensors", pool_layers=(0, 2), hidden=0)
    head, layers = exp.load_head(path)
    assert layers == [0, 2] and head.hidden == 0 and head.in_dim == 64
    x = torch.randn(3, 64)
    ref = exp.SentimentHead(64, 0)
    assert not torch.allclose(head(x), ref(x))  # a fresh head differs ...
    ref.load_state_dict(load_file(str(path)))
    assert torch.allclose(head(x), ref(x))  # ... until it gets the saved weights


def test_load_head_names_the_training_command_when_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_sentiment"):
        exp.load_head(tmp_path / "absent.safetensors")


def test_masked_mean_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert torch.allclose(exp.masked_mean(hidden, torch.tensor([[1, 1, 0]])), torch.tensor([[2.0, 3.0]]))


def test_graph_signature_is_one_graph_with_dynamic_batch_and_sequence(tiny):
    model = onnx.load(str(tiny["out"] / "model.onnx"))
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    outputs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    assert inputs == {"input_ids": ["batch", "sequence"], "attention_mask": ["batch", "sequence"]}
    assert outputs == {"probabilities": ["batch", 3]}
    assert (tiny["out"] / "tokenizer.json").is_file()
    assert json.loads((tiny["out"] / "sentiment_head.json").read_text())["labels"] == list(LABELS)


def _probs(tiny, texts):
    tok = BertTokenizerFast.from_pretrained(str(tiny["out"]))
    enc = tok(texts, padding=True, return_tensors="np")
    ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
    model = exp.build_torch_classifier(tiny["encoder"], tiny["head"])
    with torch.no_grad():
        ref = model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    sess = ort.InferenceSession(str(tiny["out"] / "model.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(["probabilities"], {"input_ids": ids, "attention_mask": mask})[0]
    return ref, got


@pytest.mark.parametrize("n_words", [1, 4, 30, 120])
def test_parity_at_several_lengths(tiny, n_words):
    text = " ".join(WORDS[i % len(WORDS)] for i in range(n_words))
    ref, got = _probs(tiny, [text])
    assert got.shape == (1, 3)
    assert np.abs(ref - got).max() <= 1e-4
    assert np.allclose(got.sum(1), 1.0, atol=1e-5)


def test_parity_on_a_padded_batch_and_padding_does_not_change_a_row(tiny):
    short, long = "good flight", " ".join(WORDS * 2)
    ref, got = _probs(tiny, [short, long, "bad"])
    assert np.abs(ref - got).max() <= 1e-4
    _, alone = _probs(tiny, [short])
    # the same text padded to ~60 tokens must give the same probabilities (mask code not baked in)
    assert np.abs(alone[0] - got[0]).max() <= 1e-4


def test_parity_report_with_tiny_model(tiny):
    report = exp.parity_report(tiny["out"], encoder_dir=tiny["encoder"], head_path=tiny["head"],
                               texts=("good", "the flight was very late and the crew lost my bag"))
    assert report["ok"] and report["max_abs_diff"] <= 1e-4
    assert len(report["token_lengths"]) >= 2 and report["cases"][-1]["batch"] == 2


# ---------------------------------------------------------------- training helpers (no model)


def _rows(texts_labels):
    return [{"row": i, "label": lab, "confidence": 1.0, "text": t} for i, (lab, t) in enumerate(texts_labels)]


def test_dedup_key_merges_retweets_links_and_handles():
    a = dedup_key("RT @JetBlue: Our fleet's on fleek. http://t.co/abc")
    b = dedup_key("Our fleet's on   FLEEK! https://t.co/xyz")
    assert a == b == "our fleet s on fleek"
    assert dedup_key("@united thanks") == dedup_key("@Delta thanks")


def test_make_split_is_deduplicated_stratified_and_reproducible():
    data = [("negative", f"bad thing number {i}") for i in range(60)] + \
           [("positive", f"good thing number {i}") for i in range(30)] + \
           [("neutral", f"plain thing number {i}") for i in range(40)]
    data += [("negative", "RT @x: bad thing number 3"), ("positive", "tie text"), ("negative", "tie text")]
    rows = _rows(data)
    a, b = make_split(rows, seed=1), make_split(rows, seed=1)
    assert a["splits"] == b["splits"]
    assert make_split(rows, seed=2)["splits"] != a["splits"]
    sets = [set(v) for v in a["splits"].values()]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    keys = {name: {dedup_key(rows[i]["text"]) for i in v} for name, v in a["splits"].items()}
    assert not (keys["train"] & keys["test"] or keys["train"] & keys["validation"] or keys["validation"] & keys["test"])
    assert a["dropped"] == {"duplicates": 1, "tied_conflicting_labels": 2}
    test_labels = [rows[i]["label"] for i in a["splits"]["test"]]
    assert test_labels.count("negative") == 6 and test_labels.count("positive") == 3


def test_augmented_variants_drop_and_swap_words_of_their_source_reproducibly():
    texts = ["I do not love this flight at all", "ok", "late bag", "the crew was very good today thank you"]
    pairs = augment(texts, 3, seed=1)
    assert pairs == augment(texts, 3, seed=1) and pairs != augment(texts, 3, seed=2)
    assert {source for source, _ in pairs} == {0, 2, 3}  # a one-word text has no variant
    for source, variant in pairs:
        words, kept = texts[source].split(), variant.split()
        assert variant != texts[source] and 1 <= len(kept) < len(words)
        assert sorted(kept) == sorted(w for w in kept if w in words)  # only the source's words
        assert len(kept) == len(set(kept)) or len(words) != len(set(words))
    for source in (0, 3):  # up to 3 variants each, none repeated
        mine = [v for s, v in pairs if s == source]
        assert 1 <= len(mine) <= 3 and len(mine) == len(set(mine))


def test_metrics_confusion_matrix_and_macro_f1():
    m = metrics(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]))
    assert m["confusion_matrix"]["matrix"] == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert m["accuracy"] == 0.6
    assert m["per_class"]["neutral"]["precision"] == 0.5 and m["per_class"]["positive"]["recall"] == 0.5


def test_class_weights_upweight_the_rare_class():
    w = class_weights(np.array([0] * 6 + [1] * 3 + [2] * 1))
    assert w[2] > w[1] > w[0]
    assert torch.isclose((w * torch.tensor([6.0, 3.0, 1.0])).sum(), torch.tensor(10.0))


# ---------------------------------------------------------------- real encoder + committed head


@pytest.fixture(scope="session")
def real_export(tmp_path_factory):
    """The real export, shared by the sentiment test files through the session's base temp dir."""
    from models.sentiment import MODEL_ID

    root = tmp_path_factory.getbasetemp() / "sentiment-real"
    out = root / "onnx" / MODEL_ID
    if not (out / "build.json").is_file():
        exp.export_onnx(out)
        (out / "build.json").write_text(json.dumps(
            {"check": {"ok": True}, "variants": {"fp32": {"file": "model.onnx", "precision": "fp32", "default_for": ["cpu", "cuda"]}}}))
    return out


def test_real_parity_report_within_1e_4(real_export):
    report = exp.parity_report(real_export)
    assert report["ok"], report
    assert report["max_abs_diff"] <= 1e-4
    assert len(report["token_lengths"]) >= 3 and max(report["token_lengths"]) == 128


def test_committed_split_has_no_overlap_and_matches_metrics():
    split = json.loads(SPLIT_PATH.read_text())
    report = json.loads(METRICS_PATH.read_text())
    sets = {k: set(v) for k, v in split["splits"].items()}
    assert not (sets["train"] & sets["test"] or sets["train"] & sets["validation"] or sets["validation"] & sets["test"])
    assert {k: len(v) for k, v in sets.items()} == report["split_sizes"]
    rows = load_corpus()
    keys = {k: {dedup_key(rows[i]["text"]) for i in v} for k, v in sets.items()}
    assert not (keys["train"] & keys["test"]) and not (keys["validation"] & keys["test"])
    # the committed split is what the seed produces
    assert make_split(rows, split["seed"])["splits"] == split["splits"]
