"""Translate tab: English <-> 中文 (and ja/ko/fr/de/es) with Qwen2.5-Coder-0.5B-Instruct from ONNX Runtime."""
from __future__ import annotations

import json
from collections.abc import Iterator

import gradio as gr

from demos.common import badge, cancellable_stream, decoder_queue, user_error
from models.backend import model_info, translate_stream
from models.languages import LANGUAGES, display_choices
from models.paths import REPO_ROOT
from models.runtime import RuntimeUnavailable
from models.translate import MAX_INPUT_CHARS, TRANSLATION_MODEL, design_for, served_variant_decision

RESULTS_FILE = REPO_ROOT / "eval" / "results" / "translation_prompts.json"
EXAMPLES = [
    ["Startups that build on large language models must keep inference costs under control.", "en", "zh"],
    ["Our team ships a new version every week and talks to customers every day.", "en", "zh"],
    ["大模型创业公司最重要的优势往往是独特的数据和对行业的深刻理解。", "zh", "en"],
    ["我们计划下个季度在上海开设第二个办公室。", "auto", "en"],
    ["The meeting has been moved to Thursday afternoon.", "en", "ja"],
    ["Where is the nearest train station?", "en", "fr"],
]


def _quality_section(results: dict, variant: str) -> str:
    """Test-split scores of the served prompt per direction, for the served variant beside fp32."""
    rows = {(r["variant"], r["design"], r["direction"], r["split"]): r for r in results["rows"]}
    lines = [f"| direction | prompt | chrF ({variant}, served) | chrF fp32 | BLEU ({variant}) | items |",
             "|---|---|---|---|---|---|"]
    for direction in dict.fromkeys(r["direction"] for r in results["rows"]):
        design = design_for(*direction.split("-"))
        served, fp32 = rows.get((variant, design, direction, "test")), rows.get(("fp32", design, direction, "test"))
        if served and fp32:
            lines.append(f"| {direction} | {design} | {served['chrf']:.1f} | {fp32['chrf']:.1f} | "
                         f"{served['bleu']:.1f} | {served['n']} of {served['of']} |")
    choices = "; ".join(f"{direction} ({c['n']} items): " +
                        ", ".join(f"{name} {score:.1f}" for name, score in c["dev_chrf"].items()) +
                        {True: " (fp32 ranks the same prompt first)", False: " (fp32 ranks another prompt first)",
                         None: ""}[c.get("fp32_agrees")]
                        for direction, c in results["choices"].items())
    return (f"**Quality on our own test split** (hand-written pairs never used to pick the prompt, "
            f"eval/translation_devset.jsonl; {results['created_utc'][:10]}, commit {results['commit'][:10]}, "
            f"{results['environment']['cpu']}; `python -m eval.translation_prompts report`). BLEU uses sacrebleu's "
            "zh tokenizer for Chinese and characters for ja/ko; where fewer items than the split holds were scored, the "
            "CPU budget ran out first:\n\n" + "\n".join(lines) +
            f"\n\n**Prompt**: {results['choice_rule']} (designs compared: {choices}).")


def model_card() -> str:
    lines = [
        "**Model**: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, dequantized, exported to ONNX) · prompted as a translator "
        "that outputs only the translation · greedy decoding, sentence by sentence.",
        f"**Input limit**: {MAX_INPUT_CHARS:,} characters per request; long text is split into sentences and "
        "paragraph breaks are kept. 单次最多 {0:,} 个字符，长文本按句翻译并保留段落。".format(MAX_INPUT_CHARS),
    ]
    try:
        decision = served_variant_decision()
        lines.append(f"**Served variant**: {decision.variant} — {decision.reason}.")
        variant = decision.variant
    except RuntimeUnavailable as exc:  # not exported yet: the scores still say what was measured
        lines.append(f"**Served variant**: unknown until the model is exported ({exc}).")
        variant = "fp32"
    try:
        lines.append(_quality_section(json.loads(RESULTS_FILE.read_text(encoding="utf-8")), variant))
    except (OSError, ValueError, KeyError, AttributeError):
        lines.append("Quality scores: run `python -m eval.translation_prompts report` to measure them on the dev set.")
    lines.append("Limits: a 0.5B model — fine for everyday and business sentences, weaker on idioms, rare terms and "
                 "long sentences; it can occasionally answer instead of translating. Check important text.")
    return "\n\n".join(lines)


def run_translation(text: str, source: str, target: str):
    """UI handler: streams (translation, badge)."""
    try:
        info = model_info(TRANSLATION_MODEL)
        update = None
        for update in translate_stream(text, source, target):
            extra = f"{update.segments_done}/{update.segments_total} segments · {update.tokens} tokens"
            if update.note:
                extra += f" · {update.note}"
            yield update.text, badge(info.provider, info.precision, update.tokens_per_s, update.ttft_ms, extra)
    except (ValueError, RuntimeUnavailable) as exc:  # bad input, or the model cannot be served
        raise user_error(exc) from None


def translate_api(text: str, source: str = "auto", target: str = "zh") -> Iterator[str]:
    """Translate text. source/target are ISO codes: en, zh, ja, ko, fr, de, es (source may be "auto").

    Streams the translation so far; paragraph breaks are kept. Errors (empty text, same languages,
    unsupported code, text over the limit) come back as a clear message.
    """
    try:
        for update in translate_stream(text, source, target):
            yield update.text
    except (ValueError, RuntimeUnavailable) as exc:  # bad input, or the model cannot be served
        raise user_error(exc) from None


def swap(source: str, target: str, text: str, translation: str):
    """Swap languages (and move the translation into the input, as translators do)."""
    new_target = source if source in LANGUAGES else ("en" if target != "en" else "zh")
    return target, new_target, translation or text, ""


def build(demo: gr.Blocks) -> None:
    gr.Markdown("Translate between English and 中文 (and 日本語, 한국어, Français, Deutsch, Español), "
                "streamed from ONNX Runtime. 中英互译（以及日、韩、法、德、西），由 ONNX Runtime 实时生成。")
    with gr.Row(equal_height=True):
        source = gr.Dropdown(display_choices(include_auto=True), value="auto", label="From 源语言", scale=4)
        swap_btn = gr.Button("⇄ Swap 交换", scale=1, min_width=80)
        target = gr.Dropdown(display_choices(), value="zh", label="To 目标语言", scale=4)
    with gr.Row():
        text = gr.Textbox(label="Text 原文", lines=8, max_lines=20, max_length=MAX_INPUT_CHARS,
                          placeholder="Type or paste text… 输入或粘贴文本…", info=f"up to {MAX_INPUT_CHARS:,} characters")
        output = gr.Textbox(label="Translation 译文", lines=8, max_lines=20, interactive=False, buttons=["copy"])
    with gr.Row():
        run_btn = gr.Button("Translate 翻译", variant="primary")
        stop_btn = gr.Button("Stop 停止", variant="stop")
    status = gr.Markdown()
    gr.Examples(EXAMPLES, [text, source, target], label="Examples 示例")
    with gr.Accordion("Model card 模型说明", open=False):
        gr.Markdown(model_card())

    queue = decoder_queue(TRANSLATION_MODEL)
    # always_last: a click that lands while the previous translation is still closing (its last words are
    # already shown) runs next with the languages now chosen, instead of being dropped as Gradio's "once" does
    event = gr.on([run_btn.click], cancellable_stream(run_translation), [text, source, target], [output, status],
                  api_visibility="private", trigger_mode="always_last", **queue)
    stop_btn.click(None, None, None, cancels=[event], api_visibility="private")
    swap_btn.click(swap, [source, target, text, output], [source, target, text, output], api_visibility="private")
    gr.api(cancellable_stream(translate_api), api_name="translate", **queue)
