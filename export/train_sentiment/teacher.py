"""A larger encoder fine-tuned as the classifier's distillation teacher: all-mpnet-base-v2 (12 layers of 768,
110M parameters; requirements-teacher.txt). Never served: at ~8x MiniLM-L6's compute per token it would miss
the 5 ms single-sentence target; its distribution is what a MiniLM student learns from (--distill W
--teacher DIR/sentiment_head.safetensors).

`python -m export.train_sentiment --train-teacher DIR` caches the output of its frozen lower layers once,
fine-tunes the layers above with a fresh head (finetune.finetune, the MiniLM recipe's loop), records it like
any candidate in the experiments file and writes it to DIR: the head (offset in its last bias, encoder named
in its metadata), the tuned layers, and its offset-free log-probabilities for every split text
(teacher_logits.npz), so a distilled run does not pay the teacher's encoder pass again.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from export.sentiment import HEAD_PATH, PooledEncoder, SentimentClassifier, SentimentHead, load_encoder
from export.train_sentiment import SEED, log
from export.train_sentiment.encode import LOGITS_FILE, EncoderFiles, log_softmax, save_logits, scorer, token_states
from export.train_sentiment.finetune import (
    FINETUNE_CONFIG,
    CachedStates,
    TopLayers,
    finetune,
    finetune_features,
    predict_finetuned,
    round_to_stored,
)
from export.train_sentiment.head import with_logit_offset
from export.train_sentiment.pipeline import (
    Candidate,
    best_on_validation,
    labels_by_split,
    recipe_name,
    save_model,
    split_confidence,
    texts_by_split,
)
from export.train_sentiment.report import calibrated_records, record_experiments
from models.registry import MPNET_TEACHER_NAME as TEACHER_NAME
from models.registry import MPNET_TEACHER_SHA256
from models.sources import teacher_encoder_dir

TEACHER_FILES = EncoderFiles(MPNET_TEACHER_SHA256, teacher_encoder_dir, lower_only=True)
# The top four of twelve layers are tuned: measured on 2 cores (2026-12-07), the caching pass of the lower eight
# took 1,172 s for the 34,457 split texts and two epochs of the top four 1,908 s (~1.1 s a step); a step through
# all twelve measured ~4-8 s, hours an epoch. The pooled layers are the last three, as MiniLM's served head pools
# its last three.
TEACHER_CONFIG = {**FINETUNE_CONFIG, "frozen": 8, "pool_layers": [10, 11, 12]}


def fresh_head(top: TopLayers, cached: CachedStates, train_idx: np.ndarray, cfg: dict, sample: int = 2048) -> SentimentHead:
    """A head whose feature standardization is that of the untuned top layers' pooled features on a sample of
    the training texts (MiniLM's fresh head takes its frozen run's; the teacher has no frozen run)."""
    rng = np.random.default_rng(cfg.get("seed", SEED))
    idx = np.sort(rng.choice(train_idx, size=min(sample, len(train_idx)), replace=False))
    top.eval()
    with torch.inference_mode():
        feats = torch.cat([finetune_features(top, cached, None, idx[b:b + 128], cfg["pool_layers"], cfg["frozen"])
                           for b in range(0, len(idx), 128)])
    torch.manual_seed(cfg.get("seed", SEED))
    head = SentimentHead(feats.shape[1], cfg["hidden"], dropout=cfg["dropout"])
    head.feature_mean.copy_(feats.mean(0))
    head.feature_scale.copy_(feats.std(0).clamp(min=1e-6))
    return head


def run_teacher(split: dict, by_row: dict, names: list[str], keep: Path, overrides: dict | None = None) -> int:
    """--train-teacher DIR: the teacher's top layers + a fresh head fine-tuned (TEACHER_CONFIG, with the
    command line's overrides), its three records (as trained, with offsets) added to the experiments file,
    and the best on validation written to DIR with its logits for every split text. Nothing is served."""
    from transformers import AutoTokenizer

    cfg = {**TEACHER_CONFIG, **(overrides or {})}
    if min(cfg["pool_layers"]) <= cfg["frozen"]:  # only the tuned layers' outputs exist in a teacher run
        raise ValueError(f"the teacher pools layers {cfg['pool_layers']}: all must be above --frozen {cfg['frozen']}")
    texts, positions = texts_by_split(split, by_row, names)
    states, lengths, _ = token_states(texts, cfg["frozen"], source=TEACHER_FILES)
    y = labels_by_split(split, by_row, names)
    encoder_dir = teacher_encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir))
    encoder = load_encoder(encoder_dir)
    top, cached = TopLayers(encoder, cfg["frozen"]), CachedStates(states, lengths)
    head = fresh_head(top, cached, positions["train"], cfg)
    n_layers = encoder.config.num_hidden_layers
    log(f"teacher {TEACHER_NAME}: fine-tuning layers {list(range(cfg['frozen'], n_layers))} + head: {cfg}")
    info = finetune(top, head, cached, None, positions["train"], y["train"], positions["validation"],
                    y["validation"], cfg, confidence=split_confidence(split, by_row, "train"))
    round_to_stored(top)
    logits = predict_finetuned(top, head, cached, None, np.arange(len(texts)), cfg["pool_layers"], cfg["frozen"])
    name = f"teacher {TEACHER_NAME}: " + recipe_name(cfg, n_layers, info)
    records = calibrated_records(
        name, f"distillation teacher, not served; {TEACHER_NAME} layers 0-{cfg['frozen'] - 1} frozen (cached outputs)",
        logits[positions["validation"]], y["validation"], logits[positions["test"]], y["test"],
        lambda b: scorer(SentimentClassifier(PooledEncoder(encoder, cfg["pool_layers"]), with_logit_offset(head, b)).eval(),
                         tokenizer), cfg, {"train": info})
    chosen = best_on_validation([Candidate(r, b, head, encoder, True) for r, b in records])
    head_path = save_model(chosen, cfg, Path(keep) / HEAD_PATH.name, encoder_name=TEACHER_NAME)
    save_logits(head_path.with_name(LOGITS_FILE), texts, log_softmax(logits))
    record_experiments([r for r, _ in records], {})
    log(f"teacher kept, not served: {chosen.record['name']} -> {head_path} (+ {LOGITS_FILE})")
    return 0
