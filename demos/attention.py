"""Attention tab: look inside the site's ONNX models, one layer/head or all of them at once.

The model runs once per "Show attention" press (models.attention); the run, wrapped in an
AttentionAnalysis (models.attention_analysis), lives in a gr.State so that changing layer, head, view or
tokens only redraws. Each view is one function in demos.attention_views.VIEWS that turns (analysis,
ViewRequest) into a ViewResult (figure, table, CSV, note); this module checks input, writes the files and
lays out the tab. API: `attention` takes (text, model_id, layer, head) and returns
(figure, matrix with token labels).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import gradio as gr
import pandas as pd
from gradio.components.plot import PlotData

from demos import attention_figures as figures
from demos.attention_views import VIEWS, ViewRequest, heatmap_view, stats_table
from demos.common import user_error
from demos.downloads import write_download
from models import attention as backend
from models import attention_analysis as analysis
from models import backend as serving  # in-process or the Ray cluster (LAB_BACKEND)
from models.attention_analysis import AttentionAnalysis
from models.languages import display_choices

CONTENT_DIR = Path(__file__).resolve().parent.parent / "content" / "attention"
EXAMPLES = [
    "The cat sat on the mat because it was tired.",
    "小猫坐在垫子上，因为它累了。",
    "The animal didn't cross the street because it was too wide. The trophy doesn't fit into the brown "
    "suitcase because it is too large. Alice gave Bob the book, and he thanked her for it.",
]


# --------------------------------------------------------------------------- input checks


def _check_text(text: str | None) -> str:
    if text is None or not str(text).strip():
        raise gr.Error("Type some text first. 请先输入文本。")
    return str(text)


def _check_model(model_id: str | None) -> str:
    if model_id not in backend.ATTENTION_MODELS:
        raise user_error(ValueError(f"Unknown model {model_id!r}. Choose one of: {', '.join(backend.ATTENTION_MODELS)}."))
    return str(model_id)


def _whole_number(value, name: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not math.isfinite(number) or number != int(number):
        raise user_error(ValueError(f"{name} must be a whole number, got {value!r}"))
    return int(number)


def _call(fn, *args, **kwargs):
    """Run library code; its ValueError/RuntimeError messages are written for users, so show them as they are."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, RuntimeError) as exc:
        raise user_error(exc) from exc


def _request(a: AttentionAnalysis, layer, head, selected=(), mode: str = "raw", per_head_scale: bool = True,
             align_range=None) -> ViewRequest:
    """A ViewRequest checked against the run (gr.Error naming the model's real layer/head counts)."""
    head = None if head is None or int(head) == -1 else int(head)
    layer, head = _call(analysis.check_layer_head, a.result.attentions, int(layer), head)
    picked = _call(analysis.check_indices, selected, a.length) if selected else []
    return ViewRequest(layer, head, picked, mode == "rollout", bool(per_head_scale), align_range)


# --------------------------------------------------------------------------- output files


def _matrix_csv(frame: pd.DataFrame, stem: str) -> str:
    """The tab's CSV download: formula cells neutralised (models.csv_export), written by the site's one download
    helper (demos.downloads: bounded temp files, UTF-8 with BOM so spreadsheets show Chinese)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)
    return write_download(analysis.table_to_csv(list(frame.columns), frame.values.tolist()), f"{safe}.csv")


def _plot(fig, filename: str, image_format: str) -> PlotData:
    """Gradio's Plot passes a top-level "config" in the figure JSON to plotly.js: that is how the modebar's
    camera button gets a file name, PNG/SVG format and 2x scale."""
    config = figures.export_config(filename, image_format or "png")
    body = fig.to_json()
    return PlotData(type="plotly", plot=body[:-1] + ',"config":' + json.dumps(config) + "}")


def render(a: AttentionAnalysis, view: str, req: ViewRequest, image_format: str):
    """(plot, page table, CSV path, note) for one view of a run."""
    if view not in VIEWS:
        raise gr.Error(f"Unknown view {view!r}. Choose one of: {', '.join(VIEWS)}.")
    shown = _call(VIEWS[view][1], a, req)
    csv_path = _matrix_csv(shown.csv, shown.stem) if shown.csv is not None else None
    return _plot(shown.figure, shown.stem, image_format), shown.table, csv_path, _summary(a) + "  \n" + shown.note


def _summary(a: AttentionAnalysis) -> str:
    result = a.result
    kind = "decoder, causal mask 因果掩码" if result.causal else "encoder, bidirectional 双向"
    cut = f" Input cut to its first {a.length} tokens (limit {backend.MAX_TOKENS})." if result.truncated else ""
    return (f"**{result.model_id}** · {kind} · {a.length} tokens · {a.layers} layers × {a.heads} heads · "
            f"weights from the {result.variant} ONNX graph.{cut}")


# --------------------------------------------------------------------------- event handlers


def _after_run(a: AttentionAnalysis, view, layer, head, selected, mode, per_head_scale, image_format, align_range):
    """Outputs of a fresh run: sliders fitted to the model, token choices, the chosen view, the stats table."""
    layer = min(max(int(layer or 0), 0), a.layers - 1)
    head = -1 if head is None or not -1 <= int(head) < a.heads else int(head)
    kept = [int(i) for i in (selected or []) if 0 <= int(i) < a.length] or a.default_selection()
    req = _request(a, layer, head, kept, mode, per_head_scale, align_range)
    plot, table, csv_path, note = render(a, view, req, image_format)
    return [
        a,
        gr.update(maximum=a.layers - 1, value=layer),
        gr.update(maximum=a.heads - 1, value=head),
        gr.update(choices=[(f"{i}: {label}", i) for i, label in enumerate(a.labels)], value=kept),
        gr.update(value=view),
        plot, table, csv_path, note,
        stats_table(a),
    ]


def run_model(text, model_id, layer, head, view, selected, mode, per_head_scale, image_format):
    """Run the model once, keep the analysis, draw the chosen view."""
    text, model_id = _check_text(text), _check_model(model_id)
    a = _call(lambda: analysis.analyse(serving.attention_for_text(text, model_id)))
    view = "heatmap" if view == "alignment" else (view or "heatmap")
    return _after_run(a, view, layer, head, selected, mode, per_head_scale, image_format, None)


def run_translation(text, source, target, layer, head, selected, mode, per_head_scale, image_format):
    """Translate with the decoder, then show which source tokens each generated token attended to."""
    text = _check_text(text)
    if source == target:
        raise gr.Error("Source and target language are the same. 源语言和目标语言相同。")
    a = _call(lambda: analysis.analyse(serving.translation_attention(text, source, target)))
    if a.result.source_span is None or a.result.target_span is None:
        raise gr.Error("The translation came back empty, so there is nothing to align. 译文为空，无法对齐。")
    align_range = (0, a.layers - 1)  # all layers: no layer choice is known to be best for every sentence
    outputs = _after_run(a, "alignment", layer, head, selected, mode, per_head_scale, image_format, align_range)
    return outputs + [gr.update(maximum=a.layers - 1, value=0), gr.update(maximum=a.layers - 1, value=a.layers - 1)]


def rerender(a, layer, head, view, selected, mode, per_head_scale, image_format, align_from, align_to):
    """Redraw from the kept run (no model call)."""
    if a is None:
        fig = figures.message_figure("Press 'Show attention 查看注意力' first.")
        return _plot(fig, "attention", image_format), None, None, "Nothing computed yet. 尚未运行模型。"
    req = _request(a, layer, head, selected, mode, per_head_scale, (align_from, align_to))
    return render(a, view, req, image_format)


def attention_api(text: str, model_id: str, layer: int, head: int):
    """API `attention`: (text, model_id, layer, head; head -1 = average of heads) -> (heatmap, full matrix).

    The matrix comes back as a table whose first column holds the query tokens and whose headers are
    the key tokens (repeated tokens carry their position, e.g. 'the (4)').
    """
    text, model_id = _check_text(text), _check_model(model_id)
    if layer is None or head is None:
        raise gr.Error("layer and head are required (head -1 = average of all heads).")
    layer, head = _whole_number(layer, "layer"), _whole_number(head, "head")
    a = _call(lambda: analysis.analyse(serving.attention_for_text(text, model_id)))
    shown = heatmap_view(a, _request(a, layer, head))
    return _plot(shown.figure, shown.stem, "png"), shown.csv


# --------------------------------------------------------------------------- layout


def measured_note() -> str:
    """What the tab shows and how far the served quantized graphs would be from it, from the committed eval."""
    checks, env = backend.variant_checks()
    if not checks:
        return "⚠️ Attention parity has not been measured on this build (`python -m eval.attention_variants`)."
    shown = [c for c in checks if c.shown_by_tab]
    served = [c for c in checks if c.served_on_cpu and not c.shown_by_tab]
    names = {model_id: model.name for model_id, model in backend.MODELS.items()}
    worst = max(shown, key=lambda c: c.max_abs_diff)
    lines = [f"Measured against PyTorch eager fp32 on the same weights ({env.get('device_name', env.get('device'))}, "
             f"{env.get('date', '')[:10]}, commit {env.get('git_commit', '')[:8]}): the {worst.variant} graphs this "
             f"tab reads differ by at most {worst.max_abs_diff:.1e} in any attention probability."]
    lines += [f"{names.get(c.model_id, c.model_id)}'s {c.variant} graph, which serves it on CPU, would differ by up "
              f"to {c.max_abs_diff:.3f}, so the tab does not show it; the fp32 session costs "
              f"{next(s.rss_growth_mb for s in shown if s.model_id == c.model_id):.0f} MB more memory."
              for c in served]
    return " ".join(lines)


def explainer(lang: str) -> str:
    path = CONTENT_DIR / f"explainer.{lang}.md"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def build(demo: gr.Blocks) -> None:
    # Longer than 60 lines on purpose: Gradio layout reads top to bottom as the page does, and the events at
    # the end need the components it creates; the work itself is in run_model / rerender / models.attention.
    choices = [(label, model_id) for model_id, label in backend.ATTENTION_MODELS.items()]
    max_layers, max_heads = backend.MAX_LAYERS, backend.MAX_HEADS
    gr.Markdown(
        "See which tokens each token attends to, in every layer and head of the models this site serves, read "
        f"from each model's {backend.ATTENTION_VARIANT} ONNX graph. 查看模型每一层、每个注意力头中，每个词元在关注哪些词元。"
    )
    gr.Markdown(measured_note(), elem_classes="attention-parity-note")
    cache = gr.State(None, time_to_live=1800)  # one run's weights can be ~280 MB: free them after 30 min idle
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Text 文本", value=EXAMPLES[0], lines=3, max_lines=12)
            gr.Examples(examples=[[e] for e in EXAMPLES], inputs=[text], label="Examples 示例")
        with gr.Column(scale=2):
            model = gr.Dropdown(choices=choices, value=choices[0][1], label="Model 模型",
                                info="MiniLM was trained on English text; for Chinese the decoder is more telling.")
            run = gr.Button("Show attention 查看注意力", variant="primary")
    with gr.Accordion("Translation alignment 翻译对齐 (translate, then align generated and source tokens)", open=False):
        with gr.Row():
            source = gr.Dropdown(display_choices(), value="en", label="From 源语言")
            target = gr.Dropdown(display_choices(), value="zh", label="To 目标语言")
            translate = gr.Button("Translate & align 翻译并对齐")
        with gr.Row():
            align_from = gr.Slider(0, max_layers - 1, value=0, step=1, precision=0, label="Align from layer 起始层")
            align_to = gr.Slider(0, max_layers - 1, value=max_layers - 1, step=1, precision=0, label="to layer 结束层")
    view = gr.Radio([(label, key) for key, (label, _) in VIEWS.items()], value="heatmap", label="View 视图")
    with gr.Row():
        layer = gr.Slider(0, max_layers - 1, value=0, step=1, precision=0, label="Layer 层 (0-based)")
        head = gr.Slider(-1, max_heads - 1, value=-1, step=1, precision=0,
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
        stats_frame = gr.Dataframe(headers=list(analysis.STAT_COLUMNS), interactive=False, show_search="filter",
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
    run_outputs = [cache, layer, head, tokens, view, plot, matrix_table, csv_file, note, stats_frame]
    gr.on([run.click, text.submit], run_model, [text, model, layer, head, view, tokens, mode, per_head_scale,
                                                image_format], run_outputs, api_visibility="private")
    translate.click(run_translation, [text, source, target, layer, head, tokens, mode, per_head_scale, image_format],
                    run_outputs + [align_from, align_to], api_visibility="private")
    redraw_outputs = [plot, matrix_table, csv_file, note]
    gr.on([control.input for control in (view, tokens, mode, per_head_scale, image_format)]
          + [slider.release for slider in (layer, head, align_from, align_to)],
          rerender, [cache, *view_controls], redraw_outputs, api_visibility="private", show_progress="minimal")

    # The public API: an event no visible control fires, so its signature is exactly what the API promises.
    api_trigger = gr.Button(visible=False)
    # Plain numbers for the API, not the sliders: Slider preprocessing rejects "nan" with Gradio's generic
    # error before attention_api can say what is wrong; attention_api validates layer and head itself.
    api_layer, api_head = gr.Number(visible=False), gr.Number(visible=False)
    api_trigger.click(attention_api, [text, model, api_layer, api_head], [plot, matrix_table], api_name="attention")
