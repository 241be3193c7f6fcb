"""The PyTorch reference for translation: the site's prompts and greedy decoding through `generate`.

Evaluation and parity checks only (the serving path never imports torch): it reuses models.translate's
validation, segmentation and prompt table, so a difference from the ONNX path is the runtime's alone.
"""
from __future__ import annotations

from functools import lru_cache

from models.text_split import join_translations, split_for_translation
from models.translate import (
    SEGMENT_CHARS,
    TRANSLATION_MODEL,
    get_translator,
    messages_for,
    segment_settings,
    validate_request,
)


@lru_cache(maxsize=1)
def _torch_reference():
    from export.torch_models import load_model
    from models.registry import get_spec

    return load_model(get_spec(TRANSLATION_MODEL), attn_implementation="sdpa")


def torch_translate_text(text: str, source: str, target: str, design: str | None = None) -> str:
    """The same prompts and greedy decoding through PyTorch `generate` (reference for evaluation/benchmarks)."""
    import torch

    text, source, target, _ = validate_request(text, source, target)
    model, tokenizer = _torch_reference(), get_translator().tokenizer
    segments = split_for_translation(text, SEGMENT_CHARS)
    outputs = []
    for segment in segments:
        ids = tokenizer.apply_chat_template(messages_for(segment.text, source, target, design),
                                            add_generation_prompt=True)
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=segment_settings(segment.text).max_new_tokens, do_sample=False)
        outputs.append(tokenizer.decode(out[0, len(ids):], skip_special_tokens=True).strip())
    return join_translations(segments, outputs)
