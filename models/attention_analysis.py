"""What the attention tab computes from attention weights: per-head statistics, rollout, token flows,
pooling for long inputs, translation alignment and CSV export. Pure numpy, no UI.

Every function takes attention probabilities shaped [layers, heads, T, T] (or one [T, T] matrix) where
row i is the distribution query token i puts over key tokens (rows sum to 1; a causal model has zeros
above the diagonal). Bad arguments raise ValueError with a message the UI can show as it is.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # models.attention loads onnxruntime sessions; this module stays pure numpy
    from models.attention import AttentionResult

from models.csv_export import csv_safe, table_to_csv  # noqa: F401  (the one CSV writer; re-exported for the tab)

# --------------------------------------------------------------------------- selecting matrices


def check_attentions(attentions: np.ndarray) -> np.ndarray:
    """Return `attentions` as a float array [layers, heads, T, T], or raise ValueError saying what is wrong."""
    att = np.asarray(attentions)
    if att.ndim != 4 or att.shape[-1] != att.shape[-2]:
        raise ValueError(f"attentions must be shaped [layers, heads, T, T]; got {att.shape}")
    if min(att.shape) == 0:
        raise ValueError(f"attentions are empty: shape {att.shape}")
    if not np.issubdtype(att.dtype, np.floating):
        att = att.astype(np.float32)
    return att


def check_layer_head(attentions: np.ndarray, layer: int, head: int | None) -> tuple[int, int | None]:
    """Validate a 0-based layer and a 0-based head (None or -1 = average of all heads)."""
    n_layers, n_heads = attentions.shape[:2]
    if int(layer) != layer or not 0 <= layer < n_layers:
        raise ValueError(f"layer {layer} is out of range: this model has {n_layers} layers (0 to {n_layers - 1})")
    if head is None or head == -1:
        return int(layer), None
    if int(head) != head or not 0 <= head < n_heads:
        raise ValueError(
            f"head {head} is out of range: this model has {n_heads} heads per layer "
            f"(0 to {n_heads - 1}, or -1 for the average of all heads)"
        )
    return int(layer), int(head)


def select_matrix(attentions: np.ndarray, layer: int | None, head: int | None) -> np.ndarray:
    """One [T, T] matrix: a layer's head, or an average (None/-1 averages heads; layer None averages layers)."""
    att = check_attentions(attentions)
    if layer is None:
        stack = att
    else:
        layer, head = check_layer_head(att, layer, head)
        stack = att[layer : layer + 1]
    if head is None or head == -1:
        return stack.mean(axis=(0, 1))
    check_layer_head(att, 0, head)
    return stack[:, int(head)].mean(axis=0)


# --------------------------------------------------------------------------- per-head statistics

STAT_COLUMNS = (
    "layer", "head", "entropy_bits", "entropy_norm", "sink_first", "previous_token", "diagonal",
    "mean_distance", "top_key", "top_key_share",
)


@dataclass
class HeadStats:
    """Per-head statistics, each an array [layers, heads].

    Rows used: for a causal model query row 0 can only attend to itself (all statistics would be forced),
    so every average skips it; for a bidirectional model entropy/diagonal/distance use all rows and
    sink/previous-token use rows 1.. (row 0 attending to token 0 is self-attention, not a sink).

    - entropy_bits: mean over query rows of the row entropy in bits. Causal rows see only i+1 keys, so
      early rows have low entropy by construction: this number is biased low for short causal inputs.
    - entropy_norm: mean of row entropy / log2(number of visible keys), in [0, 1]: 1 = uniform over
      what the row may see, 0 = all weight on one key. Comparable across lengths and model types.
    - sink_first: mean weight on the first token ("attention sink", BOS/[CLS]).
    - previous_token: mean of a[i, i-1]; diagonal: mean of a[i, i].
    - mean_distance: mean over rows of sum_j a[i, j] * |i - j|, in tokens (local vs global heads).
    - top_key / top_key_share: the key with the largest mean weight over the rows and that weight
      (catches sinks on [SEP] or punctuation, not only on the first token).
    """

    causal: bool
    entropy_bits: np.ndarray
    entropy_norm: np.ndarray
    sink_first: np.ndarray
    previous_token: np.ndarray
    diagonal: np.ndarray
    mean_distance: np.ndarray
    top_key: np.ndarray
    top_key_share: np.ndarray

    def rows(self, tokens: list[str] | None = None, digits: int = 4) -> list[list]:
        """Table rows in STAT_COLUMNS order; top_key is shown as 'index:token' when tokens are given."""
        out = []
        n_layers, n_heads = self.entropy_bits.shape
        for layer in range(n_layers):
            for head in range(n_heads):
                key = int(self.top_key[layer, head])
                out.append([
                    layer, head,
                    *(round(float(getattr(self, name)[layer, head]), digits) for name in STAT_COLUMNS[2:8]),
                    f"{key}:{tokens[key]}" if tokens is not None else key,
                    round(float(self.top_key_share[layer, head]), digits),
                ])
        return out


def head_statistics(attentions: np.ndarray, causal: bool) -> HeadStats:
    """Statistics of every head (see HeadStats for definitions). One layer at a time keeps the
    temporaries small (a 30-layer model at 512 tokens holds 280 MB of weights)."""
    att = check_attentions(attentions)
    n_layers, n_heads, t, _ = att.shape
    positions = np.arange(t)
    first_row = 1 if (causal and t > 1) else 0
    rows = slice(first_row, t)
    visible = (positions + 1) if causal else np.full(t, t)
    max_entropy = np.log2(visible)[rows]
    has_choice = max_entropy > 0  # rows that could spread their weight at all
    distance = np.abs(positions[:, None] - positions[None, :]).astype(np.float32)

    stats = {name: np.zeros((n_layers, n_heads)) for name in STAT_COLUMNS[2:]}
    for layer in range(n_layers):
        a = att[layer].astype(np.float32, copy=False)  # [H, T, T]
        with np.errstate(divide="ignore", invalid="ignore"):
            plogp = np.where(a > 0, a * np.log2(np.where(a > 0, a, 1.0)), 0.0)
        row_entropy = -plogp.sum(-1)[:, rows]  # [H, rows]
        stats["entropy_bits"][layer] = row_entropy.mean(-1)
        if has_choice.any():
            stats["entropy_norm"][layer] = (row_entropy[:, has_choice] / max_entropy[has_choice]).mean(-1)
        if t > 1:
            stats["sink_first"][layer] = a[:, 1:, 0].mean(-1)
            stats["previous_token"][layer] = np.diagonal(a, offset=-1, axis1=1, axis2=2).mean(-1)
        stats["diagonal"][layer] = np.diagonal(a, axis1=1, axis2=2)[:, rows].mean(-1)
        stats["mean_distance"][layer] = (a[:, rows] * distance[rows]).sum(-1).mean(-1)
        key_share = a[:, rows].mean(1)  # [H, T]
        stats["top_key"][layer] = key_share.argmax(-1)
        stats["top_key_share"][layer] = key_share.max(-1)
    stats["top_key"] = stats["top_key"].astype(int)
    return HeadStats(causal=causal, **stats)


# --------------------------------------------------------------------------- rollout


def attention_rollout(attentions: np.ndarray, residual: bool = True) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020), cumulative per layer: result[l] = Â_l @ ... @ Â_0.

    Â_l is layer l's attention averaged over heads; with `residual` the identity is added for the skip
    connection and rows renormalised, i.e. Â = (A + I) / 2. result[l][i, j] estimates how much of input
    token j reaches position i after layer l. Products of row-stochastic matrices stay row-stochastic,
    and products of lower-triangular ones stay lower-triangular, so causal masks are kept.
    """
    att = check_attentions(attentions)
    n_layers, _, t, _ = att.shape
    identity = np.eye(t, dtype=np.float64)
    out = np.empty((n_layers, t, t), dtype=np.float32)
    flow = identity
    for layer in range(n_layers):
        mixed = att[layer].mean(axis=0, dtype=np.float64)
        if residual:
            mixed = mixed + identity
        mixed = mixed / mixed.sum(-1, keepdims=True)
        flow = mixed @ flow
        out[layer] = flow
    return out


# --------------------------------------------------------------------------- token view


@dataclass
class TokenFlow:
    selected: list[int]
    paid: np.ndarray  # [T]: weight the selected queries put on each key (sum over selected rows)
    received: np.ndarray  # [T]: weight each query puts on the selected keys (sum over selected columns)


def check_indices(indices, t: int) -> list[int]:
    picked = sorted({int(i) for i in indices})
    if not picked:
        raise ValueError("select at least one token")
    bad = [i for i in picked if not 0 <= i < t]
    if bad:
        raise ValueError(f"token positions {bad} are out of range: the input has {t} tokens (0 to {t - 1})")
    return picked


def token_flow(matrix: np.ndarray, indices) -> TokenFlow:
    """Attention paid by the selected tokens (their rows, summed) and received by them (their columns)."""
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"expected one square attention matrix; got shape {m.shape}")
    picked = check_indices(indices, m.shape[0])
    return TokenFlow(selected=picked, paid=m[picked].sum(0), received=m[:, picked].sum(1))


def paid_by_layer(attentions: np.ndarray, indices) -> np.ndarray:
    """[layers, T]: attention the selected queries pay to each key in every layer, heads averaged."""
    att = check_attentions(attentions)
    picked = check_indices(indices, att.shape[-1])
    return att[:, :, picked, :].sum(axis=2).mean(axis=1)


# --------------------------------------------------------------------------- pooling long inputs


def bin_edges(t: int, max_bins: int) -> np.ndarray:
    """Edges of at most `max_bins` contiguous, near-equal bins over t positions (strictly increasing)."""
    if t < 1 or max_bins < 1:
        raise ValueError(f"need t >= 1 and max_bins >= 1; got t={t}, max_bins={max_bins}")
    n = min(t, max_bins)
    return (np.arange(n + 1) * t) // n


def pool_attention(attentions: np.ndarray, max_bins: int = 64, mode: str = "mass") -> tuple[np.ndarray, np.ndarray]:
    """Shrink the last two axes ([..., T, T]) to at most max_bins each; returns (pooled, edges).

    mode "mass": mean over the query rows of a bin of the summed weight on each key bin. Each pooled row
    is still a distribution (rows keep summing to 1) and a cell reads "share of attention from these
    queries that lands in these keys". mode "max": largest single weight in the block, which keeps sharp
    one-token patterns (previous-token heads, sinks) visible at the cost of row sums.
    """
    a = np.asarray(attentions)
    t = a.shape[-1]
    if a.ndim < 2 or a.shape[-2] != t:
        raise ValueError(f"expected [..., T, T]; got shape {a.shape}")
    edges = bin_edges(t, max_bins)
    if len(edges) - 1 == t:
        return a.copy(), edges
    starts = edges[:-1]
    if mode == "mass":
        keys = np.add.reduceat(a, starts, axis=-1)
        summed = np.add.reduceat(keys, starts, axis=-2)
        return (summed / np.diff(edges)[:, None]).astype(a.dtype, copy=False), edges
    if mode == "max":
        keys = np.maximum.reduceat(a, starts, axis=-1)
        return np.maximum.reduceat(keys, starts, axis=-2), edges
    raise ValueError(f"unknown pooling mode {mode!r}: use 'mass' or 'max'")


def bin_labels(tokens: list[str], edges: np.ndarray) -> list[str]:
    """'first … last [i-j]' for each bin, or the token itself for one-token bins."""
    labels = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        lo, hi = int(lo), int(hi)
        labels.append(tokens[lo] if hi - lo == 1 else f"{tokens[lo]} … {tokens[hi - 1]} [{lo}-{hi - 1}]")
    return labels


# --------------------------------------------------------------------------- translation alignment


@dataclass
class Alignment:
    matrix: np.ndarray  # [target tokens, source tokens], rows sum to 1
    target_positions: list[int]
    source_positions: list[int]
    layers: tuple[int, int]  # inclusive range used


def translation_alignment(
    attentions: np.ndarray,
    source_span: tuple[int, int],
    target_span: tuple[int, int],
    layers: tuple[int, int] | None = None,
    at_generation_step: bool = True,
) -> Alignment:
    """Target-token -> source-token weights from a decoder's attention, averaged over heads and layers.

    Spans are [start, end) token ranges; `layers` an inclusive (first, last) range (default: all).
    With `at_generation_step` the row for target token k is the query at position k-1: that is the
    forward step that produced token k, so it shows what the model read while writing it. Otherwise
    row k is the query at k (what the token attends to once it is read, which leans to the next word).
    Each row is renormalised over the source span: the weight kept on prompt, sink and earlier target
    tokens is dropped, so a row reads "of the attention that went to the source, which word got it".
    """
    att = check_attentions(attentions)
    n_layers, _, t, _ = att.shape
    (s0, s1), (g0, g1) = (tuple(int(v) for v in source_span), tuple(int(v) for v in target_span))
    if not (0 <= s0 < s1 <= t and 0 <= g0 < g1 <= t):
        raise ValueError(f"spans {source_span}, {target_span} must be non-empty ranges inside 0..{t}")
    if s1 > g0:
        raise ValueError(f"the source span {source_span} must end before the target span {target_span} starts")
    first, last = (0, n_layers - 1) if layers is None else (int(layers[0]), int(layers[1]))
    if not 0 <= first <= last < n_layers:
        raise ValueError(f"layer range ({first}, {last}) must lie within 0..{n_layers - 1} with first <= last")
    query_rows = np.arange(g0, g1) - (1 if at_generation_step else 0)
    block = att[first : last + 1][:, :, query_rows, s0:s1].mean(axis=(0, 1), dtype=np.float64)
    totals = block.sum(-1, keepdims=True)
    uniform = np.full_like(block, 1.0 / (s1 - s0))
    matrix = np.where(totals > 0, block / np.where(totals > 0, totals, 1.0), uniform)
    return Alignment(matrix.astype(np.float32), list(range(g0, g1)), list(range(s0, s1)), (first, last))


# --------------------------------------------------------------------------- export




def position_labels(tokens: list[str]) -> list[str]:
    """Unique, readable labels: a token appearing once is shown as is, repeats get their position.

    Empty or whitespace-only tokens become '␣' and newlines '↵' so every label is visible.
    """
    shown = [_visible(tok) for tok in tokens]
    counts: dict[str, int] = {}
    for label in shown:
        counts[label] = counts.get(label, 0) + 1
    return [label if counts[label] == 1 else f"{label} ({i})" for i, label in enumerate(shown)]


def _visible(token: str) -> str:
    text = str(token).replace("\r\n", "↵").replace("\n", "↵").replace("\t", "⇥")
    return text.strip() or "␣"


# --------------------------------------------------------------------------- one run, analysed once


@dataclass(frozen=True)
class AttentionAnalysis:
    """One model run and what the views derive from it, each computed at most once per run: changing
    layer, head, view or tokens only redraws. Statistics and rollout are the slow parts at 512 tokens, so
    they are computed on first use (the API's heatmap needs neither)."""

    result: AttentionResult
    labels: list[str]  # position_labels(result.tokens)

    @property
    def layers(self) -> int:
        return self.result.attentions.shape[0]

    @property
    def heads(self) -> int:
        return self.result.attentions.shape[1]

    @property
    def length(self) -> int:
        return self.result.attentions.shape[-1]

    @cached_property
    def stats(self) -> HeadStats:
        return head_statistics(self.result.attentions, self.result.causal)

    @cached_property
    def rollout(self) -> np.ndarray:
        """[layers, T, T]: attention_rollout of the run."""
        return attention_rollout(self.result.attentions)

    def default_selection(self) -> list[int]:
        return default_selection(self.result.tokens, self.result.special)


def analyse(result: AttentionResult) -> AttentionAnalysis:
    """Check a run's shapes and wrap it; ValueError when tokens, flags and attention disagree."""
    att = check_attentions(result.attentions)
    t = att.shape[-1]
    if len(result.tokens) != t or len(result.special) != t:
        raise ValueError(f"the model returned {len(result.tokens)} tokens ({len(result.special)} special-token "
                         f"flags) but {t} attention positions")
    return AttentionAnalysis(result, position_labels(result.tokens))


def default_selection(tokens: list[str], special: list[bool]) -> list[int]:
    """The last ordinary token (not special, not punctuation): in a causal model it has seen the whole input.

    Special tokens are the tokenizer's mask (AttentionResult.special); the last token is the fallback when
    every token is special or punctuation.
    """
    for index in range(len(tokens) - 1, -1, -1):
        text = tokens[index].strip()
        punctuation = bool(text) and all(unicodedata.category(char).startswith("P") for char in text)
        if text and not special[index] and not punctuation:
            return [index]
    return [len(tokens) - 1]
