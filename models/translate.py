"""Translation with Qwen2.5-Coder-0.5B-Instruct through the shared ONNX decode loop (models.decoding).

A 0.5B model translates a sentence or two well and drifts on long inputs, so text is split into short
segments (models.text_split), each translated greedily (deterministic, and comparable with PyTorch), and
the pieces are joined back with the original paragraph structure.

Two choices here were measured, not guessed (eval/translation_prompts.py writes the evidence):
  * the prompt: PROMPT_DESIGNS is the one table of candidate prompts; eval compares exactly these, and
    CHOSEN_DESIGNS names the winner per direction by dev-split chrF (eval/results/translation_prompts.json);
  * the served variant: `served_variant()` serves a quantized graph only if it kept translation quality
    (eval/results/translation_variant_gate.json), otherwise fp32.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from models import runtime
from models.decoding import GenerationStats
from models.engine import Engine, get_engine
from models.languages import AUTO, LANGUAGES, Language, detect_language_scored, parse_language
from models.paths import REPO_ROOT
from models.sampling import SamplingSettings
from models.text_split import join_translations, split_for_translation

TRANSLATION_MODEL = "qwen2.5-coder-0.5b-instruct"
MAX_INPUT_CHARS = 3000  # ~1,000 output tokens: about a minute and a half on a 2-core CPU
SEGMENT_CHARS = 200
GATE_FILE = REPO_ROOT / "eval" / "results" / "translation_variant_gate.json"
VARIANT_ENV = runtime.variant_env(TRANSLATION_MODEL)  # models.runtime's per-model override


# ------------------------------------------------------------------------------------------ prompts

_OUTPUT_ONLY = "Output only the translation, with no explanations, notes or quotes."

# Few-shot examples: the same two sentences in every supported language, so any direction gets a
# demonstration in its own pair. Written for this purpose; none is in the dev set or the tab's examples.
_SHOTS: tuple[dict[str, str], ...] = (
    {
        "en": "Thanks for your order. It will ship within two business days.",
        "zh": "感谢您的订购，商品将在两个工作日内发货。",
        "ja": "ご注文ありがとうございます。商品は2営業日以内に発送されます。",
        "ko": "주문해 주셔서 감사합니다. 상품은 영업일 기준 2일 이내에 발송됩니다.",
        "fr": "Merci pour votre commande. Elle sera expédiée sous deux jours ouvrés.",
        "de": "Vielen Dank für Ihre Bestellung. Sie wird innerhalb von zwei Werktagen versandt.",
        "es": "Gracias por su pedido. Se enviará en un plazo de dos días hábiles.",
    },
    {
        "en": "The update makes the app start faster and fixes a login bug.",
        "zh": "这次更新让应用启动更快，并修复了一个登录问题。",
        "ja": "今回のアップデートでアプリの起動が速くなり、ログインの不具合も修正されました。",
        "ko": "이번 업데이트로 앱이 더 빨리 실행되고 로그인 오류가 수정되었습니다.",
        "fr": "Cette mise à jour accélère le démarrage de l'application et corrige un bug de connexion.",
        "de": "Das Update lässt die App schneller starten und behebt einen Anmeldefehler.",
        "es": "La actualización hace que la aplicación se inicie más rápido y corrige un error de inicio de sesión.",
    },
)


def _system_prompt(src: Language, tgt: Language) -> str:
    return (f"You are a professional translator. Translate the user's text from {src.prompt_name} to "
            f"{tgt.prompt_name}. {_OUTPUT_ONLY}")


def _system_en(text: str, src: Language, tgt: Language) -> list[dict]:
    return [{"role": "system", "content": _system_prompt(src, tgt)}, {"role": "user", "content": text}]


def _user_en(text: str, src: Language, tgt: Language) -> list[dict]:
    # No system message: Qwen's chat template then inserts its default assistant system prompt.
    return [{"role": "user", "content": f"Translate the following {src.prompt_name} text into "
                                        f"{tgt.prompt_name}. {_OUTPUT_ONLY}\n\n{text}"}]


_ZH_OUTPUT_ONLY = "只输出译文，不要解释，不要加引号。"


def _user_zh(text: str, src: Language, tgt: Language) -> list[dict]:
    return [{"role": "user", "content": f"把下面的{src.chinese_name}文本翻译成{tgt.chinese_name}。"
                                        f"{_ZH_OUTPUT_ONLY}\n\n{text}"}]


def _few_shot(text: str, src: Language, tgt: Language) -> list[dict]:
    messages = [{"role": "system", "content": _system_prompt(src, tgt)}]
    for shot in _SHOTS:
        messages += [{"role": "user", "content": shot[src.code]}, {"role": "assistant", "content": shot[tgt.code]}]
    return messages + [{"role": "user", "content": text}]


@dataclass(frozen=True)
class PromptDesign:
    name: str
    description: str
    build: Callable[[str, Language, Language], list[dict]]


# Where the instruction goes (system or user message), its language (English or Chinese: for en->zh the
# Chinese design names the languages in the target language, for zh->en the English ones do), and few-shot.
PROMPT_DESIGNS: dict[str, PromptDesign] = {d.name: d for d in (
    PromptDesign("system-en", "system message: English translator instruction; user message: the text alone "
                              "(the site's prompt before the comparison)", _system_en),
    PromptDesign("user-en", "no system message (Qwen's default); English instruction and the text in one user "
                            "message", _user_en),
    PromptDesign("user-zh", "no system message; instruction and language names in Chinese, then the text",
                 _user_zh),
    PromptDesign("few-shot", "system-en plus two example exchanges in the same language pair", _few_shot),
)}

# Chosen by dev-split chrF with int8 (the served CPU variant) (eval/results/translation_prompts.json, `python -m eval.translation_prompts`);
# a test checks this table against that file. Directions without their own measurement use DEFAULT_DESIGN.
CHOSEN_DESIGNS: dict[tuple[str, str], str] = {("en", "zh"): "few-shot", ("zh", "en"): "few-shot"}
DEFAULT_DESIGN = "system-en"


def design_for(source: str, target: str) -> str:
    return CHOSEN_DESIGNS.get((source, target), DEFAULT_DESIGN)


def messages_for(text: str, source: str, target: str, design: str | None = None) -> list[dict]:
    """The chat messages for one segment: the chosen design for the direction unless `design` names one."""
    name = design or design_for(source, target)
    if name not in PROMPT_DESIGNS:
        raise ValueError(f"unknown prompt design {name!r}; known: {', '.join(PROMPT_DESIGNS)}")
    return PROMPT_DESIGNS[name].build(text, LANGUAGES[source], LANGUAGES[target])


# ------------------------------------------------------------------------------------------ served variant


@dataclass(frozen=True)
class VariantDecision:
    variant: str  # the ONNX variant name passed to models.runtime ("fp32", "int8", ...)
    reason: str  # one sentence for the model card and logs


def _gate_results() -> dict:
    try:
        return json.loads(GATE_FILE.read_text(encoding="utf-8")).get("variants", {})
    except (OSError, ValueError):
        return {}


def served_variant_decision() -> VariantDecision:
    """Which Qwen variant Translate serves, and why: the one place this is decided.

    LAB_VARIANT_<ID> wins (a deployer's explicit choice; the reason says whether it passed the gate).
    Otherwise the runtime's default for this device is served if the translation gate passed it (within
    1.0 chrF of fp32 in both en<->zh directions); a default that failed, or was never measured, gives fp32.
    """
    gate = _gate_results()
    forced = os.environ.get(VARIANT_ENV, "").strip()
    if forced:
        verdict = gate.get(forced, {}).get("passed")
        note = {True: "passed", False: "FAILED", None: "was not measured by"}[verdict]
        return VariantDecision(forced, f"forced by {VARIANT_ENV}; it {note} the translation quality gate")
    default = runtime.preferred_variant(TRANSLATION_MODEL, runtime.manifest(TRANSLATION_MODEL).get("variants", {}))
    if default == "fp32":
        return VariantDecision("fp32", "fp32 is this device's default variant")
    entry = gate.get(default)
    if entry and entry.get("passed"):
        return VariantDecision(default, f"{default} passed the translation quality gate ({entry['summary']})")
    why = entry["summary"] if entry else "it was not measured on this device"
    return VariantDecision("fp32", f"{default} is not served for translation: {why}")


def served_variant() -> str:
    return served_variant_decision().variant


def get_translator(variant: str | None = None) -> Engine:
    """The translator's engine: the served variant unless `variant` names one (evaluation compares them)."""
    return get_engine(TRANSLATION_MODEL, variant or served_variant())


# ------------------------------------------------------------------------------------------ requests


def segment_settings(segment: str, max_new_tokens: int | None = None) -> SamplingSettings:
    # Greedy: the same input always gives the same translation, and the ONNX path can be checked against
    # PyTorch token for token. The budget scales with the segment (CJK <-> Latin expands up to ~3x in tokens);
    # evaluation may cap it lower (bounded by the reference's length) to stay within its CPU budget.
    budget = min(512, 3 * len(segment) + 32)
    if max_new_tokens is not None:
        budget = max(1, min(budget, max_new_tokens))
    return SamplingSettings(max_new_tokens=budget, temperature=0, repetition_penalty=1.0)


@dataclass
class TranslationUpdate:
    text: str  # translation so far, paragraph structure restored
    source: str  # resolved source language (after auto-detection)
    target: str
    segments_done: int
    segments_total: int
    tokens: int
    tokens_per_s: float | None
    ttft_ms: float | None
    note: str = ""


def validate_request(text: str, source: str, target: str) -> tuple[str, str, str, str]:
    """Returns (text, source, target, note); ValueError with a clear message for anything unusable."""
    if not isinstance(text, str):
        raise ValueError("the text to translate must be a string")
    text = text.replace("\x00", "")
    if not text.strip():
        raise ValueError("the text is empty: type or paste something to translate")
    if len(text) > MAX_INPUT_CHARS:
        raise ValueError(f"the text is {len(text):,} characters; the limit is {MAX_INPUT_CHARS:,} per request "
                         "(split it into parts)")
    target = parse_language(target)
    note = ""
    if isinstance(source, str) and source.strip().casefold() == AUTO:
        detection = detect_language_scored(text)
        source = detection.code
        note = f"detected source: {LANGUAGES[source].english_name}"
        if detection.confidence < 0.5:
            note += " (low confidence: pick the source language if this is wrong)"
    else:
        source = parse_language(source)
    if source == target:
        raise ValueError(f"source and target are both {LANGUAGES[source].english_name}: choose a different "
                         "target language" + (" (the source was auto-detected)" if note else ""))
    return text, source, target, note


def translate_stream(text: str, source: str, target: str, should_stop: Callable[[], bool] | None = None, *,
                     design: str | None = None, variant: str | None = None,
                     max_new_tokens: int | None = None) -> Iterator[TranslationUpdate]:
    """Stream the translation. design / variant / max_new_tokens default to what the site serves;
    evaluation sets them to compare prompt designs and ONNX variants on the same code path."""
    text, source, target, note = validate_request(text, source, target)
    lm = get_translator(variant)
    runtime.check_loaded(lm.info.model_id)  # its file deleted or changed since loaded: a clear refusal
    segments = split_for_translation(text, SEGMENT_CHARS)
    done: list[str] = []
    stats = GenerationStats()
    for index, segment in enumerate(segments):
        messages = messages_for(segment.text, source, target, design)
        ids = lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
        current = ""
        for step in lm.stream(ids, segment_settings(segment.text, max_new_tokens), should_stop=should_stop):
            stats.on_token()
            current += step.text
            partial = join_translations(segments[: index + 1], done + [current.strip()])
            yield TranslationUpdate(partial, source, target, index, len(segments), stats.tokens,
                                    stats.tokens_per_s, stats.ttft_ms, note)
            if step.finish_reason == "stopped":
                return
        done.append(current.strip())
    yield TranslationUpdate(join_translations(segments, done), source, target, len(segments), len(segments),
                            stats.tokens, stats.tokens_per_s, stats.ttft_ms, note)


def translate_text(text: str, source: str, target: str, **options) -> str:
    """The whole translation at once (evaluation, API clients that do not stream); options as translate_stream."""
    result = ""
    for update in translate_stream(text, source, target, **options):
        result = update.text
    return result
