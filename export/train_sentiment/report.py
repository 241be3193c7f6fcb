"""What a training run leaves behind: the metrics file the model card and tests read, and the experiment
records (eval/results/sentiment_experiments.json) that say why the served model was chosen."""
from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter

import numpy as np

from export.sentiment import HEAD_PATH
from export.train_sentiment import SEED, log
from export.train_sentiment.data import TEST_SAMPLE_STEP
from export.train_sentiment.evaluate import binary_accuracy, checkset_items, checkset_report, metrics
from export.train_sentiment.head import calibrate_bias
from models.paths import REPO_ROOT
from models.sentiment import LABELS, MAX_TOKENS

METRICS_PATH = HEAD_PATH.with_name("sentiment_metrics.json")
EXPERIMENTS_PATH = REPO_ROOT / "eval" / "results" / "sentiment_experiments.json"
POSITIVE_PRECISION_FLOOR = 0.75  # the goal, applied on validation when the logit offsets are chosen


def write_metrics_report(split: dict, by_row: dict, names: list[str], y: dict[str, np.ndarray], test: dict, probs: np.ndarray,
                         val: dict, head: dict, encoder: str, command: str, t0: float, extra: dict) -> None:
    """models/weights/sentiment_metrics.json: what the model card and the accuracy tests read."""
    y_te = y["test"]
    sample = sorted(range(len(y_te)), key=lambda i: split["splits"]["test"][i])[::TEST_SAMPLE_STEP]
    sample_acc = round(float((probs[sample].argmax(1) == y_te[sample]).mean()), 4)
    log(f"test sample (every {TEST_SAMPLE_STEP}th test row, n={len(sample)}): accuracy {sample_acc:.4f}")
    report = {
        "model": "sentiment-minilm",
        "date": dt.date.today().isoformat(),
        "command": command,
        "seed": SEED,
        "encoder": encoder,
        "corpus": split["corpus"],
        "max_tokens": MAX_TOKENS,
        "head": head,
        "class_weighting": "cross-entropy weights n / (3 * count) from the training split",
        "dropped": split["dropped"],
        "split_sizes": {n: len(split["splits"][n]) for n in names},
        "class_balance": {n: dict(Counter(LABELS[v] for v in y[n])) for n in names},
        "corpus_class_balance": dict(Counter(r["label"] for r in by_row.values())),
        "validation": {k: val[k] for k in ("accuracy", "macro_f1")},
        "test": test,
        "test_sample": {"rows": f"every {TEST_SAMPLE_STEP}th of the sorted test row indices", "n": len(sample),
                        "accuracy": sample_acc},
        **extra,
        "train_seconds": round(time.perf_counter() - t0, 1),
    }
    METRICS_PATH.write_text(json.dumps(report, indent=1) + "\n")
    log(f"\nwrote {HEAD_PATH.relative_to(REPO_ROOT)} ({HEAD_PATH.stat().st_size / 1024:.0f} KB) and "
        f"{METRICS_PATH.relative_to(REPO_ROOT)}; {time.perf_counter() - t0:.0f} s in all")


def experiment_record(name: str, note: str, val_logits, y_va, test_logits, y_te, score, config: dict, bias=None,
                      extra: dict | None = None) -> dict:
    """One record; `score` maps raw texts to the model's probabilities, for the check set."""
    bias = np.zeros(len(LABELS)) if bias is None else np.asarray(bias)
    val, test = metrics(y_va, (val_logits + bias).argmax(1)), metrics(y_te, (test_logits + bias).argmax(1))
    test["binary_accuracy_pos_vs_neg"] = binary_accuracy(y_te, test_logits + bias)
    record = {"name": name, "note": note, "config": config, "logit_offset": [round(float(b), 3) for b in bias],
              "validation": {"accuracy": val["accuracy"], "macro_f1": val["macro_f1"],
                             "positive_precision": val["per_class"]["positive"]["precision"]},
              "test": test, "checkset": checkset_report(score), **(extra or {})}
    t = record["test"]
    log(f"  [{name}] test macro-F1 {t['macro_f1']:.4f} acc {t['accuracy']:.4f} pos P/R "
        f"{t['per_class']['positive']['precision']:.3f}/{t['per_class']['positive']['recall']:.3f}; checkset "
        f"{record['checkset']['accuracy_3way']:.2f} 3-way, {record['checkset']['accuracy_pos_vs_neg']:.2f} polarity")
    return record


def record_experiments(records: list[dict], extra: dict) -> None:
    """Merge into eval/results/sentiment_experiments.json by name (runs of single experiments accumulate)."""
    old = json.loads(EXPERIMENTS_PATH.read_text()) if EXPERIMENTS_PATH.is_file() else {}
    by_name = {r["name"]: r for r in old.get("experiments", [])}
    by_name.update({r["name"]: r for r in records})
    EXPERIMENTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    EXPERIMENTS_PATH.write_text(json.dumps({**old, **extra, "experiments": list(by_name.values())}, indent=1) + "\n")


def checkset_admits(score, floor: float):
    """Whether an offset keeps the check set's 3-way accuracy at `floor` or above, for calibrate_bias: the check
    set is scored once without offset (score: raw texts -> probabilities), and an offset only shifts its logits."""
    items = checkset_items()
    logits = np.log(np.clip(score([text for _, text in items]), 1e-30, None))
    truth = np.array([LABELS.index(label) for label, _ in items])
    return lambda bias: float(((logits + bias).argmax(1) == truth).mean()) >= floor - 1e-9


def calibrated_records(prefix: str, note: str, val_logits, y_va, test_logits, y_te, score_for, config: dict,
                       extra: dict | None = None, checkset_floor: float | None = None) -> list[tuple[dict, np.ndarray]]:
    """Records for one trained model: as trained, with logit offsets chosen on validation for macro-F1, and the
    same with validation positive precision >= POSITIVE_PRECISION_FLOOR; with a checkset_floor (the served
    model's 3-way accuracy on the check set), a fourth whose offsets also keep the check set at that floor, so
    a new model can meet the issue's "check set not worse" without the test split being looked at.
    score_for(offset): the model with that offset as a function of raw texts (encode.scorer), for the check set."""
    out = []
    choices = [("", None, None, None), (" + offsets (val macro-F1)", "max", None, None),
               (f" + offsets (val macro-F1, val positive precision >= {POSITIVE_PRECISION_FLOOR})", "max",
                POSITIVE_PRECISION_FLOOR, None)]
    if checkset_floor:
        n = len(checkset_items())
        choices.append((f" + offsets (val macro-F1, val positive precision >= {POSITIVE_PRECISION_FLOOR}, check set "
                        f">= {round(checkset_floor * n)}/{n})", "max", POSITIVE_PRECISION_FLOOR,
                        checkset_admits(score_for(np.zeros(len(LABELS))), checkset_floor)))
    for suffix, mode, floor, admissible in choices:
        if mode is None:
            bias = np.zeros(len(LABELS))
        else:
            try:
                bias, _ = calibrate_bias(val_logits, y_va, floor, admissible=admissible)
            except ValueError as exc:
                log(f"  {prefix}{suffix}: {exc}")
                continue
        record = experiment_record(prefix + suffix, note, val_logits, y_va, test_logits, y_te, score_for(bias), config,
                                   bias, extra)
        out.append((record, bias))
    return out
