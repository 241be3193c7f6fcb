"""Scores of a classifier: per-class metrics, positive-vs-negative accuracy, the 50-sentence check set."""
from __future__ import annotations

from typing import Callable

import numpy as np

from models.paths import REPO_ROOT
from models.sentiment import LABELS


def metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    k = len(LABELS)
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (y_true, y_pred), 1)
    per_class = {}
    for c, label in enumerate(LABELS):
        tp, fp, fn = cm[c, c], cm[:, c].sum() - cm[c, c], cm[c, :].sum() - cm[c, c]
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        per_class[label] = {"precision": round(float(p), 4), "recall": round(float(r), 4),
                            "f1": round(float(2 * p * r / (p + r)) if p + r else 0.0, 4), "support": int(cm[c].sum())}
    # positive vs negative only, among tweets labelled pos/neg, comparing the two probabilities
    return {
        "accuracy": round(float((y_true == y_pred).mean()), 4),
        "macro_f1": round(float(np.mean([v["f1"] for v in per_class.values()])), 4),
        "per_class": per_class,
        "confusion_matrix": {"rows_true_cols_predicted": list(LABELS), "matrix": cm.tolist()},
    }


def binary_accuracy(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Accuracy on the positive/negative tweets when only p(negative) vs p(positive) is compared."""
    neg, pos = LABELS.index("negative"), LABELS.index("positive")
    sel = (y_true == neg) | (y_true == pos)
    pred = np.where(probs[sel, pos] > probs[sel, neg], pos, neg)
    return round(float((pred == y_true[sel]).mean()), 4)


def checkset_items() -> list[tuple[str, str]]:
    rows = (REPO_ROOT / "models" / "data" / "sentiment_checkset.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [tuple(row.split("\t", 1)) for row in rows if "\t" in row]


def checkset_report(score: Callable[[list[str]], np.ndarray]) -> dict:
    """The 50 everyday sentences: 3-way accuracy, positive-vs-negative accuracy, and the misses. `score` maps raw
    texts to probabilities (encode.scorer for one classifier, or an ensemble's combination)."""
    items = checkset_items()
    probs = score([text for _, text in items])
    pred = [LABELS[i] for i in probs.argmax(1)]
    neg, pos = LABELS.index("negative"), LABELS.index("positive")
    polarity = ["positive" if p[pos] > p[neg] else "negative" for p in probs]
    return {"n": len(items),
            "accuracy_3way": round(float(np.mean([p == lab for p, (lab, _) in zip(pred, items)])), 4),
            "accuracy_pos_vs_neg": round(float(np.mean([p == lab for p, (lab, _) in zip(polarity, items)])), 4),
            "misses": [{"text": t, "label": lab, "predicted": p} for p, (lab, t) in zip(pred, items) if p != lab]}
