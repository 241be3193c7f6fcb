"""The committed head + real MiniLM encoder, through the exported ONNX graph, reproduce the training report.

Integration: exports the real classifier once per test session (into the session's temp dir)."""
from __future__ import annotations

import csv
import json

import numpy as np

from models import sentiment
from models.paths import REPO_ROOT

CHECKSET = REPO_ROOT / "models" / "data" / "sentiment_checkset.tsv"
# Full test split accuracy measured by `python -m export.train_sentiment --finetune` is 0.816, 0.799 on this sample (see
# models/weights/sentiment_metrics.json); the sample below has n=690, whose standard error is
# sqrt(0.80 * 0.20 / 690) = 0.015. The floor is the sample value minus 3 standard errors: a model that
# is really no better than ~0.75 (the frozen-encoder baseline was 0.786 on the full split) fails, sampling luck
# alone never does.
TEST_SAMPLE_FLOOR = 0.75
# 50 everyday (non-tweet) sentences, 25 clearly positive + 25 clearly negative. Measured: 50/50 as the top-1 of
# three classes (the frozen-encoder baseline sent 3 to neutral: 'a blast at the zoo', 'the garden looks
# beautiful', 'coffee tasted burnt'), 50/50 when only p(positive) vs p(negative) is compared. Floors allow 2 misses.
CHECKSET_FLOOR_3WAY = 0.96
CHECKSET_FLOOR_POS_VS_NEG = 0.96


def test_metrics_file_records_what_the_model_card_needs():
    m = sentiment.load_metrics()
    assert m is not None
    assert set(m["split_sizes"]) == {"train", "validation", "test"}
    assert m["corpus_class_balance"] == {"negative": 16186, "neutral": 15018, "positive": 6954}
    assert m["test"]["accuracy"] > TEST_SAMPLE_FLOOR and 0 < m["test"]["macro_f1"] <= 1
    assert np.array(m["test"]["confusion_matrix"]["matrix"]).sum() == m["split_sizes"]["test"]
    assert m["seed"] and m["date"]


def test_test_split_sample_accuracy_through_onnx_reproduces_training(real_sentiment):
    from export.train_sentiment.data import SPLIT_PATH, TEST_SAMPLE_STEP, load_corpus

    metrics = sentiment.load_metrics()
    rows = load_corpus()
    test_rows = json.loads(SPLIT_PATH.read_text())["splits"]["test"][::TEST_SAMPLE_STEP]
    texts = [rows[i]["text"] for i in test_rows]
    labels = np.array([sentiment.LABELS.index(rows[i]["label"]) for i in test_rows])
    probs, _ = sentiment.predict_proba(texts)
    accuracy = float((probs.argmax(1) == labels).mean())
    assert len(test_rows) == metrics["test_sample"]["n"]
    # The same weights in PyTorch (training) and ONNX (serving): at most ~2 of 690 borderline flips.
    assert abs(accuracy - metrics["test_sample"]["accuracy"]) <= 0.003, accuracy
    assert accuracy >= TEST_SAMPLE_FLOOR


def test_everyday_checkset_is_classified_right(real_sentiment):
    with open(CHECKSET, newline="", encoding="utf-8") as fh:
        items = list(csv.DictReader(fh, delimiter="\t"))
    assert sum(i["label"] == "positive" for i in items) >= 20 and sum(i["label"] == "negative" for i in items) >= 20
    results = sentiment.classify([i["text"] for i in items])
    predicted = [max(r, key=r.get) for r in results]
    wrong = [(i["text"], p) for i, p in zip(items, predicted) if p != i["label"]]
    assert 1 - len(wrong) / len(items) >= CHECKSET_FLOOR_3WAY, wrong
    # neutral is never right here, so any neutral call is a miss above; polarity alone must be near perfect
    polarity = [("positive" if r["positive"] > r["negative"] else "negative") == i["label"]
                for r, i in zip(results, items)]
    assert np.mean(polarity) >= CHECKSET_FLOOR_POS_VS_NEG
