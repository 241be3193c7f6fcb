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


def sampling_distribution(logits: np.ndarray, settings: SamplingSettings) -> np.ndarray:
    """Probabilities over the vocabulary after temperature, top-k and top-p (penalty already applied)."""
    scaled = logits.astype(np.float64) / settings.temperature
    if settings.top_k and settings.top_k < scaled.size:
        kth = np.partition(scaled, -settings.top_k)[-settings.top_k]
        scaled = np.where(scaled < kth, -np.inf, scaled)
    probs = softmax(scaled)
    if settings.top_p < 1:
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        # keep the smallest prefix whose mass reaches top_p (always at least one token)
        keep = cumulative - probs[order] < settings.top_p
        mask = np.zeros_like(probs, dtype=bool)
        mask[order[keep]] = True
        probs = np.where(mask, probs, 0.0)
        probs /= probs.sum()
    return probs


def choose_token(logits: np.ndarray, seen_ids: np.ndarray, settings: SamplingSettings,
                 rng: np.random.Generator) -> int:
    logits = apply_repetition_penalty(logits, seen_ids, settings.repetition_penalty)
    if settings.greedy:
        return int(np.argmax(logits))
    probs = sampling_distribution(logits, settings)
    return int(rng.choice(probs.size, p=probs))


def top_alternatives(logits: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
    """The model's own top-k next tokens with probabilities (temperature 1, before any sampling rule)."""
    probs = softmax(logits)
    top = np.argpartition(-probs, k)[:k]
    top = top[np.argsort(-probs[top])]
    return [(int(i), float(probs[i])) for i in top]
