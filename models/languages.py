"""The languages the Translate tab supports, as data, plus parsing of language names and source detection.

Pure Python (stdlib, plus py3langid for Latin text the word lists do not know), no Gradio: the demo turns
the ValueErrors raised here into gr.Error.

What `parse_language` accepts (case-insensitive, surrounding whitespace ignored):
  * the ISO 639-1 codes en, zh, ja, ko, fr, de, es;
  * BCP-47 tags whose primary subtag is one of those, with any region/script subtags
    (en-US, fr_CA, es-419, ja-JP, zh-CN, zh-Hans, zh-Hans-SG); "_" counts as "-";
  * but NOT Traditional Chinese (zh-TW, zh-HK, zh-MO, zh-Hant...): the tab writes Simplified Chinese only,
    and silently answering a zh-TW request in Simplified characters would be wrong;
  * the English, native and Chinese names of each language ("chinese", "Simplified Chinese", "中文",
    "日本語", "français"/"francais", "德语", ...), so a display name round-trips to its code.
"auto" is not a language: `resolve_source` maps it to `detect_language(text)`.

Detection (`detect_language` / `detect_language_scored`) is a deliberately small heuristic, not a model:
  * CJK by script: any kana => ja, any hangul => ko (whichever has more characters when both occur),
    Han characters only => zh. CJK characters weigh CJK_WEIGHT Latin letters each when text mixes scripts,
    because one Han character carries about as much as a few Latin letters ("我们用 PyTorch 训练" is zh).
  * Latin script: each language scores stop-word hits (a word shared by k languages adds 1/k to each),
    characteristic letters (ß ä ö => de, ñ ¿ ¡ => es, ç œ è => fr, é shared by fr/es) and French elisions
    (l', d', qu' before a vowel). English has no diacritics, so it wins on stop words alone. Latin text with
    none of these ("Gute Nacht", "Bonne nuit") goes to py3langid (character n-grams, restricted to en/fr/de/es);
    its answer counts only when it is not near-uniform.
  * No evidence at all (empty, digits, emoji, unsupported scripts such as Cyrillic, or a Latin word
    found in no list) => ("en", 0.0). Very short inputs get low confidence ("好" => zh 0.2, "네" => ko 0.33,
    "the" => en 0.33); callers should treat confidence < LOW_CONFIDENCE as "ask the user".
  * Han-only text is ja when it holds a Japanese-only character form (shinjitai such as 駅 総 験 気 発:
    in Shift_JIS but in neither GB2312, the Simplified Chinese set, nor Big5, the Traditional one), so
    "東京駅" and "気象庁発表" are ja. Forms shared with Traditional Chinese (東 選 聞) are not evidence:
    Traditional Chinese input stays zh.
  * Measured (eval/langid.py on a 181-item test set written for it -> eval/results/langid.json, read by
    `detection_note`) against py3langid alone and lingua-language-detector, both restricted to these 7
    languages: see the results for overall and per-category accuracy. Script rules win on kanji-only
    Japanese (the libraries call it all zh); the libraries win on one- or two-word Latin inputs, which is
    why py3langid takes over where the word lists are silent.
  * Known blind spots: kanji-only Japanese without such a form ("東京都知事選", "大阪府警察本部") is
    reported as zh; Latin languages outside the list (it, pt, nl) are
    forced onto the nearest of en/fr/de/es.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1
    english_name: str
    native_name: str  # what the language selector shows
    prompt_name: str  # how an English translation prompt names it ("Translate from English to ...")
    chinese_name: str  # for the zh UI and as an accepted alias


LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("en", "English", "English", "English", "英语"),
        Language("zh", "Chinese (Simplified)", "中文 (简体)", "Simplified Chinese", "中文"),
        Language("ja", "Japanese", "日本語", "Japanese", "日语"),
        Language("ko", "Korean", "한국어", "Korean", "韩语"),
        Language("fr", "French", "Français", "French", "法语"),
        Language("de", "German", "Deutsch", "German", "德语"),
        Language("es", "Spanish", "Español", "Spanish", "西班牙语"),
    )
}
SUPPORTED_CODES: tuple[str, ...] = tuple(LANGUAGES)
AUTO = "auto"

# Below this, a detected language is a guess the UI should show as such (or ask the user to pick).
LOW_CONFIDENCE = 0.5

_EXTRA_ALIASES = {
    "en": ("英文",),
    "zh": ("chinese", "mandarin", "简体中文", "中文（简体）", "汉语", "simplified chinese"),
    "ja": ("日文", "日本语"),
    "ko": ("韩文", "韓國語", "한국말"),
    "fr": ("francais", "法文"),
    "de": ("德文",),
    "es": ("espanol", "castellano", "西班牙文"),
}
_TRADITIONAL_CHINESE_SUBTAGS = {"hant", "tw", "hk", "mo"}
_BCP47 = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")


def _build_aliases() -> dict[str, str]:
    aliases: dict[str, str] = {}
    for lang in LANGUAGES.values():
        for name in (lang.english_name, lang.native_name, lang.prompt_name, lang.chinese_name):
            aliases[name.casefold()] = lang.code
        for name in _EXTRA_ALIASES.get(lang.code, ()):
            aliases[name.casefold()] = lang.code
    return aliases


_ALIASES = _build_aliases()


def _unsupported(value: object) -> ValueError:
    return ValueError(f"unsupported language {value!r}; supported: {', '.join(SUPPORTED_CODES)}")


def parse_language(code: str) -> str:
    """Normalise a language code/tag/name to one of SUPPORTED_CODES; ValueError otherwise (see module doc)."""
    if not isinstance(code, str):
        raise _unsupported(code)
    key = code.strip().casefold()
    if key in _ALIASES:
        return _ALIASES[key]
    tag = key.replace("_", "-")
    if _BCP47.fullmatch(tag):
        primary, *subtags = tag.split("-")
        if primary in LANGUAGES:
            if primary == "zh" and _TRADITIONAL_CHINESE_SUBTAGS.intersection(subtags):
                raise ValueError(
                    f"unsupported language {code!r}: Traditional Chinese is not supported, only Simplified "
                    f"Chinese (zh, zh-CN, zh-Hans); supported: {', '.join(SUPPORTED_CODES)}"
                )
            return primary
    raise _unsupported(code)


def resolve_source(source: str, text: str) -> str:
    """The source language for a request: `detect_language(text)` when source is "auto", else parsed."""
    if isinstance(source, str) and source.strip().casefold() == AUTO:
        return detect_language(text)
    return parse_language(source)


def display_choices(include_auto: bool = False, auto_label: str = "自动检测 / Auto-detect") -> list[tuple[str, str]]:
    """(label, code) pairs for a dropdown, native names as labels, in SUPPORTED_CODES order."""
    choices = [(lang.native_name, lang.code) for lang in LANGUAGES.values()]
    return [(auto_label, AUTO), *choices] if include_auto else choices


# ---------------------------------------------------------------------------------------------- detection


class Detection(NamedTuple):
    code: str
    confidence: float  # 0..1; 0.0 means "no evidence, fell back to en"


FALLBACK = Detection("en", 0.0)
LIBRARY_MIN_PROB = 0.5
CJK_WEIGHT = 3  # Latin letters one CJK character counts for when scripts mix

# Stdlib `re` has no \p{Script}; these are the Unicode blocks that matter for zh/ja/ko text.
_KANA = re.compile(r"[\u3041-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9d]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\ud7b0-\ud7ff]")
_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff\U00020000-\U0003134f]")
_LATIN_LETTER = re.compile(r"[a-zA-Z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]")
_LATIN_WORD = re.compile(r"[a-zA-Z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]+")
# French elision: l'homme, d'un, qu'il, c'est, j'ai. The \b keeps English "it's"/"don't" out (no boundary).
_FRENCH_ELISION = re.compile(r"\b(?:[ldjcnmst]|qu|jusqu|lorsqu|puisqu)['’](?=[aeiouyhéèêàâîôû])", re.I)

# The most frequent function words (plus greetings, so one-word inputs have a chance), lower case.
_STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "the and of to in is are was were be been being it its that this these those with for on at by from "
        "as you we they he she i me us my our your their his her him them have has had will would can could "
        "should not but or what which who how there an a do does did if about into than then just so also "
        "very all more most some after before over up out because when one two three last year new people "
        "time work day get make like hello hi thanks thank yes please good morning today tomorrow".split()
    ),
    "fr": frozenset(
        "le la les de des du un une et en est sont il elle ils elles nous vous je tu que qui dans pour par pas "
        "ne sur avec au aux ce cette ces son sa ses leur leurs mon ma mes notre nos votre vos lui mais ou où "
        "être avoir a été était fait très plus on se comme tout aussi bien parce quand deux trois "
        "merci bonjour oui non aujourd demain".split()
    ),
    "de": frozenset(
        "der die das und in an am um im ist sind war waren nicht ein eine einen einem kein keine dem den des "
        "zu zum zur mit sich auf aus für von vom beim auch es wir ich sie er mir mich dir dich wie was aber "
        "oder wenn dass noch nach bei uns unser mein meine dein seit nur jetzt hier immer über werden wird "
        "hat haben habe hatte kann können sehr ganz schon zwei drei heute morgen danke bitte ja nein hallo "
        "guten gut".split()
    ),
    "es": frozenset(
        "el la los las de del un una unos unas y en es son fue era ser estar que por para con no se lo le les "
        "su sus al como más pero muy está están este esta estos hay ya también yo tú me mi te ella ellos "
        "ellas nosotros nuestro nuestra usted ustedes tiene tienen hace desde sobre entre hasta porque "
        "cuando todo dos tres gracias hola sí buenos buenas días hoy mañana".split()
    ),
}
_LATIN_CODES = tuple(_STOP_WORDS)


def _shared_weights(table: dict[str, frozenset[str]]) -> dict[str, dict[str, float]]:
    """word -> {language: 1/k} where k languages list the word, so ambiguous words ("de", "es") count less."""
    owners: dict[str, list[str]] = {}
    for code, words in table.items():
        for word in words:
            owners.setdefault(word, []).append(code)
    return {word: {code: 1.0 / len(codes) for code in codes} for word, codes in owners.items()}


_WORD_WEIGHTS = _shared_weights(_STOP_WORDS)
_CHAR_WEIGHTS = _shared_weights(
    {
        "fr": frozenset("éèêëàâçîïôûùœ"),
        "de": frozenset("äöüß"),
        "es": frozenset("ñáíóúé¿¡"),
    }
)


def detect_language_scored(text: str, use_library: bool = True) -> Detection:
    """Best guess of text's language among SUPPORTED_CODES with a 0..1 confidence (see module doc).

    use_library=False leaves out the py3langid fallback (eval/langid.py measures what it adds)."""
    if not isinstance(text, str):
        return FALLBACK
    kana = len(_KANA.findall(text))
    hangul = len(_HANGUL.findall(text))
    han = len(_HAN.findall(text))
    latin = len(_LATIN_LETTER.findall(text))
    cjk = kana + hangul + han
    if cjk == 0 and latin == 0:
        return FALLBACK
    if cjk * CJK_WEIGHT >= latin and cjk > 0:
        if hangul and hangul >= kana:
            code = "ko"
        elif kana or _has_japanese_only_form(text):
            code = "ja"
        else:
            code = "zh"
        share = cjk * CJK_WEIGHT / (cjk * CJK_WEIGHT + latin)
        # Confidence grows with length; slower for Han-only text, which could as well be Japanese kanji.
        evidence = min(1.0, cjk / (5 if code == "zh" else 3))
        return Detection(code, round(share * evidence, 3))
    return _detect_latin(text, use_library)


def _encodable(char: str, codec: str) -> bool:
    try:
        char.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _has_japanese_only_form(text: str) -> bool:
    """A Han character Japanese writes and neither Chinese standard has (the stdlib codecs are the tables)."""
    return any(_encodable(char, "shift_jis") and not _encodable(char, "gb2312") and not _encodable(char, "big5")
               for char in _HAN.findall(text))


def _detect_latin(text: str, use_library: bool = True) -> Detection:
    scores = dict.fromkeys(_LATIN_CODES, 0.0)
    lowered = text.casefold()
    for word in _LATIN_WORD.findall(lowered):
        for code, weight in _WORD_WEIGHTS.get(word, {}).items():
            scores[code] += weight
    for char in lowered:
        for code, weight in _CHAR_WEIGHTS.get(char, {}).items():
            scores[code] += weight
    scores["fr"] += len(_FRENCH_ELISION.findall(text))
    total = sum(scores.values())
    if total == 0:
        return _library_guess(text) if use_library else FALLBACK
    # Ties go to the earlier language in _LATIN_CODES (en first, the fallback anyway).
    best = max(_LATIN_CODES, key=lambda code: (scores[code], -_LATIN_CODES.index(code)))
    share = scores[best] / total
    evidence = min(1.0, scores[best] / 3)  # about three unambiguous hits make a confident call
    return Detection(best, round(share * evidence, 3))


@lru_cache(maxsize=1)
def _latin_identifier():
    """py3langid's n-gram model restricted to the Latin-script languages; loaded on first use (~90 MB)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(_LATIN_CODES))
    return identifier


def _library_guess(text: str) -> Detection:
    """Latin text none of the word lists knows ("Gute Nacht", "Bonne nuit"): py3langid's character n-grams
    decide. A near-uniform answer (p < LIBRARY_MIN_PROB over four languages) is no evidence."""
    code, prob = _latin_identifier().classify(text)
    if prob < LIBRARY_MIN_PROB:
        return FALLBACK
    words = len(_LATIN_WORD.findall(text))
    return Detection(code, round(float(prob) * min(1.0, words / 3), 3))


def detect_language(text: str) -> str:
    """The code of `detect_language_scored(text)`; "en" when there is no evidence at all."""
    return detect_language_scored(text).code


LANGID_RESULTS = Path(__file__).resolve().parent.parent / "eval" / "results" / "langid.json"


def detection_note(path: Path | None = None) -> str:
    """One sentence on auto-detect's measured accuracy, for the Translate tab's model card ("" if not measured)."""
    path = path or LANGID_RESULTS
    if not path.is_file():
        return ""
    data = json.loads(path.read_text(encoding="utf-8"))
    ours = data["detectors"]["site"]
    accuracy, correct = ours["accuracy"], ours["correct"]
    env = data["environment"]
    return (f"Auto-detect picked the right language for {correct['all']} texts ({accuracy['all']:.1%}) of a test set "
            f"written for it: {accuracy['category:sentence']:.0%} of sentences, {accuracy['category:short']:.0%} of "
            f"1-3 word inputs, {accuracy['category:mixed']:.0%} of mixed-script texts and "
            f"{accuracy['category:kanji_only']:.0%} of kanji-only Japanese (eval/langid.py, {env['date'][:10]}, "
            f"commit {env['git_commit'][:8]}).")
