"""The committed measurement of the classifier as served (eval/results/sentiment_served.json) is of the model
committed now, and says what the issue asks of it."""
from __future__ import annotations

import json

from eval.sentiment_served import GOAL, RESULTS_PATH
from models import sentiment


def test_served_results_are_of_the_committed_model_and_meet_the_goal():
    results = json.loads(RESULTS_PATH.read_text())
    trained = sentiment.load_metrics()
    # written after the model now in models/weights was trained (same command and date), else rerun the script
    assert results["trained"]["command"] == trained["command"] and results["trained"]["date"] == trained["date"]
    assert results["goal"] == GOAL == {"test_macro_f1": 0.80, "test_positive_precision": 0.75}
    served = results["variants"][results["served_cpu_variant"]]
    test = served["test"]
    assert test["n"] == trained["split_sizes"]["test"]
    assert served["meets_goal"] == (test["macro_f1"] >= 0.80 and test["per_class"]["positive"]["precision"] >= 0.75)
    for variant in results["variants"].values():  # every variant the CPU may serve, not only the default
        assert variant["meets_goal"], variant["precision"]
        assert variant["checkset"]["right"] >= results["trained"]["checkset_right"] == 50
        assert variant["checkset"]["right"] == variant["checkset"]["n"] - len(variant["checkset"]["misses"])
    # the fp32 graph is the trained model: it reproduces the training run's test scores
    fp32 = results["variants"]["fp32"]["test"]
    assert abs(fp32["macro_f1"] - trained["test"]["macro_f1"]) <= 0.002
