"""The hand-made gold data behind eval/langid.py and eval/sentence_split.py, and the scoring they use."""
from __future__ import annotations

from collections import Counter

import pytest

from eval import langid, sentence_split
from models.languages import SUPPORTED_CODES


def test_langid_testset_covers_every_language_and_the_hard_categories():
    items = langid.load_testset()
    assert len(items) >= 140 and len({item["id"] for item in items}) == len(items)
    assert set(Counter(item["lang"] for item in items)) == set(SUPPORTED_CODES)
    categories = Counter(item["category"] for item in items)
    assert categories["kanji_only"] >= 10 and categories["short"] >= 35 and categories["mixed"] >= 10
    assert all(item["lang"] == "ja" for item in items if item["category"] == "kanji_only")


@pytest.mark.parametrize("name", list(sentence_split.GOLD_FILES))
def test_sentence_gold_sentences_are_the_text_in_order(name):
    for item in sentence_split.load(sentence_split.GOLD_FILES[name]):
        assert item["lang"] in SUPPORTED_CODES
        sentence_split.boundaries(item["text"], item["sentences"])  # raises if a sentence is not in the text
        assert "".join(item["sentences"]).replace(" ", "") == item["text"].replace(" ", "")


def test_boundary_scoring_counts_false_and_missed_splits():
    items = [{"id": "a", "lang": "en", "text": "One. Two. Three", "sentences": ["One.", "Two. Three"]}]
    report = sentence_split.score(lambda text, lang: ["One.", "Two.", "Three"], items)
    assert (report["true_pos"], report["false_pos"], report["false_neg"]) == (1, 1, 0)
    assert report["precision"] == 0.5 and report["recall"] == 1.0 and report["exact"] == 0.0
    assert sentence_split.boundaries("One. Two.", ["One.", "Two."]) == {4}
