"""The two training runs of export.train_sentiment end to end, on a tiny random BERT and a synthetic corpus:
what they write (head, metrics file, experiment records, fine-tuned layers) and that it loads back."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from export import sentiment as exp
from export.train_sentiment import encode, pipeline
from models.sentiment import LABELS
from tests.export.conftest import synthetic_split
from tests.export.test_sentiment_export import make_tiny_encoder


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
    from export.train_sentiment.encode import ensemble_logits, member_logits, stored_offset

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
    first, second = (ensemble_logits(texts, [m]) for m in members)
    assert not np.allclose(first, second)

    assert pipeline.run_ensemble(split, rows, members) == 0
    ensembles = [r for r in json.loads(paths["experiments"].read_text())["experiments"] if r["name"].startswith("ensemble of 2")]
    assert len(ensembles) >= 2 and all(r["config"]["members"] == [exp.head_metadata(m)["experiment"] for m in members]
                                       for r in ensembles)
    # the ensemble is the members' mean offset-free log-probability, renormalized
    both = ensemble_logits(texts, members)
    mean = (first + second) / 2
    expected = mean - np.log(np.exp(mean).sum(1, keepdims=True))
    assert np.allclose(both, expected, atol=1e-5)
    assert np.allclose(np.exp(both).sum(1), 1, atol=1e-5)
    # a member's logits are offset-free: adding its stored offset back gives the stored classifier's decision
    from transformers import AutoTokenizer

    from export.train_sentiment.encode import torch_probs

    encoder_dir = encode.stored_encoder_dir(members[0])  # the fixture's tiny MiniLM stand-in
    served = torch_probs(exp.build_torch_classifier(encoder_dir, members[0]),
                         AutoTokenizer.from_pretrained(str(encoder_dir)), texts)
    own = member_logits(texts, members[0])
    assert np.array_equal((own + stored_offset(members[0])).argmax(1), served.argmax(1))
    assert np.allclose(np.log(served), own + stored_offset(members[0]) - np.log(np.exp(own + stored_offset(members[0])).sum(1, keepdims=True)), atol=1e-5)

    assert pipeline.run_finetune(split, rows, names, t0=0.0, overrides={"distill": 0.5}, teachers=members) == 0
    distilled = [r for r in json.loads(paths["experiments"].read_text())["experiments"]
                 if "distilled from an ensemble of 2 stored models" in r["name"]]
    assert distilled and all(r["train"]["teacher"].startswith("an ensemble of 2 stored models: ") for r in distilled)
    assert json.loads(paths["experiments"].read_text())["served"]  # a run without --keep serves

    # with variants of the training texts: the teacher scores them too, and one epoch takes more steps
    plain_steps = distilled[0]["train"]["steps"]
    assert pipeline.run_finetune(split, rows, names, t0=0.0, overrides={"distill": 0.5, "augment": 2},
                                 teachers=members, keep=tmp_path / "student") == 0
    augmented = [r for r in json.loads(paths["experiments"].read_text())["experiments"]
                 if "2 teacher-labelled variant(s) per training text" in r["name"]]
    assert augmented and augmented[0]["config"]["augment"] == 2
    assert augmented[0]["train"]["steps"] > plain_steps * 1.8  # up to two variants of (nearly) every text
    with pytest.raises(ValueError, match="augment needs distill"):
        pipeline.run_finetune(split, rows, names, t0=0.0, overrides={"augment": 1}, keep=tmp_path / "none")


def test_the_command_line_rejects_teacher_and_ensemble_misuse(tmp_path, capsys):
    from export.train_sentiment.__main__ import main

    head = tmp_path / "head.safetensors"
    head.write_bytes(b"")
    for argv, message in [(["--finetune", "--teacher", str(head)], "--teacher needs --distill"),
                          (["--keep", str(tmp_path)], "--keep needs --finetune"),
                          (["--ensemble", str(tmp_path / "missing.safetensors")], "no stored classifier head"),
                          (["--finetune", "--ensemble", str(head)], "does not combine with --finetune"),
                          (["--train-teacher", str(tmp_path), "--finetune"], "--train-teacher is a run of its own"),
                          (["--train-teacher", str(tmp_path), "--distill", "0.5"], "--train-teacher is a run of its own"),
                          (["--finetune", "--augment", "1"], "--augment needs --distill"),
                          (["--finetune", "--distill", "0.5", "--augment", "-1"], "--augment is a number")]:
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


def test_a_lead_within_the_noise_margin_does_not_replace_the_served_model():
    def record(f1, precision, checkset=1.0):
        return {"validation": {"macro_f1": f1, "positive_precision": precision}, "checkset": {"accuracy_3way": checkset}}

    served = record(0.7977, 0.750)
    margin = pipeline.SERVING_MARGIN
    assert not pipeline.replaces_served(record(0.7988, 0.790), served)  # +0.0011: within the noise
    assert not pipeline.replaces_served(record(0.7977 + margin, 0.80), served)
    assert pipeline.replaces_served(record(0.7977 + margin + 1e-4, 0.76), served)
    assert not pipeline.replaces_served(record(0.90, 0.70), served)  # the precision floor comes first
    assert pipeline.replaces_served(record(0.75, 0.76), record(0.80, 0.70))  # a model meeting it replaces one that misses
    # the check set may not get worse than the served model's: 49/50 against 50/50 is a floor missed
    assert not pipeline.replaces_served(record(0.8044, 0.79, checkset=0.98), served)
    assert pipeline.replaces_served(record(0.8012, 0.76, checkset=1.0), served)
    assert pipeline.replaces_served(record(0.8044, 0.79, checkset=0.98), record(0.7977, 0.75, checkset=0.96))
    assert pipeline.serving_key(record(0.8044, 0.79, checkset=0.98), 1.0) < pipeline.serving_key(record(0.8012, 0.76), 1.0)
    assert pipeline.served_checkset_floor(None) == 0.0 and pipeline.served_checkset_floor(served) == 1.0


def test_the_recorded_command_reproduces_the_run():
    cfg = {**pipeline.FINETUNE_CONFIG, "distill": 0.5, "augment": 1, "confidence_weighted": True, "epochs": 3.0}
    assert pipeline.finetune_command(cfg, [pipeline.Path("T/head.safetensors")]) == (
        "python -m export.train_sentiment --finetune --epochs 3 --confidence-weighted --distill 0.5 --augment 1 "
        "--teacher T/head.safetensors")
    assert pipeline.finetune_command(dict(pipeline.FINETUNE_CONFIG)) == "python -m export.train_sentiment --finetune"


def test_offsets_can_be_held_to_the_check_set_floor(monkeypatch):
    """The fourth record's offsets are the best on validation among those that keep the check set at the served
    model's score; the check set is scored once and shifted by each offset."""
    from export.train_sentiment import report

    items = [("positive", "a blast"), ("neutral", "the zoo"), ("negative", "awful")]
    from export.train_sentiment import evaluate

    for module in (report, evaluate):
        monkeypatch.setattr(module, "checkset_items", lambda: items)
    calls = []

    def score(texts):  # "a blast" leans positive by 1.0 over neutral
        calls.append(texts)
        return np.exp(np.array([[-3.0, -1.5, -0.5], [-3.0, -0.2, -2.0], [-0.1, -2.5, -3.0]]))

    admits = report.checkset_admits(score, 1.0)
    assert admits(np.array([0.0, 0.0, -0.9])) and not admits(np.array([0.0, 0.0, -1.1]))
    assert report.checkset_admits(score, 2 / 3)(np.array([0.0, 0.0, -1.1]))
    assert len(calls) == 2  # once per floor, not once per offset
    # validation prefers pushing positive down hard; the floor stops it where "a blast" stays positive
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    val = rng.normal(0, 1, (300, 3)) + np.eye(3)[y] * 1.5
    val[:, 2] += 1.5  # a model that over-predicts positive
    records = report.calibrated_records("m", "note", val, y, val, y, lambda b: score, {}, checkset_floor=1.0)
    names = [r["name"] for r, _ in records]
    assert names[-1] == "m + offsets (val macro-F1, val positive precision >= 0.75, check set >= 3/3)"
    free, held = records[2][1], records[3][1]
    assert free[2] < -1.0 and held[2] >= -0.95  # held where the check set stays right (-1.0 ties: neutral)
    assert records[3][0]["validation"]["macro_f1"] <= records[2][0]["validation"]["macro_f1"]
    assert len(report.calibrated_records("m", "note", val, y, val, y, lambda b: score, {})) == 3  # no floor, no 4th
