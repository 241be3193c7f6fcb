"""models.sentiment through onnxruntime, on a tiny random BERT exported here (no packaged model needed),
plus batch-input parsing, which needs no model at all."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

from models import batch_io, runtime, sentiment, tokenization

WORDS = ("good bad great awful the a flight was is not very service thank you delay love hate it "
         "ok fine today phone app late early crew bag lost").split()


def _use_model_dir(monkeypatch, root):
    """Point the shared runtime at `root` and forget sessions/tokenizers loaded from elsewhere."""
    monkeypatch.setenv("LAB_MODEL_DIR", str(root))
    monkeypatch.setenv("MODEL_DEVICE", "cpu")
    runtime._sessions.pop((sentiment.MODEL_ID, "default"), None)
    tokenization._load.cache_clear()


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from export.sentiment import SentimentHead, export_onnx, save_head

    root = tmp_path_factory.mktemp("tiny-runtime")
    enc = root / "encoder"
    enc.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, ",", ".", "!"]
    (enc / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(enc / "vocab.txt")).save_pretrained(str(enc))
    torch.manual_seed(1)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=160)).save_pretrained(str(enc))
    head = SentimentHead(64, 16)
    torch.nn.init.normal_(head.net[-1].weight, std=2.0)  # spread the probabilities so occlusion moves them
    save_head(head, root / "head.safetensors", [1, 2])
    out = root / "onnx" / sentiment.MODEL_ID
    export_onnx(out, encoder_dir=enc, head_path=root / "head.safetensors")
    (out / "build.json").write_text(json.dumps(
        {"check": {"ok": True}, "variants": {"fp32": {"file": "model.onnx", "precision": "fp32", "default_for": ["cpu", "cuda"]}}}))
    return root


@pytest.fixture
def tiny(tiny_root, monkeypatch):
    _use_model_dir(monkeypatch, tiny_root)
    yield tiny_root
    runtime._sessions.pop((sentiment.MODEL_ID, "default"), None)
    tokenization._load.cache_clear()


def test_classify_returns_one_distribution_per_text_in_input_order(tiny):
    texts = ["good", "the flight was very late and the crew lost my bag", "bad", "thank you"]
    out = sentiment.classify(texts)
    assert len(out) == 4 and all(tuple(d) == sentiment.LABELS for d in out)
    assert all(abs(sum(d.values()) - 1) < 1e-5 for d in out)
    # batching sorts by length internally; each result must still belong to its own text
    alone = [sentiment.classify([t])[0] for t in texts]
    for a, b in zip(out, alone):
        assert max(abs(a[k] - b[k]) for k in a) < 1e-4


def test_classify_batches_larger_than_one_onnx_call_and_reports_progress(tiny):
    texts = [" ".join(WORDS[i % 7: i % 7 + 1 + i % 5]) for i in range(sentiment.BATCH_SIZE * 2 + 5)]
    seen = []
    out = sentiment.classify(texts, progress=lambda done, total: seen.append((done, total)))
    assert len(out) == len(texts)
    assert seen[-1] == (len(texts), len(texts)) and len(seen) == 3


@pytest.mark.parametrize("bad, message", [
    ([], "empty"), ([""], "empty"), (["   \n"], "empty"), (["ok", " "], r"#2 of 2"), ("good", "list"),
    ([None], "not a string"),
])
def test_classify_rejects_bad_input_with_clear_messages(tiny, bad, message):
    with pytest.raises(ValueError, match=message):
        sentiment.classify(bad)


def test_long_text_is_truncated_with_a_note_not_refused(tiny):
    probs, note = sentiment.classify_one("good " * 400)
    assert abs(sum(probs.values()) - 1) < 1e-5
    assert "first 128 tokens" in note
    assert sentiment.classify_one("good")[1] == ""


def test_normalize_text_masks_links_and_handles():
    assert sentiment.normalize_text("@united thanks!!  see https://t.co/x &amp; more") == \
        "@user thanks!! see http & more"


def test_saliency_scores_every_word_and_matches_manual_occlusion(tiny):
    text = "the crew was very good today"
    scores = sentiment.saliency(text)
    assert [w for w, _ in scores] == ["the ", "crew ", "was ", "very ", "good ", "today"]
    full = sentiment.classify([text])[0]
    predicted = max(full, key=full.get)
    without_good = sentiment.classify(["the crew was very today"])[0]
    assert scores[4][1] == pytest.approx(full[predicted] - without_good[predicted], abs=1e-4)
    assert any(abs(s) > 1e-4 for _, s in scores)


def test_saliency_rejects_empty_text(tiny):
    with pytest.raises(ValueError, match="empty"):
        sentiment.saliency("  ")


def test_batch_of_1000_lines_end_to_end(tiny, tmp_path):
    lines = [f"{WORDS[i % len(WORDS)]} flight {i}" for i in range(1000)]
    texts = batch_io.parse_batch("\n".join(lines))
    rows = batch_io.batch_rows(texts)
    assert len(rows) == 1000 and [r[0] for r in rows] == lines
    assert all(r[1] in sentiment.LABELS for r in rows)
    path = tmp_path / "out.csv"
    path.write_text(batch_io.batch_csv(rows), encoding="utf-8")
    again = batch_io.parse_batch(path)
    assert again == lines


def test_missing_export_is_a_clear_runtime_error(tmp_path, monkeypatch):
    _use_model_dir(monkeypatch, tmp_path)
    with pytest.raises(runtime.RuntimeUnavailable, match="python -m export"):
        sentiment.classify(["good"])


def test_probabilities_array_order_matches_labels(tiny):
    probs, truncated = sentiment.predict_proba(["good", "bad"])
    assert probs.shape == (2, 3) and truncated == [False, False]
    assert np.allclose([list(d.values()) for d in sentiment.classify(["good", "bad"])], probs, atol=1e-6)


def test_bucketed_batches_equal_each_text_alone_and_keep_input_order(tiny):
    # one long text among short ones: it gets its own bucket; every row must equal the text run alone
    long = " ".join(WORDS * 4)
    texts = ["good", long, "bad flight", "thank you crew", long[:40], "ok"]
    batched, truncated = sentiment.predict_proba(texts)
    alone = np.concatenate([sentiment.predict_proba([t])[0] for t in texts])
    assert np.abs(batched - alone).max() <= 1e-5
    assert truncated == [False] * len(texts)
    session, tokenizer = sentiment._backend()
    ids, _ = sentiment._tokenize(tokenizer, texts)
    assert len(ids[1]) > 4 * len(ids[0])
