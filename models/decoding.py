"""What one generated sequence needs besides the model: sampling, EOS, incremental text, stop strings.

`SequenceState.advance(logits)` turns one row of next-token logits into a `Step`. The engine
(models/engine.py) calls it for every sequence of a batched step, so a sequence decoded alone or in a
batch of 16 goes through exactly the same per-sequence logic (its own seeded generator included).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from models.sampling import SamplingSettings, choose_token, top_alternatives


@dataclass
class Step:
    token_id: int
    text: str  # text this token adds (may be "" while a multi-byte character is incomplete)
    alternatives: list[tuple[str, float]] = field(default_factory=list)  # model's top-k (token, prob)
    finish_reason: str | None = None  # "eos", "length", "stop_string", "stopped" on the last step


class IncrementalDetokenizer:
    """Text deltas for a growing id list without re-decoding everything (the TGI/HF streamer approach)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0

    def add(self, token_id: int) -> str:
        self.ids.append(token_id)
        prefix = self.tokenizer.decode(self.ids[self.prefix_offset:self.read_offset], skip_special_tokens=True)
        text = self.tokenizer.decode(self.ids[self.prefix_offset:], skip_special_tokens=True)
        if len(text) > len(prefix) and not text.endswith("\ufffd"):
            self.prefix_offset = self.read_offset
            self.read_offset = len(self.ids)
            return text[len(prefix):]
        return ""


class SequenceState:
    """One sequence's decoding state: seeded sampler, tokens seen, text so far, budget."""

    def __init__(self, prompt_ids: Sequence[int], settings: SamplingSettings, tokenizer, eos_ids: frozenset[int],
                 budget: int, alternatives: int = 0):
        self.settings, self.tokenizer, self.budget, self.alternatives = settings, tokenizer, budget, alternatives
        self.eos_ids = frozenset() if settings.ignore_eos else eos_ids
        self.rng = np.random.default_rng(settings.seed)
        self.detok = IncrementalDetokenizer(tokenizer)
        self.seen = np.asarray(prompt_ids, dtype=np.int64)
        self.text = ""
        self.produced = 0
        self.finished: str | None = None

    def advance(self, logits: np.ndarray) -> Step:
        """Choose the next token from this sequence's logits row; the Step says if the sequence ended."""
        token = choose_token(logits, self.seen, self.settings, self.rng)
        alts = ([(self.tokenizer.decode([i]), p) for i, p in top_alternatives(logits, self.alternatives)]
                if self.alternatives else [])
        self.produced += 1
        if token in self.eos_ids:
            self.finished = "eos"
            return Step(token, "", alts, "eos")
        delta = self.detok.add(token)
        self.text += delta
        self.seen = np.append(self.seen, token)
        hit = next((s for s in self.settings.stop_strings if s in self.text[-(len(delta) + len(s)):]), None) if delta else None
        if hit:
            cut = self.text.rfind(hit)
            delta = delta[: max(0, len(delta) - (len(self.text) - cut))]
            self.finished = "stop_string"
        elif self.produced >= self.budget:
            self.finished = "length"
        return Step(token, delta, alts, self.finished)


@dataclass
class GenerationStats:
    """Measured per request: time to first token and decode speed (what the UI badge shows)."""

    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    tokens: int = 0

    def on_token(self) -> None:
        self.tokens += 1
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    @property
    def ttft_ms(self) -> float | None:
        return None if self.first_token_at is None else (self.first_token_at - self.started) * 1000

    @property
    def tokens_per_s(self) -> float | None:
        if self.first_token_at is None or self.tokens < 2:
            return None
        elapsed = time.perf_counter() - self.first_token_at
        return (self.tokens - 1) / elapsed if elapsed > 0 else None
