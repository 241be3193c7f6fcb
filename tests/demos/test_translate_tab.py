"""Translate tab: model card and language swap."""
from __future__ import annotations

from demos import translate as tab


def test_translate_model_card_shows_the_measured_scores():
    card = tab.model_card()
    assert "| en-zh | " in card and "| zh-en | " in card


def test_swap_exchanges_languages_and_moves_the_translation_into_the_input():
    assert tab.swap("en", "zh", "Hello", "你好") == ("zh", "en", "你好", "")


def test_swap_from_auto_picks_a_concrete_target():
    source, target, _, _ = tab.swap("auto", "zh", "Hello", "")
    assert source == "zh" and target == "en"
