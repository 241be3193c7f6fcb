"""The classifier head on pooled encoder features: training, prediction, and the calibrated logit offsets."""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch

from export.sentiment import SentimentHead
from export.train_sentiment import SEED
from export.train_sentiment.encode import ALL_LAYERS
from export.train_sentiment.evaluate import metrics
from models.sentiment import LABELS

BATCH = 512  # head mini-batch: large enough that a 30-epoch run takes seconds on 2 cores
# Chosen with --explore on the validation split (see sentiment_metrics.json "exploration").
DEFAULT_CONFIG = {"pool_layers": [4, 5, 6], "hidden": 128, "dropout": 0.3, "weight_decay": 1e-2,
                  "lr": 2e-3, "epochs": 30}
EXPLORE = [
    {"name": "linear, last layer", "pool_layers": [6], "hidden": 0},
    {"name": "linear, layers 4-6", "pool_layers": [4, 5, 6], "hidden": 0},
    {"name": "MLP-128, last layer", "pool_layers": [6]},
    {"name": "MLP-128, layers 4-6 (default)", "pool_layers": [4, 5, 6]},
    {"name": "MLP-128, all 7 hidden states", "pool_layers": ALL_LAYERS},
    {"name": "MLP-128, layers 4-6, no class weights", "pool_layers": [4, 5, 6], "unweighted": True},
]


def class_weights(y: np.ndarray) -> torch.Tensor:
    counts = np.bincount(y, minlength=len(LABELS))
    return torch.tensor(len(y) / (len(LABELS) * counts), dtype=torch.float32)


def train_head(x_tr, y_tr, x_va, y_va, config: dict, seed: int = SEED, weighted: bool = True
               ) -> tuple[SentimentHead, dict]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    xt, yt = torch.from_numpy(x_tr.astype(np.float32)), torch.from_numpy(y_tr)
    xv = torch.from_numpy(x_va.astype(np.float32))
    head = SentimentHead(xt.shape[1], config["hidden"], dropout=config["dropout"])
    head.feature_mean.copy_(xt.mean(0))
    head.feature_scale.copy_(xt.std(0).clamp(min=1e-6))
    opt = torch.optim.AdamW(head.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config["epochs"])
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_weights(y_tr) if weighted else None)
    best = (-1.0, 0, None)
    for epoch in range(config["epochs"]):
        head.train()
        perm = rng.permutation(len(xt))
        for b in range(0, len(perm), BATCH):
            idx = torch.from_numpy(perm[b:b + BATCH])
            opt.zero_grad()
            loss_fn(head(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()
        head.eval()
        with torch.no_grad():
            pred = head(xv).argmax(1).numpy()
        f1 = metrics(y_va, pred)["macro_f1"]
        if f1 > best[0]:
            best = (f1, epoch + 1, {k: v.clone() for k, v in head.state_dict().items()})
    head.load_state_dict(best[2])
    return head.eval(), {"val_macro_f1": best[0], "best_epoch": best[1]}


def features(emb: np.ndarray, layers: list[int]) -> np.ndarray:
    return emb[:, layers, :].reshape(len(emb), -1)


def predict(head: SentimentHead, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(head(torch.from_numpy(x.astype(np.float32))), -1).numpy()


def head_logits(head: SentimentHead, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return head.eval()(torch.from_numpy(x.astype(np.float32))).numpy()


def calibrate_bias(logits: np.ndarray, y: np.ndarray, min_positive_precision: float | None = None,
                   grid: np.ndarray = np.round(np.arange(-2.0, 2.0001, 0.05), 2),
                   admissible: Callable[[np.ndarray], bool] | None = None) -> tuple[np.ndarray, dict]:
    """A per-class logit offset (neutral fixed at 0) that maximizes macro-F1 on the given (validation)
    split, optionally only among offsets whose positive precision reaches a floor and that `admissible`
    accepts (the check set's floor, report.calibrated_records). Added to the head's last bias, it changes
    what is served without changing the graph."""
    neg, neu, pos = (LABELS.index(c) for c in ("negative", "neutral", "positive"))
    best = (-1.0, np.zeros(len(LABELS)), None)
    for b_neg in grid:
        for b_pos in grid:
            bias = np.zeros(len(LABELS))
            bias[neg], bias[pos] = b_neg, b_pos
            m = metrics(y, (logits + bias).argmax(1))
            if min_positive_precision is not None and m["per_class"]["positive"]["precision"] < min_positive_precision:
                continue
            if m["macro_f1"] > best[0] and (admissible is None or admissible(bias)):
                best = (m["macro_f1"], bias, m)
    if best[2] is None:
        raise ValueError(f"no logit offset reaches positive precision {min_positive_precision}"
                         + (" and is admissible" if admissible else ""))
    return best[1], best[2]


def with_logit_offset(head: SentimentHead, bias: np.ndarray) -> SentimentHead:
    """A copy of the head whose last layer's bias includes the calibrated per-class offset."""
    shifted = copy.deepcopy(head)
    with torch.no_grad():
        shifted.net[-1].bias += torch.tensor(bias, dtype=torch.float32)
    return shifted.eval()
