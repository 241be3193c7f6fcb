"""Shared by the classifier-training tests: a synthetic corpus split and the tiny-run fixture that points every
path the training runs write into a temporary folder."""
from __future__ import annotations

import random

import pytest

from export.train_sentiment import encode, pipeline, report
from models.sentiment import LABELS
from tests.export.test_sentiment_export import make_tiny_encoder

WORDS = {"positive": "good great love thank fine".split(), "negative": "bad awful hate late lost".split(),
         "neutral": "the a flight phone app today crew bag".split()}


def synthetic_split(n_per_label: int = 40, seed: int = 0) -> tuple[dict, dict]:
    rng = random.Random(seed)
    rows, splits = {}, {"train": [], "validation": [], "test": []}
    for label in LABELS:
        for k in range(n_per_label):
            words = rng.sample(WORDS[label], 2) + rng.sample(WORDS["neutral"], 2)
            rng.shuffle(words)
            row = len(rows)
            # as in the corpus: a label confidence, missing for some rows
            confidence = rng.choice([None, 0.4, 0.7, 1.0])
            rows[row] = {"row": row, "label": label, "confidence": confidence, "text": " ".join(words)}
            splits["train" if k < n_per_label * 0.6 else "validation" if k < n_per_label * 0.8 else "test"].append(row)
    split = {"corpus": {"package": "synthetic", "rows": len(rows)}, "seed": seed,
             "dropped": {"duplicates": 0, "tied_conflicting_labels": 0}, "splits": splits}
    return split, rows


@pytest.fixture
def tiny_run(tmp_path, monkeypatch):
    """Every path the runs write points into tmp_path; layer choices fit a 2-layer encoder."""
    encoder_dir = make_tiny_encoder(tmp_path / "encoder", seed=1)
    paths = {"head": tmp_path / "head.safetensors", "top": tmp_path / "encoder_top.safetensors",
             "metrics": tmp_path / "metrics.json", "experiments": tmp_path / "experiments.json"}
    monkeypatch.setattr(encode, "cache_root", lambda: tmp_path / "cache")
    monkeypatch.setattr(encode, "default_encoder_dir", lambda: encoder_dir)
    monkeypatch.setattr(encode, "ALL_LAYERS", [0, 1, 2])
    monkeypatch.setattr(pipeline, "default_encoder_dir", lambda: encoder_dir)
    for module in (pipeline, report):
        monkeypatch.setattr(module, "HEAD_PATH", paths["head"])
        monkeypatch.setattr(module, "METRICS_PATH", paths["metrics"])
        monkeypatch.setattr(module, "EXPERIMENTS_PATH", paths["experiments"], raising=False)
    monkeypatch.setattr(pipeline, "ENCODER_TOP_PATH", paths["top"])
    monkeypatch.setattr(pipeline, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(report, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(pipeline, "SPLIT_PATH", tmp_path / "split.json")
    monkeypatch.setattr(pipeline, "DEFAULT_CONFIG", {"pool_layers": [1, 2], "hidden": 8, "dropout": 0.1,
                                                     "weight_decay": 1e-2, "lr": 1e-2, "epochs": 5})
    # the real recipe's keys, sized for the tiny encoder
    monkeypatch.setattr(pipeline, "FINETUNE_CONFIG", {**pipeline.FINETUNE_CONFIG, "frozen": 1, "pool_layers": [1, 2],
                                                      "hidden": 8, "lr_encoder": 1e-4, "epochs": 1, "batch": 16,
                                                      "checks": 2, "warm_head": True})
    return encoder_dir, paths
