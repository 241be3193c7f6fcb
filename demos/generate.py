"""Generate tab: SmolLM2-135M-Instruct streaming from ONNX Runtime, with sampling controls and alternatives."""
from __future__ import annotations

import html
import secrets
from collections.abc import Iterator
from urllib.parse import urlencode

import gradio as gr

from demos.common import badge, cancellable_stream, coalesced, decoder_queue, query_param, user_error
from models.backend import generate, model_info
from models.generation import GENERATION_MODEL, MAX_PROMPT_CHARS
from models.runtime import RuntimeUnavailable
from models.sampling import MAX_NEW_TOKENS_LIMIT, SamplingSettings

DEFAULTS = SamplingSettings()
EXAMPLES = [
    ["Give me three ideas for a small business that uses AI to help local restaurants.", "chat"],
    ["Explain what a GPU is to a ten-year-old.", "chat"],
    ["Write a haiku about startups.", "chat"],
    ["Once upon a time, in a city full of robots,", "completion"],
    ["The three biggest costs of training a language model are", "completion"],
]
INTRO = (
    "SmolLM2-135M-Instruct (135M parameters) answers token by token, served from an ONNX graph by ONNX Runtime. "
    "It is small: expect simple, sometimes wrong answers — that is what a 135M model does. "
    "小模型（1.35 亿参数）逐词生成；回答简单、可能出错，这正是小模型的真实水平。"
)
# URL query keys for a shareable run (see share_query / apply_query)
SHARE_KEYS = ("prompt", "mode", "system", "max_new", "temperature", "top_k", "top_p", "rep", "seed", "stop")


def parse_stop_strings(text: str | None) -> tuple[str, ...]:
    """Stop strings are entered comma-separated; '\\n' means a newline."""
    if not text:
        return ()
    return tuple(s.replace("\\n", "\n") for s in (part.strip() for part in text.split(",")) if s)


def make_settings(max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed, stop) -> SamplingSettings:
    try:
        seed_value = None if seed is None or str(seed).strip() == "" else float(seed)
        if seed_value is not None and seed_value.is_integer():
            seed_value = int(seed_value)
        return SamplingSettings(
            max_new_tokens=int(max_new_tokens) if float(max_new_tokens).is_integer() else max_new_tokens,
            temperature=float(temperature), top_k=int(top_k) if float(top_k).is_integer() else top_k,
            top_p=float(top_p), repetition_penalty=float(repetition_penalty),
            seed=seed_value, stop_strings=parse_stop_strings(stop),
        ).validate()
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"invalid setting: {exc}") from None


def share_query(prompt, mode, system, settings: SamplingSettings, stop_text: str) -> str:
    values = {"tab": "generate", "prompt": prompt, "mode": mode, "system": system or "",
              "max_new": settings.max_new_tokens, "temperature": settings.temperature, "top_k": settings.top_k,
              "top_p": settings.top_p, "rep": settings.repetition_penalty, "seed": settings.seed, "stop": stop_text or ""}
    return "?" + urlencode({k: v for k, v in values.items() if v not in ("", None)})


def alternatives_rows(tokens: list[dict]) -> list[list]:
    rows = []
    for position, token in enumerate(tokens, 1):
        alts = token["alternatives"]
        cells = [f"{text!r} {prob:.1%}" for text, prob in alts[:5]]
        rows.append([position, repr(token["text"])] + cells + [""] * (5 - len(cells)))
    return rows


def run_generation(prompt, mode, history, system, max_new_tokens, temperature, top_k, top_p, repetition_penalty,
                   seed, stop):
    """UI handler: streams (chat history, completion text, badge, alternatives table, share link)."""
    try:
        if seed is None or str(seed).strip() == "":
            seed = secrets.randbelow(2**31)  # recorded in the share link so the run can be reproduced
        settings = make_settings(max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed, stop)
        # The Chatbot renders Markdown/HTML, so what it shows is escaped; the model sees the raw text.
        raw_history = [{"role": m["role"], "content": html.unescape(m["content"])} for m in history or []
                       if isinstance(m, dict) and isinstance(m.get("content"), str)]
        stream = generate(prompt, settings, mode=mode, history=raw_history, system_prompt=system)
        info = model_info(GENERATION_MODEL)
        share = share_query(prompt, mode, system, settings, stop)
        chat = list(history or []) + [{"role": "user", "content": html.escape(prompt)},
                                      {"role": "assistant", "content": ""}]
        for update in coalesced(stream):
            chat[-1]["content"] = html.escape(update.text)
            line = badge(info.provider, info.precision, update.tokens_per_s, update.ttft_ms,
                         extra=f"{update.n_tokens} tokens · seed {settings.seed}" + (f" · {update.note}" if update.note else ""))
            yield (chat if mode == "chat" else history, update.text, line, alternatives_rows(update.tokens), share)
    except (ValueError, RuntimeUnavailable) as exc:  # bad input, or the model cannot be served
        raise user_error(exc) from None


def generate_api(prompt: str, mode: str = "chat", max_new_tokens: int = 256, temperature: float = 0.7,
                 top_k: int = 50, top_p: float = 0.95, repetition_penalty: float = 1.1, seed: int | None = None,
                 stop: str = "", system_prompt: str = "") -> Iterator[str]:
    """Generate text with SmolLM2-135M-Instruct (ONNX Runtime), streaming the text so far.

    mode: "chat" (chat template, one user turn) or "completion" (continues raw text). temperature 0 = greedy.
    seed: same seed + settings + prompt reproduce the same text. stop: comma-separated stop strings.
    """
    try:
        settings = make_settings(max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed, stop)
        for update in generate(prompt, settings, mode=mode, system_prompt=system_prompt, alternatives=0):
            yield update.text
    except (ValueError, RuntimeUnavailable) as exc:  # bad input, or the model cannot be served
        raise user_error(exc) from None


def apply_query(request: gr.Request):
    """Fill the form from a shared link (?tab=generate&prompt=...); malformed values keep the defaults."""
    if query_param(request, "tab") != "generate" or not query_param(request, "prompt"):
        return [gr.update()] * len(SHARE_KEYS)

    def number(key, cast, default):
        try:
            return cast(query_param(request, key, default))
        except (TypeError, ValueError):
            return default

    mode = query_param(request, "mode", "chat")
    return [
        (query_param(request, "prompt") or "")[:MAX_PROMPT_CHARS],
        mode if mode in ("chat", "completion") else "chat",
        query_param(request, "system", ""),
        number("max_new", int, DEFAULTS.max_new_tokens),
        number("temperature", float, DEFAULTS.temperature),
        number("top_k", int, DEFAULTS.top_k),
        number("top_p", float, DEFAULTS.top_p),
        number("rep", float, DEFAULTS.repetition_penalty),
        str(number("seed", int, "")),
        query_param(request, "stop", ""),
    ]


def build(demo: gr.Blocks) -> None:
    gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column(scale=3):
            mode = gr.Radio(["chat", "completion"], value="chat", label="Mode 模式",
                            info="chat uses the model's chat template; completion continues your text")
            chatbot = gr.Chatbot(label="Conversation 对话", height=360, buttons=["copy", "copy_all"])
            completion = gr.Textbox(label="Output 输出", lines=8, interactive=False, visible=False, buttons=["copy"])
            prompt = gr.Textbox(label="Prompt 提示词", lines=3, max_lines=12,
                                placeholder="Ask something, or start a text to continue…",
                                info=f"up to {MAX_PROMPT_CHARS:,} characters")
            with gr.Row():
                run_btn = gr.Button("Generate 生成", variant="primary")
                stop_btn = gr.Button("Stop 停止", variant="stop")
                clear_btn = gr.Button("Clear 清空")
            status = gr.Markdown(elem_id="generate-badge")
        with gr.Column(scale=2):
            with gr.Accordion("Settings 参数", open=True):
                system = gr.Textbox(label="System prompt 系统提示", lines=2,
                                    placeholder="(optional) e.g. You are a concise assistant.")
                max_new = gr.Slider(1, MAX_NEW_TOKENS_LIMIT, value=DEFAULTS.max_new_tokens, step=1, label="Max new tokens")
                temperature = gr.Slider(0, 2, value=DEFAULTS.temperature, step=0.05, label="Temperature (0 = greedy)")
                top_k = gr.Slider(0, 200, value=DEFAULTS.top_k, step=1, label="Top-k (0 = off)")
                top_p = gr.Slider(0.05, 1, value=DEFAULTS.top_p, step=0.01, label="Top-p (1 = off)")
                rep = gr.Slider(1, 2, value=DEFAULTS.repetition_penalty, step=0.01, label="Repetition penalty (1 = off)")
                # a Textbox, not gr.Number: Number shows and submits 0 when empty, which would pin every run to seed 0
                seed = gr.Textbox(label="Seed (empty = random; the seed used is shown)", value="", max_lines=1)
                stop = gr.Textbox(label="Stop strings (comma-separated, \\n for newline)", value="")
            share = gr.Textbox(label="Share link (reproduces this run) 分享链接", interactive=False, buttons=["copy"])
    with gr.Accordion("Show alternatives: the model's top-5 next tokens at each step 每步前 5 个候选词", open=False):
        alternatives = gr.Dataframe(headers=["#", "token", "1st", "2nd", "3rd", "4th", "5th"],
                                    interactive=False, wrap=True)
    gr.Examples(EXAMPLES, [prompt, mode], label="Examples 示例")

    settings = [system, max_new, temperature, top_k, top_p, rep, seed, stop]
    mode.change(lambda m: (gr.update(visible=m == "chat"), gr.update(visible=m == "completion")),
                mode, [chatbot, completion], api_visibility="private")
    outputs = [chatbot, completion, status, alternatives, share]
    run_inputs = [prompt, mode, chatbot] + settings
    queue = decoder_queue(GENERATION_MODEL)
    run_event = gr.on([run_btn.click, prompt.submit], cancellable_stream(run_generation), run_inputs, outputs,
                      api_visibility="private", **queue)
    stop_btn.click(None, None, None, cancels=[run_event], api_visibility="private")
    clear_btn.click(lambda: ([], "", "", [], ""), None, outputs, api_visibility="private")
    share.change(None, share, None, js="(q) => { if (q) { history.replaceState(null, '', q); } }",
                 api_visibility="private")
    gr.api(cancellable_stream(generate_api), api_name="generate", **queue)
    demo.load(apply_query, None, [prompt, mode, system, max_new, temperature, top_k, top_p, rep, seed, stop],
              api_visibility="private", show_progress="hidden")
