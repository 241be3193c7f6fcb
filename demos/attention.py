"""Attention tab: look inside the site's ONNX models, one layer/head or all of them at once.

The model runs once per "Show attention" press (models.attention); its AttentionResult, with the statistics
and rollout derived from it, is cached in a gr.State so that changing layer, head, view or tokens only
redraws. API: `attention` takes (text, model_id, layer, head) and returns (figure, matrix with token labels).
"""
from __future__ import annotations

import math

import hashlib
import importlib
import json
import re
import tempfile
import time
from pathlib import Path

import gradio as gr

from demos.common import user_error
import numpy as np
import pandas as pd
from gradio.components.plot import PlotData

from demos import attention_figures as figures
from models import attention_analysis as analysis
from models.languages import LANGUAGES as TRANSLATION_LANGUAGES

MAX_TOKENS = 512
TABLE_SIDE = 128  # the on-page matrix table shows at most this many tokens per side (pooled above); CSV is full
# Slider bounds before the first run, when the model's shape is not known yet. They are also the bounds
# API calls are checked against, so they must cover every model; the handler then checks the real shape.
MAX_LAYERS, MAX_HEADS = 64, 64
CONTENT_DIR = Path(__file__).resolve().parent.parent / "content" / "attention"
EXAMPLES = [
    "The cat sat on the mat because it was tired.",
    "小猫坐在垫子上，因为它累了。",
    "The animal didn't cross the street because it was too wide. The trophy doesn't fit into the brown "
    "suitcase because it is too large. Alice gave Bob the book, and he thanked her for it.",
]
VIEWS = [
    ("Heatmap 热力图", "heatmap"),
    ("Model view 全部层×头", "model"),
    ("Token view 词元视图", "token"),
    ("Rollout vs raw 注意力展开", "rollout"),
    ("Head statistics 注意力头统计", "stats"),
    ("Translation alignment 翻译对齐", "alignment"),
]
LANGUAGES = [(lang.native_name, code) for code, lang in TRANSLATION_LANGUAGES.items()]
_SPECIAL = re.compile(r"^(\[[A-Z]+\]|<\|.*\|>|</?s>|<pad>|<unk>)$")
_CSV_DIR = Path(tempfile.mkdtemp(prefix="attention-csv-"))
_CSV_MAX_AGE_S = 3600


# --------------------------------------------------------------------------- backend access


def _backend():
    """models.backend (in-process or the Ray cluster), imported on first use so the site still starts while it is being built."""
    try:
        return importlib.import_module("models.backend")
    except ImportError as exc:
        raise user_error(RuntimeError(f"The attention backend is not available on this server ({exc}).")) from exc


def model_choices() -> list[tuple[str, str]]:
    try:
        models = importlib.import_module("models.attention").ATTENTION_MODELS
    except (ImportError, AttributeError):
        return []
    return [(label, model_id) for model_id, label in models.items()]


def _call(fn, *args, **kwargs):
    """Run the backend; its ValueError/RuntimeError messages are written for users, so show them as they are."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, RuntimeError) as exc:
        raise user_error(exc) from exc


def _check_text(text: str | None) -> str:
    if text is None or not str(text).strip():
        raise gr.Error("Type some text first. 请先输入文本。")
    return str(text)


def _check_model(model_id: str | None) -> str:
    known = [value for _, value in model_choices()]
    if model_id not in known:
        names = ", ".join(known) or "none (models/attention.py is not installed)"
        raise user_error(ValueError(f"Unknown model {model_id!r}. Choose one of: {names}."))
    return str(model_id)


def _whole_number(value, name: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not math.isfinite(number) or number != int(number):
        raise user_error(ValueError(f"{name} must be a whole number, got {value!r}"))
    return int(number)


def _head_arg(head) -> int | None:
    return None if head is None or int(head) == -1 else int(head)


# --------------------------------------------------------------------------- analysis cached per run


def analyse(result) -> dict:
    """Everything the views need from one model run, computed once (rollout and statistics are the slow parts)."""
    att = analysis.check_attentions(result.attentions)
    if len(result.tokens) != att.shape[-1]:
        raise gr.Error(f"The model returned {len(result.tokens)} tokens but {att.shape[-1]} attention positions.")
    return {
        "result": result,
        "stats": analysis.head_statistics(att, result.causal),
        "rollout": analysis.attention_rollout(att),
        "labels": analysis.position_labels(result.tokens),
    }


def default_selection(tokens: list[str]) -> list[int]:
    """The last ordinary token: in a causal model it sees the whole input, and it is never [SEP]/<|im_end|>."""
    for index in range(len(tokens) - 1, -1, -1):
        if not _SPECIAL.match(tokens[index].strip()) and tokens[index].strip() not in {".", "。", "!", "?"}:
            return [index]
    return [len(tokens) - 1]


def _matrix_frame(matrix: np.ndarray, row_labels: list[str], col_labels: list[str], corner: str) -> pd.DataFrame:
    frame = pd.DataFrame(np.round(np.asarray(matrix, dtype=np.float64), 4), columns=col_labels)
    frame.insert(0, corner, row_labels)
    return frame


def _table_for_page(matrix: np.ndarray, labels: list[str]) -> tuple[pd.DataFrame, str]:
    """A square matrix small enough for the page: pooled to 64 bins above TABLE_SIDE tokens."""
    if matrix.shape[0] <= TABLE_SIDE:
        return _matrix_frame(matrix, labels, labels, "query \\ key"), ""
    pooled, edges = analysis.pool_attention(matrix, 64, mode="mass")
    names = analysis.bin_labels(labels, edges)
    return _matrix_frame(pooled, names, names, "query \\ key"), " The table on the page is pooled to 64×64; the CSV is full size."


def _write_csv(text: str, stem: str) -> str:
    """Write a CSV (UTF-8 with BOM so spreadsheets show Chinese) named after its content; prune old ones."""
    now = time.time()
    for old in _CSV_DIR.glob("*.csv"):
        if now - old.stat().st_mtime > _CSV_MAX_AGE_S:
            old.unlink(missing_ok=True)
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)
    path = _CSV_DIR / f"{safe}_{digest}.csv"
    path.write_text(text, encoding="utf-8-sig")
    return str(path)


def _plot(fig, filename: str, image_format: str) -> PlotData:
    """Gradio's Plot passes a top-level "config" in the figure JSON to plotly.js: that is how the modebar's
    camera button gets a file name, PNG/SVG format and 2x scale."""
    config = figures.export_config(filename, image_format or "png")
    body = fig.to_json()
    return PlotData(type="plotly", plot=body[:-1] + ',"config":' + json.dumps(config) + "}")


# --------------------------------------------------------------------------- rendering one view


def render(cache: dict, view: str, layer: int, head, selected, mode: str, per_head_scale: bool,
           image_format: str, align_range: tuple[int, int] | None = None):
    """(plot, matrix table, CSV path, note) for one view of a cached run. Raises gr.Error on bad layer/head."""
    result = cache["result"]
    att = result.attentions
    tokens, labels = list(result.tokens), cache["labels"]
    n_layers, n_heads, t, _ = att.shape
    try:
        layer, head = analysis.check_layer_head(att, int(layer), _head_arg(head))
    except ValueError as exc:
        raise user_error(exc) from exc
    head_name = "all heads (average)" if head is None else f"head {head}"
    head_tag = "Hall" if head is None else f"H{head}"
    use_rollout = mode == "rollout"
    raw = analysis.select_matrix(att, layer, head)
    shown = cache["rollout"][layer] if use_rollout else raw
    what = f"rollout up to layer {layer} (all heads)" if use_rollout else f"layer {layer} · {head_name}"
    stem = f"attention_{result.model_id}_L{layer}_{head_tag}{'_rollout' if use_rollout else ''}"
    note = ""

    if view == "model":
        fig = figures.model_view_figure(att, tokens, per_head_scale=per_head_scale)
        table, pool_note = _table_for_page(raw, labels)
        csv_text = analysis.matrix_to_csv(raw, labels, labels)
        stem = f"attention_{result.model_id}_L{layer}_{head_tag}"
        note = f"Model view of all {n_layers}×{n_heads} heads. Table and CSV: layer {layer} · {head_name}.{pool_note}"
    elif view == "token":
        picked = selected or default_selection(tokens)
        try:
            flow = analysis.token_flow(shown, picked)
        except ValueError as exc:
            raise user_error(exc) from exc
        by_layer = (cache["rollout"][:, flow.selected, :].sum(1) if use_rollout
                    else analysis.paid_by_layer(att, flow.selected))
        fig = figures.token_view_figure(flow, tokens, by_layer, title=f"Token view · {what}")
        table = pd.DataFrame({"token": labels,
                              "paid by selection → this key": np.round(flow.paid.astype(np.float64), 4),
                              "received by selection ← this query": np.round(flow.received.astype(np.float64), 4)})
        csv_text = analysis.table_to_csv(list(table.columns), table.values.tolist())
        chosen = ", ".join(labels[i] for i in flow.selected)
        note = f"Selected: {chosen}. Bars sum the selected rows (paid) and columns (received) of {what}."
        stem += "_tokens"
    elif view == "rollout":
        fig = figures.rollout_figure(raw, cache["rollout"][layer], tokens, layer=layer, head_label=head_name,
                                     causal=result.causal)
        table, pool_note = _table_for_page(cache["rollout"][layer], labels)
        csv_text = analysis.matrix_to_csv(cache["rollout"][layer], labels, labels)
        stem = f"rollout_{result.model_id}_L{layer}"
        note = f"Left: raw attention, layer {layer}, {head_name}. Right: rollout through layers 0–{layer}.{pool_note}"
    elif view == "stats":
        stats = cache["stats"]
        fig = figures.head_stats_figure(stats)
        rows = stats.rows(labels)
        table = pd.DataFrame(rows, columns=list(analysis.STAT_COLUMNS))
        csv_text = analysis.table_to_csv(list(analysis.STAT_COLUMNS), rows)
        stem = f"head_stats_{result.model_id}"
        bias = (" Causal model: row 0 is skipped and entropy_bits is biased low for short inputs; "
                "compare heads with entropy_norm.") if result.causal else ""
        note = f"{n_layers * n_heads} heads; the table under 'Head statistics' sorts by any column header.{bias}"
    elif view == "alignment":
        if result.source_span is None or result.target_span is None:
            fig = figures.message_figure("Translation alignment needs a translation: "
                                         "open 'Translation alignment 翻译对齐' above and press 'Translate & align'.")
            return (_plot(fig, "alignment", image_format), None, None,
                    "No translation in this run. 这次运行没有翻译。")
        first, last = align_range or (0, n_layers - 1)
        first, last = sorted((int(first), int(last)))
        try:
            aligned = analysis.translation_alignment(att, result.source_span, result.target_span,
                                                     layers=(first, min(last, n_layers - 1)))
        except ValueError as exc:
            raise user_error(exc) from exc
        target = [tokens[i] for i in aligned.target_positions]
        source = [tokens[i] for i in aligned.source_positions]
        fig = figures.alignment_figure(aligned.matrix, target, source, layers=aligned.layers)
        target_labels = [labels[i] for i in aligned.target_positions]
        source_labels = [labels[i] for i in aligned.source_positions]
        table = _matrix_frame(aligned.matrix, target_labels, source_labels, "target \\ source")
        csv_text = analysis.matrix_to_csv(aligned.matrix, target_labels, source_labels, corner="target \\ source")
        stem = f"alignment_{result.model_id}_L{aligned.layers[0]}-{aligned.layers[1]}"
        note = (f"Rows: generated tokens; each row is the attention of the step that wrote it, averaged over "
                f"heads and layers {aligned.layers[0]}–{aligned.layers[1]}, renormalised over the source.")
    else:  # heatmap
        fig = figures.heatmap_figure(shown, tokens, title=f"{result.model_id} · {what}", causal=result.causal)
        table, pool_note = _table_for_page(shown, labels)
        csv_text = analysis.matrix_to_csv(shown, labels, labels)
        note = f"Rows are queries and sum to 1; columns are keys.{pool_note}"
    if use_rollout and view in ("heatmap", "token"):
        note += " Rollout averages all heads, so the head slider does not change it."
    return _plot(fig, stem, image_format), table, _write_csv(csv_text, stem), note


def _summary(result) -> str:
    n_layers, n_heads, t, _ = result.attentions.shape
    kind = "decoder, causal mask 因果掩码" if result.causal else "encoder, bidirectional 双向"
    cut = f" Input cut to its first {t} tokens (limit {MAX_TOKENS})." if getattr(result, "truncated", False) else ""
    return f"**{result.model_id}** · {kind} · {t} tokens · {n_layers} layers × {n_heads} heads.{cut}"


# --------------------------------------------------------------------------- event handlers


def _after_run(cache, view, layer, head, selected, mode, per_head_scale, image_format, align_range):
    result = cache["result"]
    n_layers, n_heads, t, _ = result.attentions.shape
    layer = min(max(int(layer or 0), 0), n_layers - 1)
    head = -1 if head is None or int(head) >= n_heads or int(head) < -1 else int(head)
    kept = [int(i) for i in (selected or []) if 0 <= int(i) < t]
    selected = kept or default_selection(result.tokens)
    plot, table, csv_path, note = render(cache, view, layer, head, selected, mode, per_head_scale,
                                         image_format, align_range)
    stats_rows = cache["stats"].rows(cache["labels"])
    choices = [(f"{i}: {label}", i) for i, label in enumerate(cache["labels"])]
    return [
        cache,
        gr.update(maximum=n_layers - 1, value=layer),
        gr.update(maximum=n_heads - 1, value=head),
        gr.update(choices=choices, value=selected),
        gr.update(value=view),
        plot, table, csv_path,
        _summary(result) + "  \n" + note,
        pd.DataFrame(stats_rows, columns=list(analysis.STAT_COLUMNS)),
    ]


def run_model(text, model_id, layer, head, view, selected, mode, per_head_scale, image_format,
              align_from=None, align_to=None):
    """Run the model once, cache the result, draw the chosen view."""
    text, model_id = _check_text(text), _check_model(model_id)
    result = _call(_backend().attention_for_text, text, model_id, max_tokens=MAX_TOKENS)
    cache = analyse(result)
    view = "heatmap" if view == "alignment" else (view or "heatmap")
    return _after_run(cache, view, layer, head, selected, mode, per_head_scale, image_format, None)


def run_translation(text, source, target, layer, head, selected, mode, per_head_scale, image_format):
    """Translate with the decoder, then show which source tokens each generated token attended to."""
    text = _check_text(text)
    if source == target:
        raise gr.Error("Source and target language are the same. 源语言和目标语言相同。")
    result = _call(_backend().translation_attention, text, source, target)
    if result.source_span is None or result.target_span is None:
        raise gr.Error("The translation run returned no source/target spans; cannot align.")
    cache = analyse(result)
    n_layers = result.attentions.shape[0]
    align_range = (0, n_layers - 1)  # all layers: no layer choice is known to be best for every sentence
    outputs = _after_run(cache, "alignment", layer, head, selected, mode, per_head_scale, image_format, align_range)
    return outputs + [
        gr.update(maximum=n_layers - 1, value=align_range[0]),
        gr.update(maximum=n_layers - 1, value=align_range[1]),
    ]


def rerender(cache, layer, head, view, selected, mode, per_head_scale, image_format, align_from, align_to):
    """Redraw from the cached run (no model call)."""
    if not cache:
        fig = figures.message_figure("Press 'Show attention 查看注意力' first.")
        return _plot(fig, "attention", image_format), None, None, "Nothing computed yet. 尚未运行模型。"
    plot, table, csv_path, note = render(cache, view, layer, head, selected, mode, per_head_scale, image_format,
                                         (align_from, align_to))
    return plot, table, csv_path, _summary(cache["result"]) + "  \n" + note


def attention_api(text: str, model_id: str, layer: int, head: int):
    """API `attention`: (text, model_id, layer, head; head -1 = average of heads) -> (heatmap, full matrix).

    The matrix comes back as a table whose first column holds the query tokens and whose headers are
    the key tokens (repeated tokens carry their position, e.g. 'the (4)').
    """
    text, model_id = _check_text(text), _check_model(model_id)
    if layer is None or head is None:
        raise gr.Error("layer and head are required (head -1 = average of all heads).")
    layer, head = _whole_number(layer, "layer"), _whole_number(head, "head")
    result = _call(_backend().attention_for_text, text, model_id, max_tokens=MAX_TOKENS)
    att = analysis.check_attentions(result.attentions)
    try:
        layer, head_index = analysis.check_layer_head(att, int(layer), _head_arg(head))
    except ValueError as exc:
        raise user_error(exc) from exc
    matrix = analysis.select_matrix(att, layer, head_index)
    labels = analysis.position_labels(result.tokens)
    head_name = "all heads (average)" if head_index is None else f"head {head_index}"
    fig = figures.heatmap_figure(matrix, list(result.tokens), title=f"{model_id} · layer {layer} · {head_name}",
                                 causal=result.causal)
    stem = f"attention_{model_id}_L{layer}_{'Hall' if head_index is None else f'H{head_index}'}"
    return _plot(fig, stem, "png"), _matrix_frame(matrix, labels, labels, "query \\ key")


# --------------------------------------------------------------------------- layout


def explainer(lang: str) -> str:
    path = CONTENT_DIR / f"explainer.{lang}.md"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def build(demo: gr.Blocks) -> None:
    choices = model_choices()
    gr.Markdown(
        "See which tokens each token attends to, in every layer and head of the models this site serves "
        "(weights read from the same ONNX Runtime sessions). 查看模型每一层、每个注意力头中，每个词元在关注哪些词元。"
    )
    if not choices:
        gr.Markdown("⚠️ The attention backend is not installed on this server yet. 注意力后端尚未安装。")
    cache = gr.State(None, time_to_live=1800)  # one run's weights can be ~280 MB: free them after 30 min idle
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Text 文本", value=EXAMPLES[0], lines=3, max_lines=12)
            gr.Examples(examples=[[e] for e in EXAMPLES], inputs=[text], label="Examples 示例")
        with gr.Column(scale=2):
            model = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None,
                                label="Model 模型", info="MiniLM was trained on English text; for Chinese the decoder is more telling.")
            run = gr.Button("Show attention 查看注意力", variant="primary")
    with gr.Accordion("Translation alignment 翻译对齐 (translate, then align generated and source tokens)", open=False):
        with gr.Row():
            source = gr.Dropdown(LANGUAGES, value="en", label="From 源语言")
            target = gr.Dropdown(LANGUAGES, value="zh", label="To 目标语言")
            translate = gr.Button("Translate & align 翻译并对齐")
        with gr.Row():
            align_from = gr.Slider(0, MAX_LAYERS - 1, value=0, step=1, precision=0, label="Align from layer 起始层")
            align_to = gr.Slider(0, MAX_LAYERS - 1, value=MAX_LAYERS - 1, step=1, precision=0, label="to layer 结束层")
    view = gr.Radio(VIEWS, value="heatmap", label="View 视图")
    with gr.Row():
        layer = gr.Slider(0, MAX_LAYERS - 1, value=0, step=1, precision=0, label="Layer 层 (0-based)")
        head = gr.Slider(-1, MAX_HEADS - 1, value=-1, step=1, precision=0,
                         label="Head 注意力头 (−1 = all heads averaged 全部平均)")
        mode = gr.Radio([("raw 原始", "raw"), ("rollout 展开", "rollout")], value="raw",
                        label="Weights 权重", info="heatmap and token view")
    with gr.Row():
        tokens = gr.Dropdown(choices=[], value=[], multiselect=True, scale=3,
                             label="Tokens for token view 词元视图中选中的词元", info="filled after a run")
        per_head_scale = gr.Checkbox(value=True, label="Model view: scale each head to its own peak 每个头单独配色")
        image_format = gr.Radio(["png", "svg"], value="png", label="Camera button saves 导出格式")
    note = gr.Markdown()
    plot = gr.Plot(label="Attention 注意力")
    csv_file = gr.File(label="CSV of what is shown 下载当前数据 (CSV)")
    with gr.Accordion("Head statistics 注意力头统计表 (sortable)", open=False):
        stats_table = gr.Dataframe(headers=list(analysis.STAT_COLUMNS), interactive=False, show_search="filter",
                                   max_height=420)
    with gr.Accordion("Numbers behind the figure 图中的数值", open=False):
        matrix_table = gr.Dataframe(interactive=False, max_height=420, pinned_columns=1)
    with gr.Accordion("How to read attention 如何阅读注意力图", open=False):
        with gr.Tabs():
            with gr.Tab("中文"):
                gr.Markdown(explainer("zh"))
            with gr.Tab("English"):
                gr.Markdown(explainer("en"))

    view_controls = [layer, head, view, tokens, mode, per_head_scale, image_format, align_from, align_to]
    run_outputs = [cache, layer, head, tokens, view, plot, matrix_table, csv_file, note, stats_table]
    run_inputs = [text, model, layer, head, view, tokens, mode, per_head_scale, image_format]
    for trigger in (run.click, text.submit):
        trigger(run_model, run_inputs, run_outputs, api_visibility="private")
    translate.click(
        run_translation,
        [text, source, target, layer, head, tokens, mode, per_head_scale, image_format],
        run_outputs + [align_from, align_to],
        api_visibility="private",
    )
    redraw_outputs = [plot, matrix_table, csv_file, note]
    for control in (view, tokens, mode, per_head_scale, image_format):
        control.input(rerender, [cache, *view_controls], redraw_outputs, api_visibility="private",
                      show_progress="minimal")
    for slider in (layer, head, align_from, align_to):
        slider.release(rerender, [cache, *view_controls], redraw_outputs, api_visibility="private",
                       show_progress="minimal")

    # The public API: an event no visible control fires, so its signature is exactly what the API promises.
    api_trigger = gr.Button(visible=False)
    # Plain numbers for the API, not the sliders: Slider preprocessing rejects "nan" with Gradio's generic
    # error before attention_api can say what is wrong; attention_api validates layer and head itself.
    api_layer, api_head = gr.Number(visible=False), gr.Number(visible=False)
    api_trigger.click(attention_api, [text, model, api_layer, api_head], [plot, matrix_table], api_name="attention")
