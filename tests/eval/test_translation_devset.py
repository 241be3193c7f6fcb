import re
from collections import Counter

import pytest

from eval.translation import DEVSET_PATH, FIELDS, direction, load_devset
from models.languages import detect_language

ITEMS = load_devset()
HAN = re.compile(r"[\u4e00-\u9fff]")
KANA = re.compile(r"[\u3041-\u30ff]")
HANGUL = re.compile(r"[\uac00-\ud7af]")


def by_direction(key):
    return [item for item in ITEMS if direction(item) == key]


def test_counts_per_direction():
    counts = Counter(direction(item) for item in ITEMS)
    assert counts["en-zh"] >= 100
    assert counts["zh-en"] >= 100
    for key in ("en-ja", "en-fr", "en-de", "en-es", "en-ko"):
        assert counts[key] >= 5, key
    assert len(ITEMS) >= 225


@pytest.mark.parametrize("key", ["en-zh", "zh-en"])
def test_main_directions_have_a_dev_split_for_choosing_and_a_larger_test_split(key):
    splits = Counter(item["split"] for item in by_direction(key))
    assert splits["dev"] >= 40 and splits["test"] >= 60
    assert set(splits) == {"dev", "test"}


def test_other_languages_are_test_only():
    # They were never used to choose a prompt: nothing of theirs may sit in the dev split.
    assert all(item["split"] == "test" for item in ITEMS if direction(item) not in ("en-zh", "zh-en"))


def test_the_tabs_examples_are_not_in_the_test_split():
    from demos.translate import EXAMPLES

    examples = {text for text, _, _ in EXAMPLES}
    assert not [item["id"] for item in ITEMS if item["split"] == "test" and item["source"] in examples
                and direction(item) in ("en-zh", "zh-en")]


def test_every_line_has_exactly_the_fields_and_none_is_empty():
    for item in ITEMS:
        assert tuple(item) == FIELDS
        assert all(isinstance(item[f], str) and item[f].strip() == item[f] and item[f] for f in FIELDS)
    assert DEVSET_PATH.read_text(encoding="utf-8").count("\n") == len(ITEMS)


def test_no_duplicates():
    assert len({item["id"] for item in ITEMS}) == len(ITEMS)
    assert len({(direction(item), item["source"]) for item in ITEMS}) == len(ITEMS)
    assert len({(direction(item), item["reference"]) for item in ITEMS}) == len(ITEMS)


def test_ids_name_their_direction():
    for item in ITEMS:
        assert item["id"].startswith(direction(item) + "-")


def test_main_directions_are_not_mirrors_of_each_other():
    en_zh, zh_en = by_direction("en-zh"), by_direction("zh-en")
    assert not {i["source"] for i in en_zh} & {i["reference"] for i in zh_en}
    assert not {i["reference"] for i in en_zh} & {i["source"] for i in zh_en}


def test_scripts_match_languages():
    for item in ITEMS:
        for field, lang in (("source", item["src_lang"]), ("reference", item["tgt_lang"])):
            text = item[field]
            if lang == "zh":
                assert HAN.search(text) and not KANA.search(text), item["id"]
            elif lang == "ja":
                assert KANA.search(text), item["id"]
            elif lang == "ko":
                assert HANGUL.search(text), item["id"]
            else:
                assert not HAN.search(text), item["id"]


def test_every_text_is_detected_as_its_declared_language():
    # Cross-checks the labels and the detector on text it was not written against.
    wrong = [
        (item["id"], field)
        for item in ITEMS
        for field, lang in (("source", item["src_lang"]), ("reference", item["tgt_lang"]))
        if detect_language(item[field]) != lang
    ]
    assert wrong == []


@pytest.mark.parametrize("key", ["en-zh", "zh-en"])
def test_main_directions_are_varied(key):
    items = by_direction(key)
    domains = Counter(item["domain"] for item in items)
    assert {"business", "tech", "daily", "numbers", "news", "product", "chat", "legal"} <= set(domains)
    assert min(domains.values()) >= 5
    assert sum(bool(re.search(r"\d", item["source"])) for item in items) >= 10
    assert sum(len(re.findall(r"[.!?。！？]", item["source"])) >= 2 for item in items) >= 10  # multi-sentence
    lengths = sorted(len(item["source"]) for item in items)
    assert lengths[0] <= 30 and lengths[-1] <= 400
    # a few long items (English ones past the tab's 200-character segment, so split-and-join is scored too;
    # a Chinese character carries about as much as three English letters)
    long_enough = 200 if key == "en-zh" else 50
    assert sum(length > long_enough for length in lengths) >= 2
