"""Turning next-token logits into a token: greedy, temperature, top-k, top-p, repetition penalty, seeded.

Semantics follow transformers' logits processors (so settings mean what users know from HF), applied in
the same order: repetition penalty -> temperature -> top-k -> top-p.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MAX_NEW_TOKENS_LIMIT = 1024


@dataclass(frozen=True)
class SamplingSettings:
    max_new_tokens: int = 256
    temperature: float = 0.7  # 0 means greedy
    top_k: int = 50  # 0 disables
    top_p: float = 0.95  # 1 disables
    repetition_penalty: float = 1.1  # 1 disables
    seed: int | None = None  # same seed + settings + prompt -> same text
    stop_strings: tuple[str, ...] = field(default=())
    ignore_eos: bool = False  # benchmarks: always decode max_new_tokens, so runs are comparable

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def validate(self) -> "SamplingSettings":
        """Raise ValueError with a message a visitor understands; return self for chaining."""
        def finite(name, value):
            if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")

        for name in ("temperature", "top_p", "repetition_penalty"):
            finite(name, getattr(self, name))
        for name in ("max_new_tokens", "top_k"):
            finite(name, getattr(self, name))
            if int(getattr(self, name)) != getattr(self, name):
                raise ValueError(f"{name} must be a whole number, got {getattr(self, name)!r}")
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise ValueError(f"max_new_tokens must be between 1 and {MAX_NEW_TOKENS_LIMIT}, got {self.max_new_tokens}")
        if not 0 <= self.temperature <= 5:
            raise ValueError(f"temperature must be between 0 (greedy) and 5, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be 0 (off) or positive, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 1 <= self.repetition_penalty <= 3:
            raise ValueError(f"repetition_penalty must be between 1 (off) and 3, got {self.repetition_penalty}")
        if self.seed is not None:
            finite("seed", self.seed)
            if int(self.seed) != self.seed or not 0 <= self.seed < 2**32:
                raise ValueError(f"seed must be a whole number from 0 to 4294967295, got {self.seed!r}")
        if len(self.stop_strings) > 8 or any(not s or len(s) > 64 for s in self.stop_strings):
            raise ValueError("stop strings: at most 8, each 1 to 64 characters")
        return self


def apply_repetition_penalty(logits: np.ndarray, seen_ids: np.ndarray, penalty: float) -> np.ndarray:
    """CTRL-style penalty on every token already in prompt or output (as transformers does)."""
    if penalty == 1 or seen_ids.size == 0:
        return logits
    logits = logits.copy()
    ids = np.unique(seen_ids)
    scores = logits[ids]
    logits[ids] = np.where(scores < 0, scores * penalty, scores / penalty)
    return logits


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max()
    exp = np.exp(shifted, dtype=np.float64)
    return exp / exp.sum()


def sampling_candidates(logits: np.ndarray, settings: SamplingSettings) -> tuple[np.ndarray, np.ndarray]:
    """(token ids, probabilities) that can be sampled after temperature, top-k and top-p, most likely first.

    Works on the top-k candidates only: the engine samples up to 16 sequences per step on the host, and a
    full-vocabulary sort per row (~3 ms for 49k tokens) would cost more than the model step itself."""
    scaled = logits.astype(np.float64) / settings.temperature
    if settings.top_k and settings.top_k < scaled.size:
        ids = np.argpartition(-scaled, settings.top_k - 1)[: settings.top_k]
    else:
        ids = np.arange(scaled.size)
    ids = ids[np.argsort(-scaled[ids], kind="stable")]
    probs = softmax(scaled[ids])
    if settings.top_p < 1:
        # keep the smallest prefix whose mass reaches top_p (always at least one token)
        keep = np.cumsum(probs) - probs < settings.top_p
        ids, probs = ids[keep], probs[keep] / probs[keep].sum()
    return ids, probs


def sampling_distribution(logits: np.ndarray, settings: SamplingSettings) -> np.ndarray:
    """Probabilities over the whole vocabulary after temperature, top-k and top-p (penalty already applied)."""
    ids, probs = sampling_candidates(logits, settings)
    full = np.zeros(logits.size, dtype=np.float64)
    full[ids] = probs
    return full


def choose_token(logits: np.ndarray, seen_ids: np.ndarray, settings: SamplingSettings,
                 rng: np.random.Generator) -> int:
    logits = apply_repetition_penalty(logits, seen_ids, settings.repetition_penalty)
    if settings.greedy:
        return int(np.argmax(logits))
    ids, probs = sampling_candidates(logits, settings)
    return int(ids[rng.choice(probs.size, p=probs)])


def top_alternatives(logits: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
    """The model's own top-k next tokens with probabilities (temperature 1, before any sampling rule)."""
    probs = softmax(logits)
    top = np.argpartition(-probs, k)[:k]
    top = top[np.argsort(-probs[top])]
    return [(int(i), float(probs[i])) for i in top]
