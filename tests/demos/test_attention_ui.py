"""The attention tab's views and handlers on synthetic weights (no ONNX needed): the model runs of
models.attention are replaced by functions returning real AttentionResults with random softmax weights.
tests/demos/test_attention_tab_models.py drives the same handlers with the real exported models."""
from __future__ import annotations

import csv
import json
import time
import types

import gradio as gr
import numpy as np
import pytest

from demos import attention as tab
from demos import attention_figures as figures
from models import attention_analysis as aa
from models.attention import AttentionResult

SHAPES = {"minilm-l6-v2": (6, 12, False), "smollm2-135m-instruct": (30, 9, True)}


def synthetic_attention(layers, heads, t, causal, seed=0) -> np.ndarray:
    """Random logits -> softmax, one layer at a time (30 x 9 x 512 x 512 is 280 MB in float32)."""
    rng = np.random.default_rng(seed)
    out = np.empty((layers, heads, t, t), dtype=np.float32)
    future = np.triu(np.ones((t, t), dtype=bool), k=1)
    for layer in range(layers):
        logits = rng.standard_normal((heads, t, t), dtype=np.float32) * 2
        if causal:
            logits[:, future] = -np.inf
        logits -= logits.max(-1, keepdims=True)
        np.exp(logits, out=logits)
        out[layer] = logits / logits.sum(-1, keepdims=True)
    return out


def synthetic_tokens(text: str) -> list[str]:
    return text.replace(".", " .").split() or ["?"]


@pytest.fixture
def backend(monkeypatch):
    """models.attention's two model runs replaced by synthetic ones that count their calls."""
    calls = []

    def attention_for_text(text, model_id, max_tokens=512):
        calls.append(("text", text, model_id))
        if model_id not in SHAPES:
            raise ValueError(f"unknown model {model_id}")
        layers, heads, causal = SHAPES[model_id]
        words = synthetic_tokens(text)
        tokens = (["[CLS]"] if not causal else []) + words + (["[SEP]"] if not causal else [])
        special = ([] if causal else [True]) + [False] * len(words) + ([] if causal else [True])
        return AttentionResult(model_id, tokens[:max_tokens], synthetic_attention(layers, heads, len(tokens), causal),
                               causal, special=special[:max_tokens])

    def translation_attention(text, source, target):
        calls.append(("translate", text, source, target))
        prompt, src, sep, out = ["<|im_start|>", "Translate:"], synthetic_tokens(text), ["<|im_end|>"], ["小猫", "累", "了", "。"]
        tokens = prompt + src + sep + out
        special = [token.startswith("<|") for token in tokens]
        s0 = len(prompt)
        g0 = s0 + len(src) + len(sep)
        return AttentionResult("qwen2.5-coder-0.5b-instruct", tokens, synthetic_attention(24, 14, len(tokens), True),
                               True, special=special, source_span=(s0, s0 + len(src)), target_span=(g0, len(tokens)))

    monkeypatch.setattr(tab.backend, "attention_for_text", attention_for_text)
    monkeypatch.setattr(tab.backend, "translation_attention", translation_attention)
    return types.SimpleNamespace(calls=calls, attention_for_text=attention_for_text)


def plot_json(plot) -> dict:
    return json.loads(plot.plot)


RUN_DEFAULTS = dict(view="heatmap", selected=[], mode="raw", per_head_scale=True, image_format="png")


def run(text="The cat sat on the mat because it was tired.", model="minilm-l6-v2", layer=0, head=-1, **kw):
    args = {**RUN_DEFAULTS, **kw}
    return tab.run_model(text, model, layer, head, args["view"], args["selected"], args["mode"],
                         args["per_head_scale"], args["image_format"])


# ------------------------------------------------------------------ figures at 512 tokens


@pytest.fixture(scope="module")
def long_inputs():
    tokens = [f"w{i}" for i in range(512)]
    return {(30, 9): synthetic_attention(30, 9, 512, causal=True), (6, 12): synthetic_attention(6, 12, 512, causal=False),
            "tokens": tokens}


@pytest.mark.parametrize("grid", [(30, 9), (6, 12)])
def test_model_view_of_512_tokens_is_one_heatmap_tiled_by_layer_and_head(long_inputs, grid):
    att, tokens = long_inputs[grid], long_inputs["tokens"]
    start = time.perf_counter()
    fig = figures.model_view_figure(att, tokens)
    built = time.perf_counter() - start
    payload = fig.to_json()
    total = time.perf_counter() - start
    print(f"\nmodel view {grid[0]}x{grid[1]} heads, 512 tokens: figure {built:.3f}s, "
          f"+JSON {total:.3f}s, {len(payload) / 1e6:.1f} MB")
    assert len(fig.data) == 1 and fig.data[0].type == "heatmap"
    rows, cols = np.asarray(fig.data[0].z).shape
    bins = (rows + 1) // grid[0] - 1
    assert (rows, cols) == (grid[0] * (bins + 1) - 1, grid[1] * (bins + 1) - 1)
    assert rows * cols <= figures.MODEL_VIEW_CELLS
    assert len(fig.layout.yaxis.ticktext) == grid[0] and len(fig.layout.xaxis.ticktext) == grid[1]
    assert len(set(fig.data[0].x)) == cols  # gap columns must not merge into other categories


def test_model_view_tiles_show_each_heads_own_pattern():
    t = 8
    eye, first = np.eye(t), np.zeros((t, t))
    first[:, 0] = 1
    att = np.asarray([[eye, first]], dtype=np.float32)
    fig = figures.model_view_figure(att, [f"t{i}" for i in range(t)], per_head_scale=False)
    z = np.asarray(fig.data[0].z)
    np.testing.assert_allclose(z[:t, :t], eye)  # head 0 tile
    np.testing.assert_allclose(z[:t, t + 1:], first)  # head 1 tile after a one-cell gap
    assert np.isnan(z[:, t]).all()


def test_heatmap_of_512_tokens_keeps_full_resolution_and_readable_hover(long_inputs):
    tokens = long_inputs["tokens"]
    fig = figures.heatmap_figure(long_inputs[(6, 12)][0, 0], tokens, title="L0 H0")
    assert np.asarray(fig.data[0].z).shape == (512, 512)
    assert "query %{y} → key %{x}: %{z:.4f}" in fig.data[0].hovertemplate


def test_heatmap_escapes_special_tokens_and_greys_out_the_causal_mask():
    m = np.tril(np.ones((3, 3))) / np.arange(1, 4)[:, None]
    fig = figures.heatmap_figure(m, ["<|im_start|>", "猫", "<b>"], causal=True)
    assert list(fig.data[0].x) == ["&lt;|im_start|&gt;", "猫", "&lt;b&gt;"]
    z = np.asarray(fig.data[0].z)
    assert np.isnan(z[0, 1]) and z[1, 0] == pytest.approx(0.5)


def test_every_view_figure_builds_for_512_tokens(long_inputs):
    att, tokens = long_inputs[(30, 9)], long_inputs["tokens"]
    flow = aa.token_flow(att[3].mean(0), [10, 500])
    assert figures.token_view_figure(flow, tokens, aa.paid_by_layer(att, [10, 500])).data
    rolled = aa.attention_rollout(att)
    fig = figures.rollout_figure(att[5].mean(0), rolled[5], tokens, layer=5, causal=True)
    assert len(fig.data) == 2 and np.asarray(fig.data[1].z).shape == (256, 256)
    assert figures.head_stats_figure(aa.head_statistics(att, causal=True)).data
    aligned = aa.translation_alignment(att, (2, 200), (300, 512))
    fig = figures.alignment_figure(aligned.matrix, tokens[300:], tokens[2:200], layers=aligned.layers)
    assert np.asarray(fig.data[0].z).shape == (212, 198)


def test_camera_button_exports_png_or_svg_with_a_file_name():
    plot = tab._plot(figures.message_figure("hi"), "attention minilm/L2", "svg")
    config = plot_json(plot)["config"]
    assert config["toImageButtonOptions"]["format"] == "svg"
    assert config["toImageButtonOptions"]["filename"] == "attention_minilm_L2"
    assert config["toImageButtonOptions"]["scale"] == 2
    with pytest.raises(ValueError):
        figures.export_config("x", "gif")


# ------------------------------------------------------------------ the tab and its handlers


def test_tab_builds_inside_blocks_and_exposes_the_attention_api(backend):
    with gr.Blocks() as demo:
        tab.build(demo)
    endpoints = {fn.api_name: fn for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert list(endpoints) == ["attention"]
    api = endpoints["attention"]
    assert [type(c).__name__ for c in api.inputs] == ["Textbox", "Dropdown", "Number", "Number"]
    assert [type(c).__name__ for c in api.outputs] == ["Plot", "Dataframe"]


def test_explainer_is_loaded_in_both_languages():
    for lang in ("en", "zh"):
        text = tab.explainer(lang)
        assert "softmax(QKᵀ / √d_k) V" in text and "Abnar & Zuidema 2020" in text


def test_api_returns_figure_and_labelled_matrix(backend):
    plot, matrix = tab.attention_api("The cat sat on the mat.", "minilm-l6-v2", 2, -1)
    assert "→" in plot_json(plot)["data"][0]["hovertemplate"]
    assert list(matrix.columns)[:3] == ["query \\ key", "[CLS]", "The"]
    assert matrix.shape == (9, 10)
    np.testing.assert_allclose(matrix.iloc[:, 1:].sum(axis=1), 1.0, atol=1e-3)


@pytest.mark.parametrize(
    "args, message",
    [
        (("   ", "minilm-l6-v2", 0, 0), "Type some text first"),
        (("hello", "gpt-5", 0, 0), "Unknown model 'gpt-5'"),
        (("hello", "minilm-l6-v2", 6, 0), "layer 6 is out of range: this model has 6 layers"),
        (("hello", "minilm-l6-v2", 0, 12), "head 12 is out of range"),
        (("hello", "smollm2-135m-instruct", 0, -2), "head -2 is out of range"),
    ],
)
def test_api_rejects_bad_input_with_a_clear_error(backend, args, message):
    with pytest.raises(gr.Error, match=message):
        tab.attention_api(*args)


def test_backend_errors_reach_the_user_as_gr_error(backend, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("input is longer than the model's context")

    monkeypatch.setattr(tab.backend, "attention_for_text", broken)
    with pytest.raises(gr.Error, match="longer than the model's context"):
        run()


def test_run_updates_sliders_and_token_choices_to_the_model(backend):
    out = run(model="smollm2-135m-instruct", layer=40, head=20)
    cache, layer, head, token_choices = out[0], out[1], out[2], out[3]
    assert layer["maximum"] == 29 and layer["value"] == 29
    assert head["maximum"] == 8 and head["value"] == -1
    assert token_choices["choices"][0] == ("0: The", 0)
    assert token_choices["value"] == [9]  # the last word ("tired"), not the full stop
    assert cache.result.attentions.shape[:2] == (30, 9)


def test_changing_view_layer_and_head_redraws_without_running_the_model_again(backend):
    cache = run()[0]
    assert len(backend.calls) == 1
    for view in ("heatmap", "model", "token", "rollout", "stats"):
        for mode in ("raw", "rollout"):
            plot, table, csv_path, note = tab.rerender(cache, 3, 5, view, [2, 4], mode, True, "png", 0, 5)
            assert plot_json(plot)["data"] and len(table) > 0 and csv_path.endswith(".csv"), (view, mode)
    assert len(backend.calls) == 1


def test_rerender_rejects_a_head_the_model_does_not_have(backend):
    cache = run()[0]
    with pytest.raises(gr.Error, match="head 12 is out of range"):
        tab.rerender(cache, 0, 12, "heatmap", [], "raw", True, "png", 0, 5)


def test_csv_download_holds_the_matrix_shown_with_safe_labels(backend):
    out = run(text="=cmd +1 sat -x", view="heatmap", layer=1, head=3)
    csv_path = out[7]
    assert csv_path.endswith(".csv") and "L1_H3" in csv_path
    with open(csv_path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["query \\ key", "[CLS]", "'=cmd", "'+1", "sat", "'-x", "[SEP]"]
    expected = out[0].result.attentions[1, 3]
    np.testing.assert_allclose(np.array(rows[2][1:], dtype=float), expected[1], atol=1e-6)


def test_head_statistics_table_has_a_row_per_head(backend):
    out = run(view="stats")
    stats = out[9]
    assert list(stats.columns) == list(aa.STAT_COLUMNS)
    assert len(stats) == 6 * 12
    plot, table, _, note = tab.rerender(out[0], 0, -1, "stats", [], "raw", True, "png", 0, 5)
    assert len(table) == 72 and "sort" in note


def test_translation_alignment_rows_are_generated_tokens_over_the_source(backend):
    out = tab.run_translation("The cat is tired.", "en", "zh", 0, -1, [], "raw", True, "png")
    assert out[4]["value"] == "alignment"
    table = out[6]
    assert list(table.iloc[:, 0]) == ["小猫", "累", "了", "。"]
    assert list(table.columns)[1:] == ["The", "cat", "is", "tired", "."]
    np.testing.assert_allclose(table.iloc[:, 1:].sum(axis=1), 1.0, atol=1e-3)
    assert (out[-2]["value"], out[-1]["value"]) == (0, 23) and out[-1]["maximum"] == 23  # all 24 layers


def test_translation_rejects_identical_languages(backend):
    with pytest.raises(gr.Error, match="Source and target language are the same"):
        tab.run_translation("hello", "en", "en", 0, -1, [], "raw", True, "png")


def test_alignment_view_without_a_translation_says_what_to_do(backend):
    cache = run()[0]
    plot, table, csv_path, note = tab.rerender(cache, 0, -1, "alignment", [], "raw", True, "png", 0, 5)
    assert "press 'Translate &amp; align'" in plot_json(plot)["layout"]["annotations"][0]["text"]
    assert table is None and csv_path is None


def test_redraw_before_any_run_asks_for_a_run_instead_of_failing():
    plot, table, csv_path, note = tab.rerender(None, 0, -1, "heatmap", [], "raw", True, "png", 0, 5)
    assert "Show attention" in plot_json(plot)["layout"]["annotations"][0]["text"]
    assert table is None and csv_path is None


def test_parity_note_quotes_the_committed_measurement():
    from models.attention import variant_checks

    checks, env = variant_checks()
    assert checks, "eval/results/attention_variants.json is committed"
    note = tab.measured_note()
    shown = [c for c in checks if c.shown_by_tab]
    assert all(c.max_abs_diff <= 0.005 for c in shown)  # the bar for what the tab shows
    assert f"{max(c.max_abs_diff for c in shown):.1e}" in note and env["git_commit"][:8] in note
    for check in checks:
        if check.served_on_cpu and not check.shown_by_tab:
            assert f"differ by up to {check.max_abs_diff:.3f}" in note


def test_parity_note_says_when_nothing_was_measured(monkeypatch, tmp_path):
    monkeypatch.setattr(tab.backend, "VARIANTS_RESULTS", tmp_path / "missing.json")
    assert "has not been measured" in tab.measured_note()
