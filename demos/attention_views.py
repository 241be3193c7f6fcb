"""The Attention tab's views: each one function in VIEWS that turns one analysed run and a ViewRequest into
a ViewResult (figure, page table, CSV table, note). Like bertviz's head/model/neuron views, one function per
view; the figures live in demos/attention_figures.py, the numbers in models/attention_analysis.py.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from demos import attention_figures as figures
from models import attention_analysis as analysis
from models.attention_analysis import AttentionAnalysis

TABLE_SIDE = 128  # the on-page matrix table shows at most this many tokens per side (pooled above); CSV is full


# --------------------------------------------------------------------------- what a view gets and returns


@dataclass(frozen=True)
class ViewRequest:
    layer: int  # validated against the run
    head: int | None  # None = average of the heads
    selected: list[int]  # token positions for the token view
    rollout: bool = False  # heatmap/token view: rollout instead of raw weights
    per_head_scale: bool = True  # model view colouring
    align_range: tuple[int, int] | None = None  # translation alignment: inclusive layer range


@dataclass(frozen=True)
class ViewResult:
    figure: go.Figure
    table: pd.DataFrame | None  # what the page shows under the figure (pooled for long inputs)
    csv: pd.DataFrame | None  # what the CSV download holds (full size)
    stem: str  # file name of the CSV and of the camera button's image
    note: str


def _head_name(head: int | None) -> str:
    return "all heads (average)" if head is None else f"head {head}"


def _stem(a: AttentionAnalysis, req: ViewRequest, suffix: str = "") -> str:
    head_tag = "Hall" if req.head is None else f"H{req.head}"
    return f"attention_{a.result.model_id}_L{req.layer}_{head_tag}{suffix}"


def _matrix_frame(matrix: np.ndarray, row_labels: list[str], col_labels: list[str],
                  corner: str = "query \\ key", digits: int = 4) -> pd.DataFrame:
    frame = pd.DataFrame(np.round(np.asarray(matrix, dtype=np.float64), digits), columns=col_labels)
    frame.insert(0, corner, row_labels)
    return frame


def _square_tables(matrix: np.ndarray, labels: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(page table, CSV table, note): the page gets 64×64 pooled bins above TABLE_SIDE tokens, the CSV all."""
    full = _matrix_frame(matrix, labels, labels, digits=6)
    if matrix.shape[0] <= TABLE_SIDE:
        return _matrix_frame(matrix, labels, labels), full, ""
    pooled, edges = analysis.pool_attention(matrix, 64, mode="mass")
    names = analysis.bin_labels(labels, edges)
    return _matrix_frame(pooled, names, names), full, " The table on the page is pooled to 64×64; the CSV is full size."


def _shown(a: AttentionAnalysis, req: ViewRequest) -> tuple[np.ndarray, str]:
    """The matrix the heatmap and token views show, and how to name it."""
    if req.rollout:
        return a.rollout[req.layer], f"rollout up to layer {req.layer} (all heads)"
    matrix = analysis.select_matrix(a.result.attentions, req.layer, req.head)
    return matrix, f"layer {req.layer} · {_head_name(req.head)}"


_ROLLOUT_NOTE = " Rollout averages all heads, so the head slider does not change it."


# --------------------------------------------------------------------------- the views


def heatmap_view(a: AttentionAnalysis, req: ViewRequest) -> ViewResult:
    shown, what = _shown(a, req)
    fig = figures.heatmap_figure(shown, a.result.tokens, title=f"{a.result.model_id} · {what}", causal=a.result.causal)
    table, csv, pool_note = _square_tables(shown, a.labels)
    note = f"Rows are queries and sum to 1; columns are keys.{pool_note}" + (_ROLLOUT_NOTE if req.rollout else "")
    return ViewResult(fig, table, csv, _stem(a, req, "_rollout" if req.rollout else ""), note)


def model_view(a: AttentionAnalysis, req: ViewRequest) -> ViewResult:
    fig = figures.model_view_figure(a.result.attentions, a.result.tokens, per_head_scale=req.per_head_scale)
    raw = analysis.select_matrix(a.result.attentions, req.layer, req.head)
    table, csv, pool_note = _square_tables(raw, a.labels)
    note = (f"Model view of all {a.layers}×{a.heads} heads. Table and CSV: layer {req.layer} · "
            f"{_head_name(req.head)}.{pool_note}")
    return ViewResult(fig, table, csv, _stem(a, req), note)


def token_view(a: AttentionAnalysis, req: ViewRequest) -> ViewResult:
    shown, what = _shown(a, req)
    flow = analysis.token_flow(shown, req.selected or a.default_selection())
    by_layer = (a.rollout[:, flow.selected, :].sum(1) if req.rollout
                else analysis.paid_by_layer(a.result.attentions, flow.selected))
    fig = figures.token_view_figure(flow, a.result.tokens, by_layer, title=f"Token view · {what}")
    table = pd.DataFrame({"token": a.labels,
                          "paid by selection → this key": np.round(flow.paid.astype(np.float64), 4),
                          "received by selection ← this query": np.round(flow.received.astype(np.float64), 4)})
    chosen = ", ".join(a.labels[i] for i in flow.selected)
    note = f"Selected: {chosen}. Bars sum the selected rows (paid) and columns (received) of {what}."
    return ViewResult(fig, table, table, _stem(a, req, ("_rollout" if req.rollout else "") + "_tokens"),
                      note + (_ROLLOUT_NOTE if req.rollout else ""))


def rollout_view(a: AttentionAnalysis, req: ViewRequest) -> ViewResult:
    raw = analysis.select_matrix(a.result.attentions, req.layer, req.head)
    rolled = a.rollout[req.layer]
    fig = figures.rollout_figure(raw, rolled, a.result.tokens, layer=req.layer, head_label=_head_name(req.head),
                                 causal=a.result.causal)
    table, csv, pool_note = _square_tables(rolled, a.labels)
    note = (f"Left: raw attention, layer {req.layer}, {_head_name(req.head)}. Right: rollout through layers "
            f"0–{req.layer}.{pool_note}")
    return ViewResult(fig, table, csv, f"rollout_{a.result.model_id}_L{req.layer}", note)


def stats_table(a: AttentionAnalysis) -> pd.DataFrame:
    """One row per head (analysis.STAT_COLUMNS), also shown in the tab's sortable statistics table."""
    return pd.DataFrame(a.stats.rows(a.labels), columns=list(analysis.STAT_COLUMNS))


def stats_view(a: AttentionAnalysis, req: ViewRequest) -> ViewResult:
    table = stats_table(a)
    bias = (" Causal model: row 0 is skipped and entropy_bits is biased low for short inputs; "
            "compare heads with entropy_norm.") if a.result.causal else ""
    note = f"{a.layers * a.heads} heads; the table under 'Head statistics' sorts by any column header.{bias}"
    return ViewResult(figures.head_stats_figure(a.stats), table, table, f"head_stats_{a.result.model_id}", note)


def alignment_view(a: AttentionAnalysis, req: ViewRequest) -> ViewResult:
    result = a.result
    if result.source_span is None or result.target_span is None:
        fig = figures.message_figure("Translation alignment needs a translation: "
                                     "open 'Translation alignment 翻译对齐' above and press 'Translate & align'.")
        return ViewResult(fig, None, None, "alignment", "No translation in this run. 这次运行没有翻译。")
    first, last = sorted(int(v) for v in (req.align_range or (0, a.layers - 1)))
    aligned = analysis.translation_alignment(result.attentions, result.source_span, result.target_span,
                                             layers=(first, min(last, a.layers - 1)))
    target = [a.labels[i] for i in aligned.target_positions]
    source = [a.labels[i] for i in aligned.source_positions]
    fig = figures.alignment_figure(aligned.matrix, [result.tokens[i] for i in aligned.target_positions],
                                   [result.tokens[i] for i in aligned.source_positions], layers=aligned.layers)
    corner = "target \\ source"
    lo, hi = aligned.layers
    note = (f"Rows: generated tokens; each row is the attention of the step that wrote it, averaged over "
            f"heads and layers {lo}–{hi}, renormalised over the source.")
    return ViewResult(fig, _matrix_frame(aligned.matrix, target, source, corner),
                      _matrix_frame(aligned.matrix, target, source, corner, digits=6),
                      f"alignment_{result.model_id}_L{lo}-{hi}", note)


View = Callable[[AttentionAnalysis, ViewRequest], ViewResult]
VIEWS: dict[str, tuple[str, View]] = {
    "heatmap": ("Heatmap 热力图", heatmap_view),
    "model": ("Model view 全部层×头", model_view),
    "token": ("Token view 词元视图", token_view),
    "rollout": ("Rollout vs raw 注意力展开", rollout_view),
    "stats": ("Head statistics 注意力头统计", stats_view),
    "alignment": ("Translation alignment 翻译对齐", alignment_view),
}
