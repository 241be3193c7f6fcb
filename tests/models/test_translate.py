"""Translation requests: validation (unit) and the real Qwen path (integration)."""
from __future__ import annotations

import re

import pytest

from models import translate


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


def test_prompt_asks_for_only_the_translation():
    messages = translate.messages_for("Hi", "en", "zh")
    assert "Simplified Chinese" in messages[0]["content"] and "only the translation" in messages[0]["content"]
    assert messages[1] == {"role": "user", "content": "Hi"}


@pytest.mark.integration
def test_english_to_chinese_gives_chinese_and_keeps_paragraphs():
    result = translate.translate_text("Good morning.\n\nThe meeting starts at nine.", "en", "zh")
    paragraphs = result.split("\n\n")
    assert len(paragraphs) == 2
    assert all(re.search(r"[\u4e00-\u9fff]", p) for p in paragraphs)


@pytest.mark.integration
def test_onnx_translation_equals_pytorch_greedy():
    sentence = "Startups must control their inference costs."
    assert translate.translate_text(sentence, "en", "zh") == translate.torch_translate_text(sentence, "en", "zh")
