"""The encoder passes over the corpus, one batching loop for all of them: pooled embeddings for the head,
per-token states of the frozen layers for fine-tuning, and the full PyTorch classifier's probabilities."""
from __future__ import annotations

import functools
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from export.sentiment import (
    PooledEncoder,
    build_torch_classifier,
    default_encoder_dir,
    head_metadata,
    load_encoder,
    masked_mean,
    segment_ids,
)
from export.train_sentiment import log
from models import sources
from models.paths import cache_root
from models.registry import MINILM, MPNET_TEACHER_NAME
from models.sentiment import LABELS, MAX_TOKENS, normalize_text

ALL_LAYERS = list(range(7))  # hidden_states[0] = embeddings, [1..6] = the six transformer layers


def encoded_batches(texts: list[str], tokenizer, batch_size: int, progress: str | None = None):
    """Yield (indices into texts, encoding) for batches of texts tokenized as the classifier serves them
    (normalized, truncated to MAX_TOKENS); shortest first, so a batch pads little. With `progress`, logs
    "<progress> done/total (texts/s)" every 100 batches."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    start = time.perf_counter()
    for number, b in enumerate(range(0, len(order), batch_size)):
        idx = order[b:b + batch_size]
        yield idx, tokenizer([normalize_text(texts[i]) for i in idx], padding=True, truncation=True,
                             max_length=MAX_TOKENS, return_tensors="pt")
        if progress and number % 100 == 0:
            done = b + len(idx)
            log(f"  {progress} {done:,}/{len(texts):,} ({done / (time.perf_counter() - start):.0f} texts/s)")


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
    out = np.zeros((len(texts), len(ALL_LAYERS), pooled.encoder.config.hidden_size), dtype=np.float16)
    start = time.perf_counter()
    with torch.inference_mode():
        for idx, enc in encoded_batches(texts, tokenizer, batch_size, "embedded"):
            feats = pooled(enc["input_ids"], enc["attention_mask"])
            out[idx] = feats.view(len(idx), len(ALL_LAYERS), -1).numpy().astype(np.float16)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, out)
    log(f"embeddings: {len(texts):,} texts in {time.perf_counter() - start:.0f} s -> {cache}")
    return out


@dataclass(frozen=True)
class EncoderFiles:
    """An encoder whose states the trainer caches: the sha256 of its weights (part of the cache key) and how
    to find its verified folder (called only on a cache miss). lower_only: the caching pass runs only the
    frozen layers (a teacher's 8 of 12, the costliest step of its run), so `pooled` holds layers 0..frozen."""
    sha256: str
    locate: Callable[[], Path]
    lower_only: bool = False


MINILM_FILES = EncoderFiles(MINILM.sources[0].sha256, lambda: default_encoder_dir())  # looked up when called


def token_states(texts: list[str], frozen: int, batch_size: int = 64,
                 source: EncoderFiles = MINILM_FILES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(states [sum of lengths, hidden] float16 = hidden_states[frozen] of every real token, concatenated;
    lengths [n]; pooled [n, layers + 1, hidden] float16 mean-pooled hidden states of all layers, or of
    0..frozen with source.lower_only), cached by content hash."""
    from transformers import AutoTokenizer

    key = [source.sha256, MAX_TOKENS, frozen, texts] + (["lower-only"] if source.lower_only else [])
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]
    cache = cache_root() / "sentiment-train" / f"tokens-{digest}.npz"
    if cache.is_file():
        log(f"token states: cached ({cache})")
        data = np.load(cache)
        return data["states"], data["lengths"], data["pooled"]
    encoder_dir = source.locate()
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir))
    encoder = load_encoder(encoder_dir)
    if source.lower_only:
        encoder.encoder.layer = encoder.encoder.layer[:frozen]
    n_states = len(encoder.encoder.layer) + 1
    per_text: list[np.ndarray | None] = [None] * len(texts)
    pooled = np.zeros((len(texts), n_states, encoder.config.hidden_size), dtype=np.float16)
    start = time.perf_counter()
    with torch.inference_mode():
        for idx, enc in encoded_batches(texts, tokenizer, batch_size, "encoded"):
            mask = enc["attention_mask"]
            hs = encoder(input_ids=enc["input_ids"], attention_mask=mask, output_hidden_states=True,
                         **segment_ids(encoder, enc["input_ids"])).hidden_states
            pooled[idx] = torch.stack([masked_mean(h, mask) for h in hs], 1).numpy().astype(np.float16)
            for row, i in enumerate(idx):
                per_text[i] = hs[frozen][row, :int(mask[row].sum())].numpy().astype(np.float16)
    lengths = np.array([len(s) for s in per_text])
    states = np.concatenate(per_text)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, states=states, lengths=lengths, pooled=pooled)
    log(f"token states: {len(texts):,} texts, {len(states):,} tokens in {time.perf_counter() - start:.0f} s -> {cache}")
    return states, lengths, pooled


LOGITS_FILE = "teacher_logits.npz"  # a teacher's logits for every split text, beside its head


def text_keys(texts: list[str]) -> np.ndarray:
    """A fixed-width key per text, for looking the stored teacher logits up by text."""
    return np.array([hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts], dtype="S40")


def save_logits(path: Path, texts: list[str], logits: np.ndarray) -> None:
    np.savez(path, keys=text_keys(texts), logits=logits.astype(np.float32))


def stored_logits(head_path: Path) -> dict[bytes, np.ndarray]:
    """The logits stored beside head_path, by text key (empty if there is no store)."""
    path = Path(head_path).with_name(LOGITS_FILE)
    if not path.is_file():
        return {}
    data = np.load(path)
    return dict(zip(data["keys"].tolist(), data["logits"]))


def torch_probs(classifier: nn.Module, tokenizer, texts: list[str], batch: int = 64,
                progress: str | None = None) -> np.ndarray:
    """The full fp32 PyTorch classifier on raw texts (as served: normalized, tokenized, length-sorted batches)."""
    out = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
    with torch.inference_mode():
        for idx, enc in encoded_batches(texts, tokenizer, batch, progress):
            out[idx] = classifier(enc["input_ids"], enc["attention_mask"]).numpy()
    return out


def stored_offset(head_path) -> np.ndarray:
    """The calibrated logit offset a stored classifier's head carries (zeros if none)."""
    return np.array(json.loads(head_metadata(head_path).get("logit_offset", "[0, 0, 0]")), dtype=np.float32)


def stored_encoder_dir(head_path: Path) -> Path:
    """The encoder folder a stored classifier was trained on: the packaged MiniLM, or the teacher its head's
    metadata names (export.train_sentiment.teacher)."""
    name = head_metadata(head_path).get("encoder")
    if not name:
        return default_encoder_dir()
    if name != MPNET_TEACHER_NAME:
        raise ValueError(f"{head_path} was trained on encoder {name!r}; known: MiniLM, {MPNET_TEACHER_NAME}")
    return sources.teacher_encoder_dir()


@functools.lru_cache(maxsize=8)
def _stored_classifier(head_path: Path, stamp: tuple[int, int]) -> tuple[nn.Module, object]:
    """A stored classifier and its tokenizer, loaded once per version of its head file (`stamp`: size and
    mtime), since an --ensemble run scores each member on the split and then on the check set per record."""
    from transformers import AutoTokenizer

    encoder_dir = stored_encoder_dir(head_path)
    return build_torch_classifier(encoder_dir, head_path), AutoTokenizer.from_pretrained(str(encoder_dir))


def member_logits(texts: list[str], head_path: Path) -> np.ndarray:
    """One stored classifier's offset-free log-probabilities on raw texts (the distribution it learned, not its
    served decision rule): read from the logits a --train-teacher run stored beside its head where they cover
    the texts; the others computed with its own encoder and tokenizer, and added to that store if there is one
    (a distilled run's augmented texts cost the teacher's encoder pass once)."""
    known = stored_logits(head_path)
    keys = text_keys(texts).tolist()
    missing = [i for i, k in enumerate(keys) if k not in known]
    if missing:
        stat = Path(head_path).stat()
        classifier, tokenizer = _stored_classifier(Path(head_path).resolve(), (stat.st_size, stat.st_mtime_ns))
        log(f"{Path(head_path).parent.name}: scoring {len(missing):,} texts on its encoder")
        probs = torch_probs(classifier, tokenizer, [texts[i] for i in missing], progress="scored")
        computed = log_softmax(np.log(np.clip(probs, 1e-30, None)) - stored_offset(head_path))
        if known:
            known.update(zip([keys[i] for i in missing], computed))
            store_keys = list(known)
            np.savez(Path(head_path).with_name(LOGITS_FILE), keys=np.array(store_keys, dtype="S40"),
                     logits=np.stack([known[k] for k in store_keys]).astype(np.float32))
        else:
            known = dict(zip([keys[i] for i in missing], computed))
    return np.stack([known[k] for k in keys]).astype(np.float32)


def ensemble_logits(texts: list[str], head_paths: list[Path]) -> np.ndarray:
    """Stored classifiers combined, as log-probabilities: the renormalized mean of their offset-free
    log-probabilities. The teacher of a distilled run (one member: that model alone) and the scores of an
    --ensemble record; each member runs on its own encoder, so an ensemble may mix MiniLM and the teacher."""
    if not head_paths:
        raise ValueError("an ensemble needs at least one classifier")
    return log_softmax(np.mean([member_logits(texts, path) for path in head_paths], 0))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    return torch.log_softmax(torch.from_numpy(np.asarray(logits, dtype=np.float32)), -1).numpy()


def scorer(classifier: nn.Module, tokenizer):
    """One classifier as a function of raw texts -> probabilities (the check set's view of a model)."""
    return lambda texts: torch_probs(classifier, tokenizer, texts)


def ensemble_scorer(head_paths: list[Path], bias) -> Callable[[list[str]], np.ndarray]:
    """Stored classifiers combined (ensemble_logits) plus an offset, as a function of raw texts -> probabilities."""
    return lambda texts: np.exp(log_softmax(ensemble_logits(texts, head_paths) + np.asarray(bias, dtype=np.float32)))
