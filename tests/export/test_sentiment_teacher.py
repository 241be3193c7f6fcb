"""The distillation teacher (export.train_sentiment.teacher) on a tiny random MPNet: its top layers run on cached
states exactly as inside the model, a teacher run writes what a distilled run reads, and nothing is served."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import MPNetConfig, MPNetModel, MPNetTokenizerFast

from export import sentiment as exp
from export.train_sentiment import encode, pipeline, teacher
from export.train_sentiment.finetune import CachedStates, TopLayers
from tests.export.conftest import WORDS, synthetic_split
from tests.export.test_sentiment_export import WORDS as TOKEN_WORDS

NAMES = ["train", "validation", "test"]


def make_tiny_mpnet(path, seed=0):
    path.mkdir(parents=True, exist_ok=True)
    words = sorted({*TOKEN_WORDS, *(w for ws in WORDS.values() for w in ws)})
    vocab = ["<s>", "<pad>", "</s>", "[UNK]", "<mask>", *words, ",", ".", "!"]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    MPNetTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(str(path))
    torch.manual_seed(seed)
    config = MPNetConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=160, pad_token_id=1)
    MPNetModel(config).eval().save_pretrained(str(path))
    return path


def test_top_layers_on_cached_states_are_the_models_own_layers(tmp_path):
    """MPNet's layers need the relative-position bias its encoder computes; with padding in the batch the
    tuned layers' outputs must equal the full model's hidden states for the real tokens."""
    encoder = exp.load_encoder(make_tiny_mpnet(tmp_path / "mpnet"))
    ids = torch.tensor([[0, 7, 8, 9, 10, 2], [0, 11, 12, 2, 1, 1]])
    mask = (ids != 1).long()
    with torch.inference_mode():
        full = encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        outs = TopLayers(encoder, 1)(full[1], mask)
    for k, out in enumerate(outs, start=2):
        diff = ((out - full[k]).abs() * mask[..., None]).max()
        assert diff < 1e-5, (k, float(diff))


def test_cached_states_batch_back_to_the_same_outputs(tmp_path, monkeypatch):
    """The teacher's caching pass runs only the frozen layers; its states feed the top layers to the same result."""
    monkeypatch.setattr(encode, "cache_root", lambda: tmp_path / "cache")
    encoder_dir = make_tiny_mpnet(tmp_path / "mpnet")
    texts = ["good flight today", "awful crew , late bag !", "the app"]
    files = encode.EncoderFiles("tiny", lambda: encoder_dir, lower_only=True)
    states, lengths, pooled = encode.token_states(texts, 1, source=files)
    assert pooled.shape == (3, 2, 32)  # embeddings + the one frozen layer
    encoder = exp.load_encoder(encoder_dir)
    tokenizer = exp.AutoTokenizer.from_pretrained(str(encoder_dir))
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        last = encoder(**enc).last_hidden_state
        hidden, mask = CachedStates(states.astype(np.float32), lengths).batch(np.arange(3))
        top = TopLayers(encoder, 1)(hidden, mask)[-1]
    assert list(lengths) == enc["attention_mask"].sum(1).tolist()
    for row, n in enumerate(lengths):  # the cache is float16: close, not equal
        assert torch.allclose(top[row, :n], last[row, :n], atol=2e-2)


@pytest.fixture
def tiny_teacher(tiny_run, tmp_path, monkeypatch):
    mpnet_dir = make_tiny_mpnet(tmp_path / "mpnet", seed=3)
    monkeypatch.setattr(teacher, "TEACHER_FILES", encode.EncoderFiles("tiny-mpnet", lambda: mpnet_dir, lower_only=True))
    monkeypatch.setattr(teacher, "teacher_encoder_dir", lambda: mpnet_dir)
    monkeypatch.setattr(teacher, "TEACHER_CONFIG", {**teacher.TEACHER_CONFIG, "frozen": 1, "pool_layers": [2, 3],
                                                    "hidden": 8, "lr_encoder": 1e-4, "epochs": 1, "batch": 16,
                                                    "checks": 2})
    return tiny_run[1]


def test_a_teacher_run_writes_what_a_distilled_run_reads_and_serves_nothing(tiny_teacher, tmp_path):
    paths = tiny_teacher
    split, rows = synthetic_split()
    keep = tmp_path / "teacher"
    assert teacher.run_teacher(split, rows, NAMES, keep) == 0
    assert not paths["head"].exists() and not paths["metrics"].exists()
    head = keep / exp.HEAD_PATH.name
    meta = exp.head_metadata(head)
    assert meta["encoder"] == teacher.TEACHER_NAME and json.loads(meta["finetuned_layers"]) == [1, 2]
    experiments = json.loads(paths["experiments"].read_text())
    assert "served" not in experiments
    records = [r for r in experiments["experiments"] if r["name"].startswith(f"teacher {teacher.TEACHER_NAME}: ")]
    assert len(records) >= 2 and meta["experiment"] in {r["name"] for r in records}
    assert all("not served" in r["note"] for r in records)
    # logits for every split text, log-probabilities; the stored decision (plus its offset) is the record's
    texts, positions = pipeline.texts_by_split(split, rows, NAMES)
    store = encode.stored_logits(head)
    logits = np.stack([store[k] for k in encode.text_keys(texts).tolist()])
    assert len(store) == len(set(texts)) and np.allclose(np.exp(logits).sum(1), 1, atol=1e-5)
    chosen = next(r for r in records if r["name"] == meta["experiment"])
    y = pipeline.labels_by_split(split, rows, ["test"])["test"]
    pred = (logits[positions["test"]] + np.array(chosen["logit_offset"])).argmax(1)
    assert abs((pred == y).mean() - chosen["test"]["accuracy"]) < 0.03  # offsets are rounded in the record
    assert encode.text_keys(["a text it never saw"])[0] not in store

    assert pipeline.run_finetune(split, rows, NAMES, t0=0.0, overrides={"distill": 0.5}, teachers=[head]) == 0
    distilled = [r for r in json.loads(paths["experiments"].read_text())["experiments"]
                 if "distilled from a stored model" in r["name"]]
    assert distilled and all(r["train"]["teacher"].startswith(f"a stored model: teacher {teacher.TEACHER_NAME}")
                             for r in distilled)


def test_a_teacher_runs_on_its_own_encoder_as_its_stored_logits_say(tiny_teacher, tmp_path, monkeypatch):
    """Texts its run did not store (the check set, new texts) go through the teacher's own encoder, tokenizer and
    tuned layers; on the split's texts that gives its stored logits back (up to the float16 state cache)."""
    split, rows = synthetic_split()
    keep = tmp_path / "teacher"
    assert teacher.run_teacher(split, rows, NAMES, keep) == 0
    head = keep / exp.HEAD_PATH.name
    monkeypatch.setattr("models.sources.teacher_encoder_dir", teacher.teacher_encoder_dir)
    texts = [rows[i]["text"] for i in split["splits"]["test"]]
    stored = encode.member_logits(texts, head)
    before = len(encode.stored_logits(head))
    # texts the store lacks are computed on the teacher's encoder and added to the store; the others are read
    new = ["good good flight", "late bag awful"]
    with_new = encode.member_logits(texts[:3] + new, head)
    assert np.array_equal(with_new[:3], stored[:3])
    assert len(encode.stored_logits(head)) == before + 2
    assert np.array_equal(encode.member_logits(new, head), with_new[3:])
    (keep / encode.LOGITS_FILE).unlink()
    computed = encode.member_logits(texts + new, head)
    assert not (keep / encode.LOGITS_FILE).exists()  # no store to add to: nothing written
    assert np.abs(computed - np.concatenate([stored, with_new[3:]])).max() < 0.05
    assert (computed[:len(texts)].argmax(1) == stored.argmax(1)).mean() > 0.95
    # an ensemble of the teacher and a MiniLM model: each member on its own encoder
    assert pipeline.run_finetune(split, rows, NAMES, t0=0.0, overrides={"seed": 5}, keep=tmp_path / "minilm") == 0
    minilm = tmp_path / "minilm" / tiny_teacher["head"].name
    mixed = encode.ensemble_logits(texts, [head, minilm])
    assert mixed.shape == (len(texts), 3) and np.allclose(np.exp(mixed).sum(1), 1, atol=1e-5)
    assert pipeline.run_ensemble(split, rows, [head, minilm]) == 0
    records = json.loads(tiny_teacher["experiments"].read_text())["experiments"]
    assert any(r["name"].startswith("ensemble of 2 (teacher ") and r["checkset"]["n"] == 50 for r in records)


def test_an_unknown_encoder_is_named(tmp_path):
    from tests.export.test_sentiment_export import make_random_head

    head = make_random_head(tmp_path / "head.safetensors")
    meta = exp.head_metadata(head)
    from safetensors.torch import load_file, save_file

    save_file(load_file(str(head)), str(head), metadata={**meta, "encoder": "roberta-large"})
    with pytest.raises(ValueError, match="trained on encoder 'roberta-large'"):
        encode.member_logits(["good"], head)


def test_a_teacher_must_pool_only_tuned_layers(tiny_teacher, tmp_path):
    split, rows = synthetic_split()
    with pytest.raises(ValueError, match="all must be above --frozen"):
        teacher.run_teacher(split, rows, NAMES, tmp_path / "t", {"pool_layers": [1, 2]})
