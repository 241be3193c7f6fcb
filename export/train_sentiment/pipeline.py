"""The two training runs: the frozen-encoder head (default, with --explore), and --finetune, which also
fine-tunes the top encoder layers and serves whichever candidate is best on validation."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from export.sentiment import (
    ENCODER_TOP_PATH,
    HEAD_PATH,
    PooledEncoder,
    SentimentClassifier,
    SentimentHead,
    default_encoder_dir,
    head_metadata,
    load_encoder,
    load_head,
    save_encoder_layers,
    save_head,
)
from export.train_sentiment import SEED, log
from export.train_sentiment.data import SPLIT_PATH, augment
from export.train_sentiment.encode import (
    embed_all,
    ensemble_logits,
    ensemble_scorer,
    scorer,
    token_states,
    torch_probs,
)
from export.train_sentiment.evaluate import binary_accuracy, metrics
from export.train_sentiment.finetune import (
    FINETUNE_CONFIG,
    CachedStates,
    TopLayers,
    finetune,
    predict_finetuned,
    round_to_stored,
)
from export.train_sentiment.head import (
    DEFAULT_CONFIG,
    EXPLORE,
    features,
    head_logits,
    predict,
    train_head,
    with_logit_offset,
)
from export.train_sentiment.report import (
    EXPERIMENTS_PATH,
    METRICS_PATH,
    POSITIVE_PRECISION_FLOOR,
    calibrated_records,
    record_experiments,
    write_metrics_report,
)
from models.paths import REPO_ROOT
from models.registry import MINILM
from models.sentiment import LABELS


def labels_by_split(split: dict, by_row: dict, names: list[str]) -> dict[str, np.ndarray]:
    return {name: np.array([LABELS.index(by_row[i]["label"]) for i in split["splits"][name]]) for name in names}


def split_confidence(split: dict, by_row: dict, name: str) -> np.ndarray:
    """The corpus's label confidence for each row of one split (NaN where the source gave none)."""
    return np.array([np.nan if by_row[i]["confidence"] is None else by_row[i]["confidence"]
                     for i in split["splits"][name]])


def texts_by_split(split: dict, by_row: dict, names: list[str]) -> tuple[list[str], dict[str, np.ndarray]]:
    """All texts of the named splits in order, and each split's positions in that list."""
    texts, positions = [], {}
    for name in names:
        positions[name] = np.arange(len(texts), len(texts) + len(split["splits"][name]))
        texts += [by_row[i]["text"] for i in split["splits"][name]]
    return texts, positions


# ---------------------------------------------------------------- the frozen encoder's head (default)

def explore_heads(x: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> list[dict]:
    """--explore: each EXPLORE variant trained on the embeddings and scored on validation."""
    rows = []
    for variant in EXPLORE:
        cfg = {**DEFAULT_CONFIG, **{k: v for k, v in variant.items() if k in DEFAULT_CONFIG}}
        start = time.perf_counter()
        x_tr, x_va = (features(x[name], cfg["pool_layers"]) for name in ("train", "validation"))
        head, info = train_head(x_tr, y["train"], x_va, y["validation"], cfg, weighted=not variant.get("unweighted"))
        val = metrics(y["validation"], predict(head, x_va).argmax(1))
        row = {"name": variant["name"], "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"],
               "val_positive_recall": val["per_class"]["positive"]["recall"], "best_epoch": info["best_epoch"],
               "seconds": round(time.perf_counter() - start, 1)}
        rows.append(row)
        log(f"  explore: {row}")
    return rows


def log_test_report(test: dict, val: dict, n_test: int) -> None:
    log(f"validation: accuracy {val['accuracy']:.4f}  macro-F1 {val['macro_f1']:.4f}")
    log(f"TEST ({n_test:,} tweets): accuracy {test['accuracy']:.4f}  macro-F1 {test['macro_f1']:.4f}  "
        f"pos-vs-neg accuracy {test['binary_accuracy_pos_vs_neg']:.4f}")
    log("confusion matrix (rows = true, columns = predicted):")
    log(" " * 10 + "".join(f"{lab:>10}" for lab in LABELS))
    for lab, row in zip(LABELS, test["confusion_matrix"]["matrix"]):
        log(f"{lab:>10}" + "".join(f"{v:>10}" for v in row))
    for lab, m in test["per_class"].items():
        log(f"  {lab:>8}: precision {m['precision']:.3f} recall {m['recall']:.3f} F1 {m['f1']:.3f} (n={m['support']})")


def run_frozen(split: dict, by_row: dict, names: list[str], t0: float, explore: bool) -> int:
    """The head on the frozen encoder's pooled embeddings; writes the head and the metrics file."""
    texts, positions = texts_by_split(split, by_row, names)
    emb_all = embed_all(texts)
    x = {name: emb_all[positions[name]] for name in names}
    y = labels_by_split(split, by_row, names)
    exploration = explore_heads(x, y) if explore else []

    cfg = DEFAULT_CONFIG
    x_tr, x_va, x_te = (features(x[name], cfg["pool_layers"]) for name in ("train", "validation", "test"))
    head, info = train_head(x_tr, y["train"], x_va, y["validation"], cfg)
    probs = predict(head, x_te)
    test = metrics(y["test"], probs.argmax(1))
    test["binary_accuracy_pos_vs_neg"] = binary_accuracy(y["test"], probs)
    val = metrics(y["validation"], predict(head, x_va).argmax(1))
    log(f"\nhead: layers {cfg['pool_layers']} mean-pooled, hidden {cfg['hidden']}; best epoch {info['best_epoch']}")
    log_test_report(test, val, len(y["test"]))

    save_head(head, HEAD_PATH, cfg["pool_layers"], {"seed": SEED})
    if not exploration and METRICS_PATH.is_file():  # keep the last --explore run's numbers in the report
        exploration = json.loads(METRICS_PATH.read_text()).get("exploration", [])
    write_metrics_report(split, by_row, names, y, test, probs, val,
                         {**cfg, "parameters": sum(p.numel() for p in head.parameters()), "best_epoch": info["best_epoch"]},
                         encoder="all-MiniLM-L6-v2 (frozen), " + MINILM.sources[0].pip_spec,
                         command="python -m export.train_sentiment" + (" --explore" if explore else ""), t0=t0,
                         extra={"exploration": exploration})
    return 0


# ---------------------------------------------------------------- --finetune

@dataclass
class Candidate:
    """One trained model with its calibrated logit offset, as recorded in the experiments file."""
    record: dict
    bias: np.ndarray
    head: SentimentHead
    encoder: object  # the transformers BertModel whose layers it was trained with
    tuned: bool


def frozen_candidates(cfg: dict, x: dict, y: dict, tokenizer, encoder_dir,
                      checkset_floor: float | None = None) -> tuple[list[Candidate], SentimentHead]:
    """1. the frozen encoder with the class-weighted MLP head (what was served before fine-tuning);
    checkset_floor: see report.calibrated_records."""
    base_cfg = {**DEFAULT_CONFIG, "pool_layers": cfg["pool_layers"]}
    head, info = train_head(x["train"], y["train"], x["validation"], y["validation"], base_cfg)
    encoder = load_encoder(encoder_dir)
    records = calibrated_records(
        "frozen encoder, class-weighted head", "the model served before this change",
        head_logits(head, x["validation"]), y["validation"], head_logits(head, x["test"]), y["test"],
        lambda b: scorer(SentimentClassifier(PooledEncoder(encoder, cfg["pool_layers"]), with_logit_offset(head, b)).eval(),
                         tokenizer), base_cfg, {"train": info}, checkset_floor)
    return [Candidate(r, b, head, encoder, False) for r, b in records], head


def frozen_layers(frozen: int) -> str:
    """What stays frozen below the fine-tuned layers, for the records: the embeddings always (their outputs are
    cached), and the first `frozen` transformer layers."""
    if frozen == 0:
        return "the embeddings"
    return "the embeddings and layer 0" if frozen == 1 else f"the embeddings and layers 0-{frozen - 1}"


def tuned_candidates(cfg: dict, base_head: SentimentHead, states, lengths, pooled, positions: dict, y: dict,
                     tokenizer, encoder_dir, confidence: np.ndarray | None = None,
                     teacher: Teacher | None = None, checkset_floor: float | None = None) -> tuple[list[Candidate], dict]:
    """2. the top layers + head fine-tuned together, starting from the frozen run's head (or a fresh one);
    `teacher`: the teacher's logits for the training rows, when cfg['distill'] is set; checkset_floor: see
    report.calibrated_records."""
    frozen = cfg["frozen"]
    encoder = load_encoder(encoder_dir)
    top = TopLayers(encoder, frozen)  # shares its modules with `encoder`, which is trained in place
    torch.manual_seed(cfg.get("seed", SEED))
    head = SentimentHead(base_head.in_dim, base_head.hidden, dropout=cfg["dropout"])
    if cfg["warm_head"]:
        head.load_state_dict(base_head.state_dict())
    else:  # a fresh head on the frozen run's feature standardization (see FINETUNE_CONFIG for why)
        head.feature_mean.copy_(base_head.feature_mean)
        head.feature_scale.copy_(base_head.feature_scale)
    cached = CachedStates(states, lengths)
    n_layers = encoder.config.num_hidden_layers
    log(f"fine-tuning encoder layers {list(range(frozen, n_layers))} + head: {cfg}")
    train_idx = training_rows(positions)
    soft_only = np.arange(len(train_idx)) >= len(positions["train"])  # the variants, after the training texts
    if confidence is not None:  # a variant has no annotators' confidence: it counts 1, as such rows do
        confidence = np.concatenate([confidence, np.full(int(soft_only.sum()), np.nan)])
    info = finetune(top, head, cached, pooled, train_idx, np.concatenate([y["train"], y.get("augmented", [])]).astype(int),
                    positions["validation"], y["validation"], cfg, confidence=confidence,
                    teacher=None if teacher is None else teacher.logits, soft_only=soft_only)
    if teacher is not None:
        info["teacher"] = teacher.description
    round_to_stored(top)
    val_logits, test_logits = (predict_finetuned(top, head, cached, pooled, positions[name], cfg["pool_layers"], frozen)
                               for name in ("validation", "test"))
    name = recipe_name(cfg, n_layers, info, None if teacher is None else teacher.label)
    records = calibrated_records(
        name, f"{frozen_layers(frozen)} frozen (cached outputs)", val_logits, y["validation"], test_logits, y["test"],
        lambda b: scorer(SentimentClassifier(PooledEncoder(encoder, cfg["pool_layers"]), with_logit_offset(head, b)).eval(),
                         tokenizer), cfg, {"train": info}, checkset_floor)
    return [Candidate(r, b, head, encoder, True) for r, b in records], {**info, "val_logits": val_logits}


def recipe_name(cfg: dict, n_layers: int, info: dict, teacher_label: str | None = None) -> str:
    """A fine-tuned model's record name: what was tuned and every setting that differs from the plain recipe."""
    recipe = [f"lr {cfg['lr_encoder']:g} / {cfg['lr_head']:g}", f"{cfg['epochs']} epoch"]
    if cfg.get("confidence_weighted"):
        recipe.append("confidence-weighted loss")
    if cfg.get("distill"):
        recipe.append(f"distilled from {teacher_label}, weight {cfg['distill']:g}, T {cfg['distill_temperature']:g}")
    if cfg.get("augment"):
        recipe.append(f"{cfg['augment']:g} teacher-labelled variant(s) per training text")
    if cfg.get("ema"):
        recipe.append(f"weight EMA {cfg['ema']:g}, kept: {info['best_weights']} weights")
    if cfg.get("seed", SEED) != SEED:
        recipe.append(f"seed {cfg['seed']}")
    return (f"top {n_layers - cfg['frozen']} encoder layers fine-tuned + "
            f"{'warm-started' if cfg['warm_head'] else 'fresh'} head ({', '.join(recipe)})")


def training_rows(positions: dict) -> np.ndarray:
    """The positions a fine-tuning run learns from: the training texts, then their variants (add_variants)."""
    return np.concatenate([positions["train"], positions.get("augmented", np.arange(0))])


def add_variants(cfg: dict, texts: list[str], positions: dict, y: dict) -> None:
    """With cfg['augment']: the training texts' noisy variants (data.augment) appended to `texts`, their
    positions as positions['augmented'] and their sources' labels as y['augmented'] (for the class weights
    only: a variant learns the teacher's distribution alone, finetune.example_losses)."""
    if not cfg.get("augment"):
        return
    if not cfg.get("distill"):
        raise ValueError("augment needs distill > 0: the variants are labelled by the teacher")
    train = positions["train"]
    pairs = augment([texts[i] for i in train], int(cfg["augment"]), cfg.get("seed", SEED))
    positions["augmented"] = np.arange(len(texts), len(texts) + len(pairs))
    texts += [variant for _, variant in pairs]
    y["augmented"] = y["train"][[source for source, _ in pairs]]
    log(f"augment: {len(pairs):,} variants of {len(train):,} training texts")


@dataclass
class Teacher:
    """The distribution a distilled run learns from: logits for the training rows, what it is (recorded with
    the run) and a short label for the record's name."""
    logits: np.ndarray
    description: str
    label: str


def load_teacher(texts: list[str], head_paths: list[Path] | None) -> Teacher:
    """The stored classifiers at head_paths (default: the served one) on the training texts, combined by
    encode.ensemble_logits (a --train-teacher member among them is read from the logits stored beside it).
    Read before serve() overwrites the files the default comes from."""
    paths = list(head_paths or [HEAD_PATH])
    logits = ensemble_logits(texts, paths)
    if [Path(p).resolve() for p in paths] == [HEAD_PATH.resolve()]:
        return Teacher(logits, served_description(), "the served model")
    label = f"an ensemble of {len(paths)} stored models" if len(paths) > 1 else "a stored model"
    return Teacher(logits, f"{label}: " + "; ".join(stored_description(path) for path in paths), label)


def serving_key(record: dict, checkset_floor: float = 0.0) -> tuple[bool, float]:
    """The serving rule: the floors met first (validation positive precision >= POSITIVE_PRECISION_FLOOR, and
    the check set's 3-way accuracy >= checkset_floor: the served model's, so everyday sentences never get
    worse), then validation macro-F1; the test split is only reported."""
    floors = (record["validation"]["positive_precision"] >= POSITIVE_PRECISION_FLOOR
              and record["checkset"]["accuracy_3way"] >= checkset_floor)
    return floors, record["validation"]["macro_f1"]


# A new model replaces the served one only if ahead on validation macro-F1 by more than this (the precision floor
# met by both, or by the new one alone): three seeds of one recipe spread 0.011 on test and 0.012 on validation
# (eval/results/sentiment_experiments.json), so a smaller lead on 3,446 tweets is noise. The margin earlier runs
# were judged by by hand (2026-12-04: a lead of 0.0011 was "within the noise"), now in code.
SERVING_MARGIN = 0.002


def replaces_served(record: dict, served: dict) -> bool:
    """Whether a candidate's record should replace the served model's (both scored on the same split); the
    check-set floor is the served model's own score there."""
    floor, f1 = serving_key(record, served_checkset_floor(served))
    served_floor, served_f1 = serving_key(served, served_checkset_floor(served))
    return floor > served_floor or (floor == served_floor and f1 > served_f1 + SERVING_MARGIN)


def served_checkset_floor(served: dict | None) -> float:
    """The check set's 3-way accuracy a new model must reach: the served model's (0 when none is recorded)."""
    return 0.0 if served is None else served["checkset"]["accuracy_3way"]


def best_on_validation(candidates: list[Candidate], floor: float = 0.0) -> Candidate:
    return max(candidates, key=lambda c: serving_key(c.record, floor))


def split_digest(split: dict) -> str:
    return hashlib.sha256(json.dumps(split["splits"], sort_keys=True).encode()).hexdigest()[:16]


def served_record(split: dict) -> dict | None:
    """The experiments file's record of the model served now, if it was scored on this split (None before any
    --finetune run served one, or after --resplit)."""
    old = json.loads(EXPERIMENTS_PATH.read_text()) if EXPERIMENTS_PATH.is_file() else {}
    if old.get("split_digest", split_digest(split)) != split_digest(split):
        return None
    return next((r for r in old.get("experiments", []) if r["name"] == old.get("served")), None)


def run_finetune(split: dict, by_row: dict, names: list[str], t0: float, overrides: dict | None = None,
                 keep: Path | None = None, teachers: list[Path] | None = None) -> int:
    """Baseline (frozen encoder) and fine-tuned models, each with and without calibrated offsets; records
    all in EXPERIMENTS_PATH and serves the best on validation (positive precision floor first). With `keep`,
    nothing is served: the best fine-tuned candidate is written to that folder (an ensemble member)."""
    from transformers import AutoTokenizer

    cfg = {**FINETUNE_CONFIG, **(overrides or {})}
    texts, positions = texts_by_split(split, by_row, names)
    y = labels_by_split(split, by_row, names)
    add_variants(cfg, texts, positions, y)
    states, lengths, pooled = token_states(texts, cfg["frozen"])
    encoder_dir = default_encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir))
    x = {name: features(pooled[positions[name]], cfg["pool_layers"]) for name in names}
    current = None if keep is not None else served_record(split)
    floor = served_checkset_floor(current)  # 0 (no fourth record, no floor) with nothing served
    frozen, base_head = frozen_candidates(cfg, x, y, tokenizer, encoder_dir, floor)
    teacher = None
    if cfg.get("distill"):
        teacher = load_teacher([texts[i] for i in training_rows(positions)], teachers)
        log(f"teacher: {teacher.description}, on {len(teacher.logits):,} training texts and variants")
    tuned, info = tuned_candidates(cfg, base_head, states, lengths, pooled, positions, y, tokenizer, encoder_dir,
                                   split_confidence(split, by_row, "train"), teacher, floor)
    candidates = frozen + tuned
    if keep is not None:
        member = best_on_validation(tuned)
        head_path = save_model(member, cfg, Path(keep) / HEAD_PATH.name)
        record_experiments([c.record for c in candidates], {})
        log(f"kept, not served: {member.record['name']} -> {head_path}")
        return 0
    # 3. serve the record best on validation, fine-tuned or not, unless it does not beat the model served now
    # (replaces_served; a run of a weaker recipe or seed must not replace it; its records are kept all the same)
    chosen = best_on_validation(candidates, floor)
    if current is not None and not replaces_served(chosen.record, current):
        record_experiments([c.record for c in candidates], {})
        log(f"not served: {chosen.record['name']} (validation {serving_key(chosen.record, floor)}); the served "
            f"{current['name']} is not beaten by more than {SERVING_MARGIN} macro-F1 ({serving_key(current, floor)})")
        return 0
    val_logits = info["val_logits"] if chosen.tuned else head_logits(base_head, x["validation"])
    command = finetune_command(cfg, teachers)
    test = serve(chosen, cfg, split, by_row, names, y, tokenizer, val_logits, info, t0, command)
    record_experiments([c.record for c in candidates], {**experiments_header(chosen, test, command),
                                                        "split_digest": split_digest(split)})
    return 0


def run_ensemble(split: dict, by_row: dict, head_paths: list[Path]) -> int:
    """--ensemble: the stored classifiers combined (encode.ensemble_logits; MiniLM models and --train-teacher
    models alike), scored on validation and test like a trained model (as is, and with offsets calibrated on
    validation) and recorded; nothing is served, since each member costs one more encoder pass per sentence."""
    names = ["validation", "test"]
    texts, positions = texts_by_split(split, by_row, names)
    y = labels_by_split(split, by_row, names)
    logits = ensemble_logits(texts, head_paths)
    members = [stored_description(path) for path in head_paths]
    records = calibrated_records(
        f"ensemble of {len(head_paths)} ({' | '.join(members)})",
        f"mean offset-free log-probabilities of {len(head_paths)} stored models; not served: one encoder pass per "
        "member per sentence", logits[positions["validation"]], y["validation"], logits[positions["test"]], y["test"],
        lambda b: ensemble_scorer(head_paths, b), {"members": members})
    record_experiments([r for r, _ in records], {})
    return 0


def stored_description(head_path: Path) -> str:
    """The experiment a stored classifier came from (save_model writes it into the head's metadata; the served
    head of an older run is named by its metrics report)."""
    named = head_metadata(head_path).get("experiment")
    if named:
        return named
    return served_description() if Path(head_path).resolve() == HEAD_PATH.resolve() else Path(head_path).name


def served_description() -> str:
    """What the stored classifier is, as its metrics report names it (the teacher of a distilled run)."""
    report = json.loads(METRICS_PATH.read_text()) if METRICS_PATH.is_file() else {}
    return f"{report.get('served_experiment', report.get('encoder', 'the stored classifier'))} ({report.get('date', 'undated')})"


def save_model(chosen: Candidate, cfg: dict, head_path: Path, encoder_name: str | None = None) -> Path:
    """The chosen model's files: its head with the calibrated offset in the last bias, and the fine-tuned layers
    (if any) beside it, named in the head's metadata; a stale layer file of a frozen model is removed.
    encoder_name: set for an encoder other than the packaged MiniLM (a teacher), written to the metadata."""
    frozen, n_layers = cfg["frozen"], chosen.encoder.config.num_hidden_layers
    top_path = head_path.with_name(ENCODER_TOP_PATH.name)
    meta = {"seed": cfg.get("seed", SEED), "logit_offset": json.dumps(chosen.record["logit_offset"]),
            "experiment": chosen.record["name"], **({"encoder": encoder_name} if encoder_name else {})}
    if chosen.tuned:
        layers = list(range(frozen, n_layers))
        head_path.parent.mkdir(parents=True, exist_ok=True)
        save_encoder_layers(chosen.encoder, layers, top_path)
        meta.update({"finetuned_layers": json.dumps(layers), "encoder_file": top_path.name})
    elif top_path.is_file():
        top_path.unlink()  # a frozen encoder is served: no stale layer file in the build key
    save_head(with_logit_offset(chosen.head, chosen.bias), head_path, cfg["pool_layers"], meta)
    return head_path


def finetune_command(cfg: dict, teachers: list[Path] | None = None) -> str:
    """The command line that reproduces a --finetune run: its settings that differ from FINETUNE_CONFIG as flags."""
    parts = ["python -m export.train_sentiment --finetune"]
    for key, value in cfg.items():
        if key in FINETUNE_CONFIG and value != FINETUNE_CONFIG[key]:
            flag = "--" + key.replace("_", "-")
            if isinstance(value, bool):
                parts.append(flag if value else f"--no-{flag[2:]}")
            else:
                parts.append(f"{flag} {value:g}" if isinstance(value, (int, float)) else f"{flag} {value}")
    parts += [f"--teacher {path}" for path in teachers or []]
    return " ".join(parts)


def experiments_header(chosen: Candidate, test: dict, command: str) -> dict:
    return {
        "date": dt.date.today().isoformat(), "command": command,
        "split": str(SPLIT_PATH.relative_to(REPO_ROOT)), "seed": SEED,
        "selection": (f"served: the record with validation positive precision >= {POSITIVE_PRECISION_FLOOR} and "
                      "a check-set 3-way accuracy at least the served model's, and the best validation macro-F1 (else "
                      "the best validation macro-F1), replacing the served model only when ahead of it on validation "
                      f"by more than {SERVING_MARGIN} macro-F1; offsets are chosen on validation (held to the check-set "
                      "floor in the record that says so), the test split is only reported"),
        "served": chosen.record["name"],
        "served_full_pipeline_test": {k: test[k] for k in ("accuracy", "macro_f1", "per_class")},
        "notes": ["Earlier recipes are described in export/train_sentiment/finetune.py (FINETUNE_CONFIG); this "
                  "file records one run: the frozen baseline and the configured fine-tuning, each with and "
                  "without calibrated offsets."],
    }


def serve(chosen: Candidate, cfg: dict, split: dict, by_row: dict, names: list[str], y: dict, tokenizer,
          val_logits: np.ndarray, info: dict, t0: float, command: str) -> dict:
    """Write the chosen model's files (head, and the fine-tuned layers if any) and its metrics report; returns
    the served pipeline's test scores."""
    frozen, n_layers = cfg["frozen"], chosen.encoder.config.num_hidden_layers
    save_model(chosen, cfg, HEAD_PATH)
    served_head, _ = load_head(HEAD_PATH)
    served = SentimentClassifier(PooledEncoder(chosen.encoder, cfg["pool_layers"]), served_head).eval()
    probs = torch_probs(served, tokenizer, [by_row[i]["text"] for i in split["splits"]["test"]])
    test = metrics(y["test"], probs.argmax(1))
    test["binary_accuracy_pos_vs_neg"] = binary_accuracy(y["test"], probs)
    encoder = (f"all-MiniLM-L6-v2, {frozen_layers(frozen)} frozen, layers {frozen}-{n_layers - 1} fine-tuned here, "
               f"{MINILM.sources[0].pip_spec}" if chosen.tuned else "all-MiniLM-L6-v2 (frozen), " + MINILM.sources[0].pip_spec)
    write_metrics_report(split, by_row, names, y, test, probs, metrics(y["validation"], (val_logits + chosen.bias).argmax(1)),
                         {**{k: cfg[k] for k in ("pool_layers", "hidden", "dropout")},
                          "parameters": sum(p.numel() for p in served_head.parameters()), "best_step": info["best_step"]},
                         encoder=encoder, command=command, t0=t0,
                         extra={"served_finetuned": chosen.tuned,
                                "finetune_run": {**cfg, **{k: info[k] for k in ("best_step", "best_weights", "steps", "seconds", "teacher") if k in info}},
                                "logit_offset": chosen.record["logit_offset"], "served_experiment": chosen.record["name"],
                                "checkset": chosen.record["checkset"]})
    log(f"served: {chosen.record['name']}; wrote {HEAD_PATH.name}, {METRICS_PATH.name}, "
        f"{EXPERIMENTS_PATH.relative_to(REPO_ROOT)}" + (f", {ENCODER_TOP_PATH.name} "
                                                         f"({ENCODER_TOP_PATH.stat().st_size / 1e6:.1f} MB)" if chosen.tuned else ""))
    return test
