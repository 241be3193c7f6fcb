"""Translation requests: validation (unit) and the real Qwen path (integration)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

from models import translate
from models.paths import REPO_ROOT
from models.sampling import SamplingSettings


@pytest.fixture
def lm(tiny_llama, make_engine, monkeypatch):
    """A tiny random decoder in the translator's place: streaming is about the loop, not translation quality."""
    model = make_engine("tiny-llama", eos=False)
    monkeypatch.setattr(translate, "get_translator", lambda variant=None: model)
    return model


@pytest.mark.parametrize("text,source,target,message", [
    ("", "en", "zh", "empty"), ("  \n ", "en", "zh", "empty"),
    ("Hello there", "en", "en", "both English"), ("你好，世界", "auto", "zh", "auto-detected"),
    ("Hello", "en", "xx", "unsupported language"), ("Hello", "klingon", "zh", "unsupported language"),
    ("a" * 20_000, "en", "zh", "limit"),
])
def test_bad_requests_are_clear_errors(text, source, target, message):
    with pytest.raises(ValueError, match=message):
        translate.validate_request(text, source, target)


def test_auto_detection_resolves_and_says_so():
    text, source, target, note = translate.validate_request("我们下周发布新版本。", "auto", "en")
    assert (source, target) == ("zh", "en")
    assert "detected" in note


@pytest.mark.parametrize("design", list(translate.PROMPT_DESIGNS))
def test_every_prompt_design_ends_with_the_text_and_names_both_languages(design):
    messages = translate.messages_for("Hi there", "en", "zh", design)
    assert messages[-1]["role"] == "user" and messages[-1]["content"].endswith("Hi there")
    prompt = " ".join(m["content"] for m in messages)
    assert ("Simplified Chinese" in prompt and "English" in prompt) or ("中文" in prompt and "英语" in prompt)
    assert "only" in prompt.lower() or "只输出译文" in prompt


def test_few_shot_examples_are_in_the_requested_pair_for_every_language():
    for source in translate.LANGUAGES:
        for target in translate.LANGUAGES:
            if source != target:
                messages = translate.messages_for("x", source, target, "few-shot")
                shots = [m["content"] for m in messages if m["role"] == "assistant"]
                assert shots == [shot[target] for shot in translate._SHOTS]


def test_each_direction_uses_its_chosen_design():
    for (source, target), design in translate.CHOSEN_DESIGNS.items():
        assert design in translate.PROMPT_DESIGNS
        assert translate.messages_for("Hi", source, target) == translate.messages_for("Hi", source, target, design)
    assert translate.design_for("en", "fr") == translate.DEFAULT_DESIGN


def test_unknown_prompt_design_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown prompt design"):
        translate.messages_for("Hi", "en", "zh", "poetry")


def test_eval_token_cap_only_lowers_the_served_budget():
    served = translate.segment_settings("Hello world.").max_new_tokens
    assert translate.segment_settings("Hello world.", 10).max_new_tokens == 10
    assert translate.segment_settings("Hello world.", 10_000).max_new_tokens == served


# --- which variant is served -----------------------------------------------------------------------------


@pytest.fixture
def gate(tmp_path, monkeypatch):
    """Write a gate file and make the runtime's default for this device `default`."""
    def write(variants: dict, default: str = "int8"):
        path = tmp_path / "gate.json"
        path.write_text(json.dumps({"variants": variants}))
        monkeypatch.setattr(translate, "GATE_FILE", path)
        monkeypatch.setattr(translate.runtime, "manifest", lambda model_id: {"variants": {"fp32": {}, default: {}}})
        monkeypatch.setattr(translate.runtime, "preferred_variant", lambda model_id, variants: default)
        monkeypatch.delenv(translate.VARIANT_ENV, raising=False)
    return write


def test_a_default_variant_that_passed_the_gate_is_served(gate):
    gate({"int8": {"passed": True, "summary": "en-zh -0.2, zh-en -0.5"}})
    decision = translate.served_variant_decision()
    assert decision.variant == "int8" and "passed" in decision.reason and "zh-en -0.5" in decision.reason


def test_a_default_variant_that_failed_the_gate_falls_back_to_fp32(gate):
    gate({"int8": {"passed": False, "summary": "zh-en -2.1"}})
    decision = translate.served_variant_decision()
    assert decision.variant == "fp32" and "int8" in decision.reason and "-2.1" in decision.reason


def test_an_unmeasured_default_is_not_served(gate):
    gate({}, default="fp16")
    assert translate.served_variant() == "fp32"
    assert "not measured" in translate.served_variant_decision().reason


def test_a_forced_variant_is_served_and_says_whether_it_passed(gate, monkeypatch):
    gate({"int4": {"passed": False, "summary": "en-zh -3.0"}})
    monkeypatch.setenv(translate.VARIANT_ENV, "int4")
    decision = translate.served_variant_decision()
    assert decision.variant == "int4" and "FAILED" in decision.reason


def test_the_committed_gate_file_decides_the_cpu_variant():
    verdicts = json.loads(translate.GATE_FILE.read_text())["variants"]
    assert "int8" in verdicts and all(isinstance(v["passed"], bool) for v in verdicts.values())


def test_translate_streams_each_segment_as_it_is_written(lm, monkeypatch):
    monkeypatch.setattr(translate, "segment_settings",
                        lambda segment, max_new_tokens=None: SamplingSettings(max_new_tokens=5, temperature=0))
    # the short system prompt: the tiny stand-in model has a 256-token context, the few-shot prompt is longer
    stream = translate.translate_stream("Good morning.\n\nThe meeting starts at nine.", "en", "zh", design="system-en")
    first = next(stream)
    assert (first.segments_done, first.segments_total, first.tokens) == (0, 2, 1)
    updates = [(first.segments_done, first.tokens, first.text)] + [(u.segments_done, u.tokens, u.text) for u in stream]
    assert [tokens for _, tokens, _ in updates] == list(range(1, 11)) + [10]  # a token at a time, then the summary
    assert [done for done, _, _ in updates] == [0] * 5 + [1] * 5 + [2]
    assert "\n\n" in updates[-1][2]  # both paragraphs, joined as in the source
    assert lm.active == 0


def test_translate_stop_ends_the_stream_and_the_count(lm, monkeypatch):
    calls = []
    updates = list(translate.translate_stream("Good morning.", "en", "zh", design="system-en",
                                              should_stop=lambda: len(calls.append(1) or calls) >= 3))
    assert len(updates) == 3 and updates[-1].segments_done == 0  # stopped inside the first segment
    deadline = time.monotonic() + 5
    while lm.active and time.monotonic() < deadline:  # the engine drops it at its next step
        time.sleep(0.01)
    assert lm.active == 0


@pytest.mark.integration
def test_english_to_chinese_gives_chinese_and_keeps_paragraphs():
    result = translate.translate_text("Good morning.\n\nThe meeting starts at nine.", "en", "zh")
    paragraphs = result.split("\n\n")
    assert len(paragraphs) == 2
    assert all(re.search(r"[\u4e00-\u9fff]", p) for p in paragraphs)


def test_serving_code_does_not_import_torch():
    code = "import sys, models.translate; sys.exit('torch' in sys.modules or hasattr(models.translate, 'torch_translate_text'))"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 0
