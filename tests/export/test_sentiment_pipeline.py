"""The two training runs of export.train_sentiment end to end, on a tiny random BERT and a synthetic corpus:
what they write (head, metrics file, experiment records, fine-tuned layers) and that it loads back."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from export import sentiment as exp
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


def test_frozen_run_writes_a_head_and_a_metrics_report_that_agree(tiny_run):
    _, paths = tiny_run
    split, rows = synthetic_split()
    assert pipeline.run_frozen(split, rows, ["train", "validation", "test"], t0=0.0, explore=False) == 0
    written = json.loads(paths["metrics"].read_text())
    assert written["split_sizes"] == {name: len(v) for name, v in split["splits"].items()}
    assert 0.0 <= written["test"]["macro_f1"] <= 1.0 and set(written["test"]["per_class"]) == set(LABELS)
    head, layers = exp.load_head(paths["head"])
    assert layers == [1, 2] and head.in_dim == 2 * 32


@pytest.mark.parametrize("overrides", [{}, {"frozen": 0, "warm_head": False, "lr_encoder": 3e-4},
                                       {"confidence_weighted": True}, {"distill": 0.5}, {"ema": 0.9}],
                         ids=["top layer, warm-started head", "all layers, fresh head", "confidence-weighted loss",
                              "distilled from the stored model", "weight moving average"])
def test_finetune_run_records_every_candidate_and_serves_the_one_it_names(tiny_run, overrides):
    encoder_dir, paths = tiny_run
    split, rows = synthetic_split()
    if overrides.get("distill"):  # the teacher is the classifier stored before the run: a frozen-encoder head
        assert pipeline.run_frozen(split, rows, ["train", "validation", "test"], t0=0.0, explore=False) == 0
    assert pipeline.run_finetune(split, rows, ["train", "validation", "test"], t0=0.0, overrides=overrides) == 0
    experiments = json.loads(paths["experiments"].read_text())
    names = [r["name"] for r in experiments["experiments"]]
    assert len(names) >= 4 and any("fine-tuned" in n for n in names) and any("frozen" in n for n in names)
    assert experiments["served"] in names
    written = json.loads(paths["metrics"].read_text())
    assert written["served_experiment"] == experiments["served"]
    assert written["served_finetuned"] == paths["top"].is_file() == ("fine-tuned" in experiments["served"])
    served = next(r for r in experiments["experiments"] if r["name"] == experiments["served"])
    assert written["logit_offset"] == served["logit_offset"]
    assert experiments["served_full_pipeline_test"]["macro_f1"] == written["test"]["macro_f1"]
    # the served head carries the chosen offset in its last bias: it loads back and scores like the report says
    head, _ = exp.load_head(paths["head"])
    assert np.isfinite(head.net[-1].bias.detach().numpy()).all()
    kind = "warm-started head" if overrides.get("warm_head", True) else "fresh head"
    assert any("fine-tuned" in n and kind in n for n in names)
    frozen_note = {0: "the embeddings frozen", 1: "the embeddings and layer 0 frozen"}[overrides.get("frozen", 1)]
    assert all(r["note"].startswith(frozen_note) for r in experiments["experiments"] if "fine-tuned" in r["name"])
    if overrides.get("distill"):
        tuned = [r for r in experiments["experiments"] if "distilled from the served model, weight 0.5" in r["name"]]
        assert len(tuned) >= 1 and all(r["train"]["teacher"].startswith("all-MiniLM-L6-v2 (frozen)") for r in tuned)
    if overrides.get("ema"):  # both weight sets are scored at every check, and the record says which was kept
        tuned = [r for r in experiments["experiments"] if "weight EMA 0.9, kept: " in r["name"]]
        assert len(tuned) >= 1 and all(r["train"]["best_weights"] in ("trained", "ema") for r in tuned)
        assert all(set(c) == {"step", "val_macro_f1", "ema_val_macro_f1"} for r in tuned for c in r["train"]["checks"])
    if paths["top"].is_file():
        from safetensors.torch import load_file

        assert {t.dtype for t in load_file(str(paths["top"])).values()} == {torch.float16}


def test_stored_layers_are_the_rounded_weights_the_trainer_scored(tmp_path):
    """The trainer scores its layers after round_to_stored; the float16 file loads back to exactly them."""
    from export.train_sentiment.finetune import TopLayers, round_to_stored

    encoder = exp.load_encoder(make_tiny_encoder(tmp_path / "encoder", seed=2))
    top = TopLayers(encoder, 0)
    with torch.no_grad():  # weights float16 cannot hold: the rounding must matter
        for p in top.parameters():
            p.add_(torch.randn_like(p) * 1e-3)
    round_to_stored(top)
    scored = {k: v.clone() for k, v in encoder.state_dict().items()}
    path = tmp_path / "layers.safetensors"
    exp.save_encoder_layers(encoder, [0, 1], path)
    fresh = exp.load_encoder(tmp_path / "encoder")
    from safetensors.torch import load_file

    fresh.load_state_dict(load_file(str(path)), strict=False)
    for name, value in fresh.state_dict().items():
        assert value.dtype == torch.float32 and torch.equal(value, scored[name]), name
