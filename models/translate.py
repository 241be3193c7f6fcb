"""Translation with Qwen2.5-Coder-0.5B-Instruct through the shared ONNX decode loop (models.decoding).

A 0.5B model translates a sentence or two well and drifts on long inputs, so text is split into short
segments (models.text_split), each translated greedily (deterministic, and comparable with PyTorch), and
the pieces are joined back with the original paragraph structure.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from models import runtime
from models.decoding import GenerationStats
from models.engine import Engine, get_engine
from models.languages import LANGUAGES, detect_language_scored, parse_language, AUTO
from models.sampling import SamplingSettings
from models.text_split import join_translations, split_for_translation

TRANSLATION_MODEL = "qwen2.5-coder-0.5b-instruct"
MAX_INPUT_CHARS = 3000  # ~1,000 output tokens: about a minute and a half on a 2-core CPU
SEGMENT_CHARS = 200


def get_translator() -> Engine:
    return get_engine(TRANSLATION_MODEL)


def messages_for(text: str, source: str, target: str) -> list[dict]:
    src, tgt = LANGUAGES[source].prompt_name, LANGUAGES[target].prompt_name
    return [
        {"role": "system", "content": f"You are a professional translator. Translate the user's text from {src} "
                                      f"to {tgt}. Output only the translation, with no explanations, notes or quotes."},
        {"role": "user", "content": text},
    ]


def segment_settings(segment: str) -> SamplingSettings:
    # Greedy: the same input always gives the same translation, and the ONNX path can be checked against
    # PyTorch token for token. The budget scales with the segment (CJK <-> Latin expands up to ~3x in tokens).
    return SamplingSettings(max_new_tokens=min(512, 3 * len(segment) + 32), temperature=0, repetition_penalty=1.0)


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


def translate_stream(text: str, source: str, target: str,
                     should_stop: Callable[[], bool] | None = None) -> Iterator[TranslationUpdate]:
    text, source, target, note = validate_request(text, source, target)
    lm = get_translator()
    runtime.check_loaded(lm.info.model_id)  # its file deleted or changed since loaded: a clear refusal
    yield from _translate_segments(lm, text, source, target, note, should_stop)


def _translate_segments(lm: Engine, text: str, source: str, target: str, note: str,
                        should_stop: Callable[[], bool] | None) -> Iterator[TranslationUpdate]:
    segments = split_for_translation(text, SEGMENT_CHARS)
    done: list[str] = []
    stats = GenerationStats()
    for index, segment in enumerate(segments):
        ids = lm.tokenizer.apply_chat_template(messages_for(segment.text, source, target), add_generation_prompt=True)
        current = ""
        for step in lm.stream(ids, segment_settings(segment.text), should_stop=should_stop):
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


def translate_text(text: str, source: str, target: str) -> str:
    """The whole translation at once (evaluation, API clients that do not stream)."""
    result = ""
    for update in translate_stream(text, source, target):
        result = update.text
    return result


@lru_cache(maxsize=1)
def _torch_reference():
    from export.torch_models import load_model
    from models.registry import get_spec

    return load_model(get_spec(TRANSLATION_MODEL), attn_implementation="sdpa")


def torch_translate_text(text: str, source: str, target: str) -> str:
    """The same prompts and greedy decoding through PyTorch `generate` (reference for evaluation/benchmarks)."""
    import torch

    text, source, target, _ = validate_request(text, source, target)
    model, tokenizer = _torch_reference(), get_translator().tokenizer
    segments = split_for_translation(text, SEGMENT_CHARS)
    outputs = []
    for segment in segments:
        ids = tokenizer.apply_chat_template(messages_for(segment.text, source, target), add_generation_prompt=True)
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=segment_settings(segment.text).max_new_tokens, do_sample=False)
        outputs.append(tokenizer.decode(out[0, len(ids):], skip_special_tokens=True).strip())
    return join_translations(segments, outputs)
