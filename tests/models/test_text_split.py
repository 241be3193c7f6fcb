import random
import re

import pytest

from models.text_split import (
    DEFAULT_MAX_CHARS,
    Segment,
    join_translations,
    split_for_translation,
    split_sentences,
)

ENGLISH = (
    "Dr. Smith founded the company in 2019. It sells software to hospitals, e.g. scheduling tools.\n"
    "\n"
    "Revenue grew 3.5x last year! Will it continue? Nobody knows.\n"
)
CHINESE = "我们上个月完成了融资。接下来要招聘工程师！你觉得呢？\n\n第二段：产品已经上线；用户反馈不错。"
STRUCTURED = (
    "  Intro line.\n"
    "\n\n"
    "- First item. It has two sentences.\n"
    "* Second item\n"
    "1. Numbered item\n"
    "2) Another one\n"
    "一、概述部分。\n"
    "# Heading\n"
    "> A quote.\n"
    "   \n"
    "Last line with trailing space.  \n\n"
)


def identity(segments):
    return join_translations(segments, [segment.text for segment in segments])


@pytest.mark.parametrize("text", [ENGLISH, CHINESE, STRUCTURED, "One line", "  padded  ", "a\r\n\r\nb\r\n", "\n\nx\n\n"])
@pytest.mark.parametrize("max_chars", [12, 40, DEFAULT_MAX_CHARS])
def test_identity_translation_restores_the_text(text, max_chars):
    assert identity(split_for_translation(text, max_chars)) == text


@pytest.mark.parametrize("text", [ENGLISH, CHINESE, STRUCTURED])
@pytest.mark.parametrize("max_chars", [10, 25, 80])
def test_chunks_are_short_stripped_and_never_empty(text, max_chars):
    segments = split_for_translation(text, max_chars)
    assert segments
    for segment in segments:
        assert segment.text
        assert segment.text == segment.text.strip()
        assert len(segment.text) <= max_chars


def test_blank_text_gives_no_segments():
    assert split_for_translation("") == []
    assert split_for_translation(" \n\n\t ") == []
    assert join_translations([], []) == ""


def test_sentences_are_packed_up_to_max_chars():
    text = "One. Two. Three. Four."
    assert [s.text for s in split_for_translation(text, 10)] == ["One. Two.", "Three.", "Four."]
    assert [s.text for s in split_for_translation(text, 200)] == [text]


def test_paragraphs_become_blocks_with_their_separators():
    segments = split_for_translation(ENGLISH, 40)
    assert [s.block for s in segments] == [0, 0, 0, 1, 1]
    assert [s.first_in_block for s in segments] == [True, False, False, True, False]
    assert segments[3].before == "\n\n"
    assert segments[-1].after == "\n"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Hello world. How are you? Fine!", ["Hello world.", "How are you?", "Fine!"]),
        ("Pi is 3.14 today. Version 2.0.1 shipped.", ["Pi is 3.14 today.", "Version 2.0.1 shipped."]),
        ("Mr. Lee met Dr. Wang at 9 a.m. sharp. Then they left.", ["Mr. Lee met Dr. Wang at 9 a.m. sharp.", "Then they left."]),
        ("Use tools, e.g. Python, i.e. a language. Done.", ["Use tools, e.g. Python, i.e. a language.", "Done."]),
        ("J. K. Rowling wrote it. Good.", ["J. K. Rowling wrote it.", "Good."]),
        ("It costs approx. five dollars. Cheap.", ["It costs approx. five dollars.", "Cheap."]),
        ("Wait... what happened? Nothing.", ["Wait... what happened?", "Nothing."]),
        ('He said "Go now." Then he left.', ['He said "Go now."', "Then he left."]),
        ("(This is an aside.) The main point.", ["(This is an aside.)", "The main point."]),
        ("Apples, pears, etc. The rest is fine.", ["Apples, pears, etc.", "The rest is fine."]),
        ("Visit example.com today. Thanks!", ["Visit example.com today.", "Thanks!"]),
        ("Das ist z.B. gut. Ja.", ["Das ist z.B. gut.", "Ja."]),
        ("¿Qué tal? ¡Muy bien!", ["¿Qué tal?", "¡Muy bien!"]),
        ("今天很好。明天呢？后天！再说吧；好的", ["今天很好。", "明天呢？", "后天！", "再说吧；", "好的"]),
        ("他说：“我们走吧。”然后就走了。", ["他说：“我们走吧。”", "然后就走了。"]),
        ("（这是括号里的话。）正文继续。", ["（这是括号里的话。）", "正文继续。"]),
        ("今日は晴れです。明日は雨です。", ["今日は晴れです。", "明日は雨です。"]),
        ("OK.好的。", ["OK.", "好的。"]),
        ("No terminal punctuation", ["No terminal punctuation"]),
    ],
)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_long_sentence_is_cut_at_a_comma():
    text = "We spent the first year talking to customers, and the second year building the product they asked for."
    chunks = [s.text for s in split_for_translation(text, 60)]
    assert chunks == ["We spent the first year talking to customers,", "and the second year building the product they asked for."]


def test_long_sentence_without_commas_is_cut_at_spaces_without_breaking_words():
    text = "This sentence has no commas at all but it is much longer than the chunk limit we picked here"
    segments = split_for_translation(text, 30)
    assert len(segments) > 2
    assert all(len(s.text) <= 30 for s in segments)
    assert [word for s in segments for word in s.text.split()] == text.split()
    assert identity(segments) == text


def test_long_chinese_sentence_is_cut_at_clause_punctuation():
    text = "我们的产品面向跨境电商卖家，帮助他们生成多语言商品描述，并自动检查翻译质量，最后一键发布到各个平台。"
    chunks = [s.text for s in split_for_translation(text, 30)]
    assert all(len(c) <= 30 for c in chunks)
    assert all(c.endswith(("，", "。")) for c in chunks)
    assert "".join(chunks) == text


def test_unbroken_text_is_cut_hard_and_nothing_is_lost():
    text = "这是一个非常长的句子没有任何标点符号我们需要测试切分器是否会把它切成合理的片段而不丢字"
    chunks = [s.text for s in split_for_translation(text, 20)]
    assert [len(c) for c in chunks] == [20, 20, len(text) - 40]
    assert "".join(chunks) == text


def test_commas_inside_numbers_are_not_cut_points():
    text = "The company reported 1,234,567 users and 9,876,543 page views in a single quarter"
    chunks = [s.text for s in split_for_translation(text, 40)]
    assert any("1,234,567" in c for c in chunks) and any("9,876,543" in c for c in chunks)
    assert " ".join(chunks) == text


def test_list_markers_and_indentation_are_kept_out_of_the_model_input():
    segments = split_for_translation(STRUCTURED, 200)
    texts = [s.text for s in segments]
    assert texts[:3] == ["Intro line.", "First item. It has two sentences.", "Second item"]
    assert "Numbered item" in texts and "Another one" in texts and "概述部分。" in texts
    assert "Heading" in texts and "A quote." in texts
    first_item = segments[1]
    assert first_item.before == "\n\n\n- "
    assert segments[0].before == "  "


def test_a_decimal_at_line_start_is_not_a_list_marker():
    assert [s.text for s in split_for_translation("3.14 is pi.")] == ["3.14 is pi."]


def test_english_to_chinese_glue_has_no_spaces_and_keeps_paragraphs():
    segments = split_for_translation("First sentence. Second sentence.\n\nThird one.", 20)
    assert len(segments) == 3
    assert join_translations(segments, ["第一句。", "第二句。", "第三句。"]) == "第一句。第二句。\n\n第三句。"


def test_chinese_to_english_glue_uses_spaces():
    segments = split_for_translation("第一句话比较长一些。第二句话也不短。\n第三句。", 10)
    assert len(segments) == 3
    out = join_translations(segments, ["The first.", "The second.", "The third."])
    assert out == "The first. The second.\nThe third."


def test_translations_are_stripped_and_empty_ones_do_not_double_spaces():
    segments = split_for_translation("Alpha one. Beta two. Gamma three.", 12)
    assert len(segments) == 3
    assert join_translations(segments, [" A. ", "", "C.\n"]) == "A. C."


def test_join_rejects_mismatched_lengths():
    segments = split_for_translation("One sentence. Another one.", 15)
    assert len(segments) == 2
    with pytest.raises(ValueError, match="2 segments"):
        join_translations(segments, ["only one"])


@pytest.mark.parametrize("max_chars", [0, 5, 9])
def test_too_small_max_chars_is_rejected(max_chars):
    with pytest.raises(ValueError, match="max_chars"):
        split_for_translation("Hello.", max_chars)


def test_non_string_text_is_rejected():
    with pytest.raises(ValueError):
        split_for_translation(None)


def test_segment_is_immutable():
    segment = Segment("x", 0, True)
    with pytest.raises(AttributeError):
        segment.text = "y"


POOL = [
    "Short one.", "A longer sentence, with a comma, and more words in it.", "3.14 is not a boundary.",
    "Mr. Brown agreed!", "Really?", "今天很好。", "这是一个比较长的中文句子，里面有逗号，也有很多字。", "“引号。”",
    "word " * 30, "汉字" * 40,
]


@pytest.mark.parametrize("seed", range(25))
def test_random_documents_keep_invariants(seed):
    rng = random.Random(seed)
    paragraphs = []
    for _ in range(rng.randint(1, 5)):
        sentences = [rng.choice(POOL).strip() for _ in range(rng.randint(1, 4))]
        paragraphs.append(" ".join(sentences))
    separators = [rng.choice(["\n", "\n\n", "\n\n\n", "\n \n"]) for _ in paragraphs]
    text = "".join(p + s for p, s in zip(paragraphs, separators))
    max_chars = rng.choice([10, 17, 33, 64, 200])
    segments = split_for_translation(text, max_chars)
    assert all(0 < len(s.text) <= max_chars and s.text == s.text.strip() for s in segments)
    assert re.sub(r"\s", "", "".join(s.text for s in segments)) == re.sub(r"\s", "", text)
    restored_lines, original_lines = identity(segments).split("\n"), text.split("\n")
    # Line and blank-line structure is exact; inside a line only the glue between chunks may differ
    # (it follows the translated text: none after CJK, one space otherwise).
    assert len(restored_lines) == len(original_lines)
    for restored, original in zip(restored_lines, original_lines):
        assert re.sub(r"\s", "", restored) == re.sub(r"\s", "", original)
        assert restored == original or not original.isascii()
