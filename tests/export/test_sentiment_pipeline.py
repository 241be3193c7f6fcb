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


def test_kept_runs_of_other_seeds_make_an_ensemble_that_teaches_a_student(tiny_run, tmp_path):
    """--seed/--keep write ensemble members without serving; --ensemble records their combination; --teacher
    distills a student from it. The served files and the experiments header are left alone by the first two."""
    from export.train_sentiment.encode import EnsembleClassifier, ensemble_logits

    _, paths = tiny_run
    split, rows = synthetic_split()
    names = ["train", "validation", "test"]
    members = []
    for seed in (7, 8):
        keep = tmp_path / f"member-{seed}"
        assert pipeline.run_finetune(split, rows, names, t0=0.0, overrides={"seed": seed}, keep=keep) == 0
        members.append(keep / paths["head"].name)
        assert members[-1].is_file() and (keep / paths["top"].name).is_file()
        assert f"seed {seed}" in exp.head_metadata(members[-1])["experiment"]
    assert not paths["head"].exists() and not paths["metrics"].exists()  # nothing served
    experiments = json.loads(paths["experiments"].read_text())
    assert "served" not in experiments
    by_name = {r["name"]: r for r in experiments["experiments"]}
    assert {exp.head_metadata(m)["experiment"] for m in members} <= set(by_name)
    # the two seeds trained different models
    texts = [rows[i]["text"] for i in split["splits"]["test"]]
    first, second = (ensemble_logits(texts, EnsembleClassifier.load([m])) for m in members)
    assert not np.allclose(first, second)

    assert pipeline.run_ensemble(split, rows, members) == 0
    ensembles = [r for r in json.loads(paths["experiments"].read_text())["experiments"] if r["name"].startswith("ensemble of 2")]
    assert len(ensembles) >= 2 and all(r["config"]["members"] == [exp.head_metadata(m)["experiment"] for m in members]
                                       for r in ensembles)
    # the ensemble is the members' mean offset-free log-probability, renormalized
    both = ensemble_logits(texts, EnsembleClassifier.load(members))
    mean = (first + second) / 2
    expected = mean - np.log(np.exp(mean).sum(1, keepdims=True))
    assert np.allclose(both, expected, atol=1e-5)
    assert np.allclose(np.exp(both).sum(1), 1, atol=1e-5)
    # with_bias shares the members and only moves the decision
    ensemble = EnsembleClassifier.load(members)
    with torch.inference_mode():
        ids, mask = torch.tensor([[1, 2, 3]]), torch.ones(1, 3, dtype=torch.long)  # within the tiny vocabulary
        shift = (torch.log(ensemble.with_bias([0.0, 0.0, 1.0])(ids, mask)) - torch.log(ensemble(ids, mask)))[0]
    assert torch.allclose(shift - shift[0], torch.tensor([0.0, 0.0, 1.0]), atol=1e-5)
    assert all(a is b for a, b in zip(ensemble.with_bias([0.0, 0.0, 1.0]).members, ensemble.members))

    assert pipeline.run_finetune(split, rows, names, t0=0.0, overrides={"distill": 0.5}, teachers=members) == 0
    distilled = [r for r in json.loads(paths["experiments"].read_text())["experiments"]
                 if "distilled from an ensemble of 2 stored models" in r["name"]]
    assert distilled and all(r["train"]["teacher"].startswith("an ensemble of 2 stored models: ") for r in distilled)
    assert json.loads(paths["experiments"].read_text())["served"]  # a run without --keep serves


def test_the_command_line_rejects_teacher_and_ensemble_misuse(tmp_path, capsys):
    from export.train_sentiment.__main__ import main

    head = tmp_path / "head.safetensors"
    head.write_bytes(b"")
    for argv, message in [(["--finetune", "--teacher", str(head)], "--teacher needs --distill"),
                          (["--keep", str(tmp_path)], "--keep needs --finetune"),
                          (["--ensemble", str(tmp_path / "missing.safetensors")], "no stored classifier head"),
                          (["--finetune", "--ensemble", str(head)], "does not combine with --finetune")]:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2 and message in capsys.readouterr().err


def test_a_run_never_replaces_a_served_model_that_is_better_on_validation(tiny_run):
    _, paths = tiny_run
    split, rows = synthetic_split()
    names = ["train", "validation", "test"]
    assert pipeline.run_finetune(split, rows, names, t0=0.0) == 0
    experiments = json.loads(paths["experiments"].read_text())
    served = experiments["served"]
    # make the served record unbeatable on validation; a second run (another seed) must keep it and its files
    for record in experiments["experiments"]:
        if record["name"] == served:
            record["validation"].update(macro_f1=1.0, positive_precision=1.0)
    paths["experiments"].write_text(json.dumps(experiments))
    before = {key: paths[key].read_bytes() for key in ("head", "metrics")}
    assert pipeline.run_finetune(split, rows, names, t0=0.0, overrides={"seed": 3}) == 0
    after = json.loads(paths["experiments"].read_text())
    assert after["served"] == served
    assert any("seed 3" in r["name"] for r in after["experiments"])  # recorded all the same
    assert {key: paths[key].read_bytes() for key in ("head", "metrics")} == before
    # and one that is better by the rule replaces it
    for record in after["experiments"]:
        if record["name"] == served:
            record["validation"].update(macro_f1=0.0, positive_precision=0.0)
    paths["experiments"].write_text(json.dumps(after))
    assert pipeline.run_finetune(split, rows, names, t0=0.0, overrides={"seed": 4}) == 0
    assert json.loads(paths["experiments"].read_text())["served"] != served
    # a served record scored on another split (--resplit) is no yardstick
    final = json.loads(paths["experiments"].read_text())
    for record in final["experiments"]:
        record["validation"].update(macro_f1=1.0, positive_precision=1.0)
    paths["experiments"].write_text(json.dumps({**final, "split_digest": "another split"}))
    assert pipeline.run_finetune(split, rows, names, t0=0.0, overrides={"seed": 5}) == 0
    assert json.loads(paths["experiments"].read_text())["split_digest"] == pipeline.split_digest(split)  # served
