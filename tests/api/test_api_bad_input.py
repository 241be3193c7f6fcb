"""Bad and unusual input through every public API: a clear message (never gradio's generic error, never a
traceback) or a sensible answer, and a healthy server afterwards.
"""
from __future__ import annotations

import re

import pytest
from gradio_client.exceptions import AppError

from tests.api.site_checks import assert_clear_message, assert_healthy, assert_no_leaks

pytestmark = pytest.mark.integration

LONG = "a" * 100_000
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
CONTROL = "\x01\x02\x07\x1b[31m\x7f"
EMOJI = "🙂🚀👩‍👩‍👧 🍕"
RTL = "مرحبا بالعالم שלום עולם"
MIXED = "Hello 你好 こんにちは 안녕하세요 Привет"
MAX_MESSAGE_CHARS = 1000  # an error must not echo a 100k-character input back into the page


def gen(prompt="Hi", mode="chat", max_new=4, temperature=0, top_k=50, top_p=0.95, rep=1.1, seed=1, stop="",
        system=""):
    return ("/generate", (prompt, mode, max_new, temperature, top_k, top_p, rep, seed, stop, system))


def tr(text="Hello.", source="en", target="zh"):
    return ("/translate", (text, source, target))


def att(text="The cat sat.", model="minilm-l6-v2", layer=0, head=-1):
    return ("/attention", (text, model, layer, head))


def cls(text):
    return ("/classify", (text,))


def est(params="7e9", tokens="2e12", gpu="H100-80GB", gpus=8, mfu="", price="", active="", preset="custom",
        price_kind="on-demand", pue=1.2, grid=0.4, storage="", egress=""):
    return ("/estimate_training",
            (params, tokens, gpu, gpus, mfu, price, active, preset, price_kind, pue, grid, storage, egress))


ERROR_CASES = [
    # generate: text fields
    pytest.param(gen(""), "prompt is empty", id="generate-empty"),
    pytest.param(gen(" \n\t  "), "prompt is empty", id="generate-whitespace"),
    pytest.param(gen(LONG), "limit is 20,000", id="generate-100k-chars"),
    pytest.param(gen("\x00\x00"), "prompt is empty", id="generate-nul-only"),
    pytest.param(gen(["a list"]), "must be text", id="generate-prompt-not-a-string"),
    pytest.param(gen(mode=SCRIPT), "mode must be one of", id="generate-mode-injection"),
    pytest.param(gen(stop=LONG), "stop strings", id="generate-stop-100k"),
    pytest.param(gen(system=LONG), "system prompt", id="generate-system-100k"),
    # generate: numbers
    pytest.param(gen(max_new=-5), "max_new_tokens must be between 1 and 1024", id="generate-negative-max-tokens"),
    pytest.param(gen(max_new=10**6), "max_new_tokens must be between 1 and 1024", id="generate-huge-max-tokens"),
    pytest.param(gen(max_new=1.5), "whole number", id="generate-fractional-max-tokens"),
    pytest.param(gen(max_new="nan"), "max_new_tokens must be a finite number", id="generate-nan-max-tokens"),
    pytest.param(gen(temperature=99), "temperature must be between 0", id="generate-temperature-99"),
    pytest.param(gen(temperature="nan"), "temperature must be a finite number", id="generate-nan-temperature"),
    pytest.param(gen(temperature="inf"), "temperature must be a finite number", id="generate-inf-temperature"),
    pytest.param(gen(top_k=-1), "top_k", id="generate-negative-top-k"),
    pytest.param(gen(top_p=0), "top_p", id="generate-top-p-zero"),
    pytest.param(gen(rep=10), "repetition_penalty", id="generate-repetition-penalty-10"),
    pytest.param(gen(seed=-1), "seed must be a whole number", id="generate-negative-seed"),
    # translate
    pytest.param(tr(""), "text is empty", id="translate-empty"),
    pytest.param(tr("   \n "), "text is empty", id="translate-whitespace"),
    pytest.param(tr(LONG), "limit is 3,000", id="translate-100k-chars"),
    pytest.param(tr("\x00"), "text is empty", id="translate-nul-only"),
    pytest.param(tr(target="en"), "choose a different target", id="translate-same-languages"),
    pytest.param(tr(target="xx"), "unsupported language", id="translate-unknown-target"),
    pytest.param(tr(source=SCRIPT), "unsupported language", id="translate-source-injection"),
    pytest.param(tr(source=None), "unsupported language", id="translate-source-missing"),
    # attention
    pytest.param(att(""), "type some text", id="attention-empty"),
    pytest.param(att("  "), "type some text", id="attention-whitespace"),
    pytest.param(att("\x00"), "text is empty", id="attention-nul-only"),
    pytest.param(att(model="gpt-4"), "not in the list of choices", id="attention-unknown-model"),
    pytest.param(att(model=IMG), "not in the list of choices", id="attention-model-injection"),
    pytest.param(att(layer=6), "this model has 6 layers", id="attention-layer-past-the-model"),
    pytest.param(att(head=12), "this model has 12 heads", id="attention-head-past-the-model"),
    pytest.param(att(layer=99), "out of range: this model has 6 layers", id="attention-layer-99"),
    pytest.param(att(head=-3), "head -3 is out of range", id="attention-head-negative"),
    pytest.param(att(layer="nan"), "layer", id="attention-nan-layer"),
    # classify
    pytest.param(cls(""), "text is empty", id="classify-empty"),
    pytest.param(cls(" \n "), "text is empty", id="classify-whitespace"),
    pytest.param(cls("\x00\x00"), "text is empty", id="classify-nul-only"),
    pytest.param(cls("\x01\x02\x07\x1b\x7f"), "text is empty", id="classify-control-characters-only"),
    # estimate_training
    pytest.param(est(params=""), "cannot read", id="costs-empty-params"),
    pytest.param(est(params="   "), "cannot read", id="costs-whitespace-params"),
    pytest.param(est(params="nan"), "params must be a finite number", id="costs-nan-params"),
    pytest.param(est(tokens="inf"), "tokens must be a finite number", id="costs-inf-tokens"),
    pytest.param(est(params="-7e9"), "greater than zero", id="costs-negative-params"),
    pytest.param(est(params=SCRIPT), "cannot read", id="costs-params-injection"),
    pytest.param(est(params="7" + EMOJI), "cannot read", id="costs-params-emoji"),
    pytest.param(est(gpu=IMG), "not in the list of choices", id="costs-gpu-injection"),
    pytest.param(est(preset="nope"), "not in the list of choices", id="costs-unknown-preset"),
    pytest.param(est(mfu="5"), "mfu must be a fraction", id="costs-mfu-5"),
    pytest.param(est(mfu="nan"), "mfu must be a finite number", id="costs-nan-mfu"),
    pytest.param(est(price="-3"), "must not be negative", id="costs-negative-price"),
    pytest.param(est(pue="nan"), "PUE must be a finite number", id="costs-nan-pue"),
    pytest.param(est(gpus=-4), "greater than zero", id="costs-negative-gpus"),
    pytest.param(est(active="9e9"), "active params cannot exceed", id="costs-active-over-total"),
    pytest.param(est(params="1e40"), "params", id="costs-huge-params"),
    pytest.param(est(gpus=10**30), "gpus", id="costs-huge-gpus"),
    pytest.param(est(gpus="nan"), "gpus", id="costs-nan-gpus"),
    pytest.param(est(params="1" * 100_000), "params", id="costs-100k-digit-params"),
]


@pytest.mark.parametrize("case, expected", ERROR_CASES)
def test_bad_input_gets_a_clear_message_and_the_site_stays_healthy(client, site_url, case, expected):
    api_name, args = case
    with pytest.raises(AppError) as raised:
        client.predict(*args, api_name=api_name)
    message = str(raised.value)
    assert_clear_message(message, expected)
    assert len(message) <= MAX_MESSAGE_CHARS, f"a {len(message):,}-character error message"
    assert_healthy(site_url)


def _text(result) -> str:
    assert isinstance(result, str) and result.strip(), f"expected text, got {result!r}"
    return result


def _label(result) -> str:
    assert result["label"] in {"negative", "neutral", "positive"}, result
    return result["label"]


def _tokens(result) -> str:
    plot, table = result
    assert plot["type"] == "plotly" and len(table["data"]) == len(table["headers"]) - 1 >= 3
    return " ".join(str(h) for h in table["headers"][1:])


ACCEPTED_CASES = [
    pytest.param(gen(EMOJI), _text, id="generate-emoji"),
    pytest.param(gen(RTL), _text, id="generate-right-to-left"),
    pytest.param(gen(MIXED), _text, id="generate-mixed-scripts"),
    pytest.param(gen("Say hi" + CONTROL), _text, id="generate-control-characters"),
    pytest.param(gen("Say\x00 hi"), _text, id="generate-nul-inside-text"),
    pytest.param(gen(SCRIPT + " " + IMG, system=SCRIPT, stop=IMG[:20]), _text, id="generate-html-injection"),
    pytest.param(tr("I love pizza " + EMOJI, "en", "zh"), lambda r: "🍕" in _text(r), id="translate-emoji"),
    pytest.param(tr("שלום עולם", "en", "zh"), _text, id="translate-right-to-left"),
    pytest.param(tr(MIXED, "auto", "en"), _text, id="translate-mixed-scripts"),
    pytest.param(tr("Hello" + CONTROL + " world.", "en", "zh"), _text, id="translate-control-characters"),
    pytest.param(tr(IMG, "en", "zh"), _text, id="translate-html-injection"),
    pytest.param(att(SCRIPT + " " + IMG), lambda r: "script" in _tokens(r) and "alert" in _tokens(r),
                 id="attention-html-injection"),
    pytest.param(att(RTL), lambda r: re.search("[\u0590-\u06ff]", _tokens(r)), id="attention-right-to-left"),
    pytest.param(att(EMOJI, "smollm2-135m-instruct"), _tokens, id="attention-emoji"),
    pytest.param(att("word " * 20_000), lambda r: len(r[1]["data"]) == 512, id="attention-100k-chars-truncated"),
    pytest.param(cls(EMOJI + " love it"), _label, id="classify-emoji"),
    pytest.param(cls(RTL), _label, id="classify-right-to-left"),
    pytest.param(cls(SCRIPT + IMG), _label, id="classify-html-injection"),
    pytest.param(cls("great " * 20_000), _label, id="classify-100k-chars-truncated"),
    pytest.param(est(params="7B", tokens="2T", storage="0", egress="0"), lambda r: r[1]["params"] == 7e9,
                 id="costs-human-units-and-zeros"),
]


@pytest.mark.parametrize("case, check", ACCEPTED_CASES)
def test_unusual_but_valid_input_is_served(client, site_url, case, check):
    api_name, args = case
    result = client.predict(*args, api_name=api_name)
    assert check(result), f"unexpected answer: {str(result)[:300]!r}"
    assert_no_leaks(str(result))
    assert_healthy(site_url)
