"""The classifier as the site serves it: every exported CPU variant of sentiment-minilm (fp32, and int8 where its
gate passed) through the site's own path (models.sentiment.predict_proba: normalization, token-length buckets,
ONNX Runtime), on the validation and test splits and the 50-sentence check set, next to the issue's goal
(test macro-F1 >= 0.80 with positive precision >= 0.75, check set not worse) and the training run's PyTorch
scores (models/weights/sentiment_metrics.json).

    python -m eval.sentiment_served [--json [PATH]]

Each variant runs in its own subprocess (LAB_VARIANT_SENTIMENT_MINILM picks it; sessions are cached per
process). Writes eval/results/sentiment_served.json (device, date, git commit).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from eval.common import git_commit, write_results

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "sentiment_served.json"
GOAL = {"test_macro_f1": 0.80, "test_positive_precision": 0.75}


def score_served() -> dict:
    """The variant this process serves, on validation, test and the check set."""
    import numpy as np

    from export.train_sentiment.data import SPLIT_PATH, load_corpus
    from export.train_sentiment.evaluate import checkset_items, metrics
    from models import sentiment

    rows = load_corpus()
    split = json.loads(SPLIT_PATH.read_text())
    out = {}
    for name in ("validation", "test"):
        idx = split["splits"][name]
        probs, _ = sentiment.predict_proba([rows[i]["text"] for i in idx])
        m = metrics(np.array([sentiment.LABELS.index(rows[i]["label"]) for i in idx]), probs.argmax(1))
        out[name] = {"n": len(idx), "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "per_class": m["per_class"]}
    items = checkset_items()
    probs, _ = sentiment.predict_proba([text for _, text in items])
    predicted = [sentiment.LABELS[i] for i in probs.argmax(1)]
    out["checkset"] = {"n": len(items), "right": sum(p == label for p, (label, _) in zip(predicted, items)),
                       "misses": [{"text": t, "label": label, "predicted": p}
                                  for p, (label, t) in zip(predicted, items) if p != label]}
    test = out["test"]
    out["meets_goal"] = (test["macro_f1"] >= GOAL["test_macro_f1"]
                         and test["per_class"]["positive"]["precision"] >= GOAL["test_positive_precision"])
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        print(json.dumps(score_served()))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", nargs="?", const=str(RESULTS_PATH), default=str(RESULTS_PATH))
    args = parser.parse_args(argv)

    from bench.common import environment
    from models.runtime import manifest, preferred_variant, variant_env
    from models.sentiment import METRICS_PATH, MODEL_ID

    variants = manifest(MODEL_ID)["variants"]
    trained = json.loads(METRICS_PATH.read_text())
    results = {"environment": {**environment("cpu"), "git_commit": git_commit()}, "goal": GOAL,
               "served_cpu_variant": preferred_variant(MODEL_ID, variants),
               "trained": {"command": trained["command"], "date": trained["date"],
                           "pytorch_test_macro_f1": trained["test"]["macro_f1"],
                           "pytorch_test_positive_precision": trained["test"]["per_class"]["positive"]["precision"],
                           "checkset_right": round(trained["checkset"]["accuracy_3way"] * trained["checkset"]["n"])},
               "variants": {}}
    for variant, meta in variants.items():
        if "cpu" not in (meta.get("devices") or ["cpu", "cuda"]):
            continue
        child = subprocess.run([sys.executable, "-m", "eval.sentiment_served", "--child"], capture_output=True, text=True,
                               check=True, env={**os.environ, variant_env(MODEL_ID): variant})
        report = json.loads(child.stdout.strip().splitlines()[-1])
        report["precision"] = meta.get("precision", variant)
        results["variants"][variant] = report
        test = report["test"]
        print(f"{variant}: test macro-F1 {test['macro_f1']:.4f}, positive precision "
              f"{test['per_class']['positive']['precision']:.3f}, check set {report['checkset']['right']}/"
              f"{report['checkset']['n']}; goal {'met' if report['meets_goal'] else 'NOT met'}", flush=True)
    write_results(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
