"""The encoder passes over the corpus, one batching loop for all of them: pooled embeddings for the head,
per-token states of the frozen layers for fine-tuning, and the full PyTorch classifier's probabilities."""
from __future__ import annotations

import hashlib
import json
import time

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
)
from export.train_sentiment import log
from models.paths import cache_root
from models.registry import MINILM
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


def token_states(texts: list[str], frozen: int, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(states [sum of lengths, 384] float16 = hidden_states[frozen] of every real token, concatenated;
    lengths [n]; pooled [n, 7, 384] float16 mean-pooled hidden states of all layers), cached by content hash."""
    from transformers import AutoTokenizer

    digest = hashlib.sha256(json.dumps([MINILM.sources[0].sha256, MAX_TOKENS, frozen, texts]).encode()).hexdigest()[:16]
    cache = cache_root() / "sentiment-train" / f"tokens-{digest}.npz"
    if cache.is_file():
        log(f"token states: cached ({cache})")
        data = np.load(cache)
        return data["states"], data["lengths"], data["pooled"]
    encoder_dir = default_encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir))
    encoder = load_encoder(encoder_dir)
    per_text: list[np.ndarray | None] = [None] * len(texts)
    pooled = np.zeros((len(texts), len(ALL_LAYERS), encoder.config.hidden_size), dtype=np.float16)
    start = time.perf_counter()
    with torch.inference_mode():
        for idx, enc in encoded_batches(texts, tokenizer, batch_size, "encoded"):
            mask = enc["attention_mask"]
            hs = encoder(input_ids=enc["input_ids"], attention_mask=mask,
                         token_type_ids=torch.zeros_like(mask), output_hidden_states=True).hidden_states
            pooled[idx] = torch.stack([masked_mean(h, mask) for h in hs], 1).numpy().astype(np.float16)
            for row, i in enumerate(idx):
                per_text[i] = hs[frozen][row, :int(mask[row].sum())].numpy().astype(np.float16)
    lengths = np.array([len(s) for s in per_text])
    states = np.concatenate(per_text)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, states=states, lengths=lengths, pooled=pooled)
    log(f"token states: {len(texts):,} texts, {len(states):,} tokens in {time.perf_counter() - start:.0f} s -> {cache}")
    return states, lengths, pooled


def torch_probs(classifier: nn.Module, tokenizer, texts: list[str], batch: int = 64) -> np.ndarray:
    """The full fp32 PyTorch classifier on raw texts (as served: normalized, tokenized, length-sorted batches)."""
    out = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
    with torch.inference_mode():
        for idx, enc in encoded_batches(texts, tokenizer, batch):
            out[idx] = classifier(enc["input_ids"], enc["attention_mask"]).numpy()
    return out


def stored_offset(head_path) -> np.ndarray:
    """The calibrated logit offset a stored classifier's head carries (zeros if none)."""
    return np.array(json.loads(head_metadata(head_path).get("logit_offset", "[0, 0, 0]")), dtype=np.float32)


class EnsembleClassifier(nn.Module):
    """Classifiers combined: the mean of their log-probabilities less each one's calibrated offset (the
    distributions the models learned, not their served decision rules), plus `bias`, as softmax
    probabilities. One member is that model's offset-free distribution."""

    def __init__(self, members: list[nn.Module], offsets: np.ndarray, bias=None):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one classifier")
        self.members = nn.ModuleList(members)  # shared with other ensembles of the same members, not copied
        self.register_buffer("offsets", torch.as_tensor(np.asarray(offsets), dtype=torch.float32))
        self.register_buffer("bias", torch.as_tensor(np.zeros(len(LABELS)) if bias is None else np.asarray(bias),
                                                     dtype=torch.float32))

    @classmethod
    def load(cls, head_paths, bias=None) -> "EnsembleClassifier":
        """The classifiers stored at head_paths, each with its fine-tuned layers and offset."""
        encoder_dir = default_encoder_dir()
        members = [build_torch_classifier(encoder_dir, path) for path in head_paths]
        return cls(members, np.stack([stored_offset(path) for path in head_paths]) if members else [], bias).eval()

    def with_bias(self, bias) -> "EnsembleClassifier":
        return EnsembleClassifier(list(self.members), self.offsets, bias).eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logp = torch.stack([torch.log(m(input_ids, attention_mask).clamp_min(1e-30)) for m in self.members])
        return torch.softmax((logp - self.offsets[:, None, :]).mean(0) + self.bias, dim=-1)


def ensemble_logits(texts: list[str], ensemble: EnsembleClassifier, tokenizer=None) -> np.ndarray:
    """The ensemble on raw texts as log-probabilities: the teacher of a distilled run (one member: that model
    alone) and the scores of an --ensemble record. The student gets its own offsets."""
    from transformers import AutoTokenizer

    tokenizer = tokenizer or AutoTokenizer.from_pretrained(str(default_encoder_dir()))
    return np.log(np.clip(torch_probs(ensemble, tokenizer, texts), 1e-30, None))
