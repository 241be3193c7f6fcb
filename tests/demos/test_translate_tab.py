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


def test_translate_model_card_numbers_are_the_committed_test_split_scores():
    import json
    import re

    from models.translate import design_for

    results = json.loads(tab.RESULTS_FILE.read_text(encoding="utf-8"))
    card = tab.model_card()
    served = re.search(r"\*\*Served variant\*\*: (\w+)", card).group(1)
    rows = {(r["variant"], r["design"], r["direction"]): r for r in results["rows"] if r["split"] == "test"}
    for direction in ("en-zh", "zh-en"):
        design = design_for(*direction.split("-"))
        line = next(line for line in card.splitlines() if line.startswith(f"| {direction} | "))
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[1] == design
        assert float(cells[2]) == round(rows[(served, design, direction)]["chrf"], 1)
        assert float(cells[3]) == round(rows[("fp32", design, direction)]["chrf"], 1)
        assert float(cells[4]) == round(rows[(served, design, direction)]["bleu"], 1)
        assert cells[5] == f"{rows[(served, design, direction)]['n']} of {rows[(served, design, direction)]['of']}"
