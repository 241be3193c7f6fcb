"""Plotly figures for the attention tab, one public function per view (as bertviz has one module per view).

Each function takes numpy arrays and token strings (the maths lives in models/attention_analysis.py) and
returns a plotly Figure. Labels go through plotly's pseudo-HTML renderer, so tokens such as '<s>' or
'<|im_start|>' are escaped here. Long inputs are pooled so that no figure ships more than a few hundred
thousand cells to the browser: the model view is ONE heatmap trace tiled by layer and head, not one
subplot per head, which keeps 30 x 9 heads at 512 tokens interactive.
"""
from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from models.attention_analysis import (
    HeadStats,
    TokenFlow,
    bin_labels,
    pool_attention,
    position_labels,
)

COLORSCALE = "Blues"
MASKED_COLOR = "#e9e9ee"  # causal cells above the diagonal: "not allowed", distinct from a weight of 0
MAX_SIDE = 512  # single heatmaps above this many tokens are pooled to this many bins
MODEL_VIEW_CELLS = 300_000  # cells budget of the model view canvas (about 1.5 MB once encoded)
FONT = dict(family="Inter, 'Noto Sans SC', 'PingFang SC', 'Microsoft YaHei', sans-serif", size=12)


def export_config(filename: str, image_format: str = "png") -> dict:
    """plotly.js config: the modebar camera saves `filename`.png (or .svg) at twice the screen size."""
    if image_format not in ("png", "svg"):
        raise ValueError(f"image format must be 'png' or 'svg', not {image_format!r}")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename) or "attention"
    return {
        "displaylogo": False,
        "displayModeBar": True,
        "toImageButtonOptions": {"format": image_format, "filename": safe, "scale": 2, "height": None, "width": None},
        "modeBarButtonsToRemove": ["lasso2d", "select2d"],
    }


def _esc(text: str) -> str:
    return html.escape(str(text), quote=False)


def _labels(tokens: list[str]) -> list[str]:
    return [_esc(label) for label in position_labels(tokens)]


def _weights_trace(z: np.ndarray, x: list[str], y: list[str], hovertemplate: str, **extra) -> go.Heatmap:
    """An attention-weight heatmap trace: one colour scale from 0; gaps (NaN) stay blank and show no hover."""
    return go.Heatmap(z=z, x=x, y=y, colorscale=COLORSCALE, zmin=0, hoverongaps=False, hovertemplate=hovertemplate,
                      **extra)


def _blank_future(z: np.ndarray) -> np.ndarray:
    """A causal model's cells above the diagonal (masked, exactly 0) as NaN, drawn as blank grey."""
    return np.where(np.triu(np.ones(z.shape, dtype=bool), k=1), np.nan, z).astype(np.float32)


def _layout(fig: go.Figure, title: str, height: int, **extra) -> go.Figure:
    settings = dict(
        title=dict(text=title, x=0.01, xanchor="left", font=dict(size=15)),
        height=height,
        font=FONT,
        margin=dict(l=10, r=10, t=60, b=10),
        plot_bgcolor=MASKED_COLOR,
        paper_bgcolor="white",
    )
    fig.update_layout(**{**settings, **extra})
    return fig


def _pooled(matrix: np.ndarray, row_tokens: list[str], col_tokens: list[str], max_side: int):
    """Pool a [R, C] matrix to at most max_side per axis; returns matrix, row labels, col labels, pooled?"""
    rows, cols = matrix.shape
    if rows <= max_side and cols <= max_side:
        return matrix, _labels(row_tokens), _labels(col_tokens), False
    if rows != cols:  # only square self-attention matrices get this long
        raise ValueError(f"cannot pool a {rows}x{cols} matrix")
    pooled, edges = pool_attention(matrix, max_side, mode="mass")
    labels = [_esc(label) for label in bin_labels(position_labels(row_tokens), edges)]
    return pooled, labels, labels, True


def heatmap_figure(
    matrix: np.ndarray,
    row_tokens: list[str],
    col_tokens: list[str] | None = None,
    *,
    title: str = "Attention",
    causal: bool = False,
    row_name: str = "query",
    col_name: str = "key",
    max_side: int = MAX_SIDE,
) -> go.Figure:
    """One matrix, rows = queries (top to bottom), columns = keys; hover reads 'query → key: weight'.

    For causal models the cells above the diagonal (masked, exactly 0) are left blank in grey.
    """
    col_tokens = row_tokens if col_tokens is None else col_tokens
    z, ylabels, xlabels, pooled = _pooled(np.asarray(matrix, dtype=np.float32), row_tokens, col_tokens, max_side)
    if causal and z.shape[0] == z.shape[1]:
        z = _blank_future(z)
    n_rows, n_cols = z.shape
    cell = max(3, min(36, 720 // max(n_rows, n_cols)))
    fig = go.Figure(_weights_trace(
        z, xlabels, ylabels, f"{row_name} %{{y}} → {col_name} %{{x}}: %{{z:.4f}}<extra></extra>",
        zmax=float(np.nanmax(z)) if np.isfinite(z).any() else 1.0,
        colorbar=dict(title=dict(text="weight"), thickness=12)))
    note = " (pooled: each cell = share of a block of queries landing in a block of keys)" if pooled else ""
    _layout(fig, _esc(title) + note, height=min(900, max(360, 140 + cell * n_rows)))
    fig.update_xaxes(type="category", side="top", tickangle=-60, title_text=f"{col_name} →", showgrid=False)
    fig.update_yaxes(type="category", autorange="reversed", title_text=f"← {row_name}", showgrid=False)
    return fig


def model_view_figure(
    attentions: np.ndarray,
    tokens: list[str],
    *,
    per_head_scale: bool = True,
    max_cells: int = MODEL_VIEW_CELLS,
    max_bins: int = 64,
    title: str = "Model view: every layer (rows) × head (columns)",
) -> go.Figure:
    """All heads as small multiples in a single heatmap trace.

    Each head's [T, T] matrix is pooled ("mass" pooling: rows still sum to 1) to B×B with B chosen so
    the whole canvas stays under `max_cells`, then tiled into one image with one-cell gaps. With
    `per_head_scale` each tile is divided by its own maximum so diffuse heads still show their shape
    (hover then reads "% of this head's peak"); otherwise colours and hover show the pooled weight.
    """
    att = np.asarray(attentions)
    n_layers, n_heads, t, _ = att.shape
    gap = 1
    bins = int(max(4, min(max_bins, t, np.sqrt(max_cells / (n_layers * n_heads)) - gap)))
    bins = min(bins, t)
    pooled, edges = pool_attention(att, bins, mode="mass")  # [L, H, B, B]
    bins = pooled.shape[-1]
    pooled = pooled.astype(np.float32, copy=False)
    if per_head_scale:
        peak = pooled.max(axis=(-1, -2), keepdims=True)
        pooled = pooled / np.where(peak > 0, peak, 1.0)

    # Tile [L, H, B, B] into [L*(B+gap) - gap, H*(B+gap) - gap] with NaN gaps, without Python loops.
    padded = np.full((n_layers, n_heads, bins + gap, bins + gap), np.nan, dtype=np.float32)
    padded[:, :, :bins, :bins] = pooled
    canvas = padded.transpose(0, 2, 1, 3).reshape(n_layers * (bins + gap), n_heads * (bins + gap))
    canvas = canvas[: n_layers * (bins + gap) - gap, : n_heads * (bins + gap) - gap]

    short = [_esc(label) for label in bin_labels(position_labels(tokens), edges)]
    y = _tiled_labels(n_layers, bins, gap, [f"layer {i} · q" for i in range(n_layers)], short)
    x = _tiled_labels(n_heads, bins, gap, [f"head {i} · k" for i in range(n_heads)], short)
    value = "%{z:.0%} of this head's peak" if per_head_scale else "%{z:.4f}"
    fig = go.Figure(_weights_trace(
        canvas, x, y, "%{y}<br>→ %{x}<br>" + value + "<extra></extra>",
        zmax=1 if per_head_scale else float(np.nanmax(canvas)), showscale=not per_head_scale,
        colorbar=dict(title=dict(text="weight"), thickness=12)))
    tile_px = int(np.clip(min(760 / n_heads, 1700 / n_layers), 34, 110))  # 30 layers stay under ~1800 px
    stride = bins + gap
    fig.update_xaxes(
        type="category", side="top", showgrid=False, tickmode="array",
        tickvals=[x[h * stride + bins // 2] for h in range(n_heads)], ticktext=[f"H{h}" for h in range(n_heads)],
        constrain="domain",
    )
    fig.update_yaxes(
        type="category", autorange="reversed", showgrid=False, tickmode="array",
        tickvals=[y[layer * stride + bins // 2] for layer in range(n_layers)],
        ticktext=[f"L{layer}" for layer in range(n_layers)],
        scaleanchor="x", scaleratio=1, constrain="domain",
    )
    pooled_note = f" · each tile {bins}×{bins} bins of {t} tokens" if bins < t else ""
    _layout(fig, _esc(title) + pooled_note, height=n_layers * tile_px + 110, plot_bgcolor="white")
    return fig


def _tiled_labels(n_tiles: int, bins: int, gap: int, tile_names: list[str], bin_names: list[str]) -> list[str]:
    labels: list[str] = []
    filler = 0
    for tile in range(n_tiles):
        labels.extend(f"{tile_names[tile]} {name}" for name in bin_names[:bins])
        if tile < n_tiles - 1:
            for _ in range(gap):
                filler += 1
                labels.append("\u200b" * filler)  # unique, invisible: equal category names would merge
    return labels


def token_view_figure(
    flow: TokenFlow, tokens: list[str], by_layer: np.ndarray | None = None, *, title: str = "Token view"
) -> go.Figure:
    """Bars: attention the selected tokens pay to every key, and receive from every query; optionally a
    layer × key heatmap of what the selection pays in every layer (heads averaged)."""
    labels = _labels(tokens)
    chosen = ", ".join(labels[i] for i in flow.selected[:8]) + (" …" if len(flow.selected) > 8 else "")
    n_rows = 3 if by_layer is not None else 2
    fig = make_subplots(
        rows=n_rows, cols=1, vertical_spacing=0.12,
        row_heights=[1, 1, 1.3][:n_rows],
        subplot_titles=[
            f"paid: attention from [{chosen}] to each key",
            f"received: attention each query pays to [{chosen}]",
            "paid by the selection in every layer (heads averaged)",
        ][:n_rows],
    )
    selected = np.zeros(len(tokens), dtype=bool)
    selected[flow.selected] = True
    colours = np.where(selected, "#e8710a", "#1f77b4").tolist()
    for row, values, verb in ((1, flow.paid, "receives from selection"), (2, flow.received, "pays to selection")):
        fig.add_trace(
            go.Bar(
                x=labels, y=np.asarray(values, dtype=np.float32), marker_color=colours, showlegend=False,
                hovertemplate=f"%{{x}} {verb}: %{{y:.4f}}<extra></extra>",
            ),
            row=row, col=1,
        )
    if by_layer is not None:
        fig.add_trace(
            _weights_trace(np.asarray(by_layer, dtype=np.float32), labels, [f"L{i}" for i in range(len(by_layer))],
                           "%{y} · selection → %{x}: %{z:.4f}<extra></extra>", showscale=False),
            row=3, col=1,
        )
        fig.update_yaxes(autorange="reversed", type="category", row=3, col=1)
    fig.update_xaxes(type="category", tickangle=-60, showgrid=False)
    fig.update_yaxes(title_text="weight", row=1, col=1)
    fig.update_yaxes(title_text="weight", row=2, col=1)
    layers = 0 if by_layer is None else len(by_layer)
    return _layout(fig, _esc(title), height=620 + min(400, 14 * layers), plot_bgcolor="white", bargap=0.15)


def rollout_figure(
    raw: np.ndarray, rolled: np.ndarray, tokens: list[str], *, layer: int, head_label: str = "all heads",
    causal: bool = False, max_side: int = 256,
) -> go.Figure:
    """Raw attention of one layer beside attention rollout up to that layer, same token axes."""
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.08,
        subplot_titles=[_esc(f"raw attention · layer {layer} · {head_label}"), _esc(f"rollout · layers 0–{layer}")],
    )
    for col, matrix, name in ((1, raw, "raw"), (2, rolled, "rollout")):
        z, ylabels, xlabels, _ = _pooled(np.asarray(matrix, dtype=np.float32), tokens, tokens, max_side)
        if causal:
            z = _blank_future(z)
        fig.add_trace(
            _weights_trace(z, xlabels, ylabels, f"{name}: query %{{y}} → key %{{x}}: %{{z:.4f}}<extra></extra>",
                           coloraxis=f"coloraxis{'' if col == 1 else 2}"),
            row=1, col=col,
        )
    fig.update_xaxes(type="category", tickangle=-60, showgrid=False)
    fig.update_yaxes(type="category", autorange="reversed", showgrid=False)
    fig.update_yaxes(showticklabels=False, row=1, col=2)
    # separate colour scales: rollout values are smoother and smaller than a single layer's peaks
    _layout(
        fig, "Raw attention vs attention rollout (Abnar & Zuidema 2020)", height=620,
        coloraxis=dict(colorscale=COLORSCALE, cmin=0, colorbar=dict(x=0.46, thickness=10, title=dict(text="raw"))),
        coloraxis2=dict(colorscale=COLORSCALE, cmin=0, colorbar=dict(x=1.0, thickness=10, title=dict(text="rollout"))),
    )
    return fig


def alignment_figure(
    matrix: np.ndarray, target_tokens: list[str], source_tokens: list[str], *, layers: tuple[int, int]
) -> go.Figure:
    """Target tokens (rows) against source tokens (columns); rows sum to 1 over the source."""
    fig = heatmap_figure(
        matrix, target_tokens, source_tokens, row_name="target", col_name="source",
        title=f"Translation alignment · layers {layers[0]}–{layers[1]}, heads averaged, rows renormalised over the source",
    )
    fig.update_traces(hovertemplate="target %{y} ← source %{x}: %{z:.3f}<extra></extra>")
    return fig


STAT_PANELS = (
    ("entropy_norm", "normalised entropy (1 = uniform)"),
    ("sink_first", "weight on first token (sink)"),
    ("previous_token", "previous-token score"),
    ("mean_distance", "mean distance (tokens)"),
)


def head_stats_figure(stats: HeadStats, *, title: str = "Head statistics (layer × head)") -> go.Figure:
    """Four layer × head maps of the statistics that sort heads into kinds (diffuse, sink, previous-token, local)."""
    n_layers, n_heads = stats.entropy_bits.shape
    fig = make_subplots(rows=1, cols=4, horizontal_spacing=0.05, subplot_titles=[t for _, t in STAT_PANELS])
    for col, (name, label) in enumerate(STAT_PANELS, start=1):
        values = np.asarray(getattr(stats, name), dtype=np.float32)
        fig.add_trace(
            go.Heatmap(
                z=values, x=[f"H{h}" for h in range(n_heads)], y=[f"L{layer}" for layer in range(n_layers)],
                colorscale="Viridis", showscale=False,
                hovertemplate=f"%{{y}} %{{x}} · {label}: %{{z:.3f}}<extra></extra>",
            ),
            row=1, col=col,
        )
    fig.update_xaxes(type="category", side="top", showgrid=False, tickfont=dict(size=9))
    fig.update_yaxes(type="category", autorange="reversed", showgrid=False, tickfont=dict(size=9))
    for col in range(2, 5):
        fig.update_yaxes(showticklabels=False, row=1, col=col)
    return _layout(fig, _esc(title), height=min(1100, 160 + 18 * n_layers), plot_bgcolor="white")


def message_figure(text: str) -> go.Figure:
    """An empty figure that says what to do next (instead of a blank plot)."""
    fig = go.Figure()
    fig.add_annotation(text=_esc(text), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font=dict(size=15))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, "", height=240, plot_bgcolor="white")
