"""Attention probabilities read from the same ONNX graphs that serve the demos (exported with
`attentions.<layer>` outputs from eager attention; see export/onnx_configs.py)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from models.generation import GENERATION_MODEL
from models.paths import model_dir
from models.registry import MINILM
from models.runtime import get_session
from models.tokenization import get_tokenizer
from models.translate import TRANSLATION_MODEL, get_translator, messages_for, translate_text, validate_request

ATTENTION_MODELS = {
    MINILM.id: "MiniLM-L6 (encoder, bidirectional: 6 layers × 12 heads)",
    GENERATION_MODEL: "SmolLM2-135M (decoder, causal: 30 layers × 9 heads)",
}
MAX_TOKENS = 512
MAX_ALIGNMENT_CHARS = 400


@dataclass
class AttentionResult:
    model_id: str
    tokens: list[str]  # display strings, one per position
    attentions: np.ndarray  # float32 [layers, heads, T, T]; rows sum to 1
    causal: bool
    source_span: tuple[int, int] | None = None  # translation alignment: source text tokens [start, end)
    target_span: tuple[int, int] | None = None  # and the generated translation's tokens
    truncated: bool = False


def _display_tokens(text: str, offsets, ids, tokenizer) -> list[str]:
    """Readable labels: the characters each token covers (so byte-level BPE shows Chinese, not 'æĪij')."""
    labels = []
    for (start, end), token_id in zip(offsets, ids):
        piece = text[start:end] if end > start else tokenizer.convert_ids_to_tokens(int(token_id))
        labels.append(piece.replace("\n", "⏎").replace(" ", "␣") if not piece.strip() else piece.replace("\n", "⏎"))
    return labels


@lru_cache(maxsize=None)
def _is_causal(model_id: str) -> bool:
    config = json.loads((model_dir(model_id) / "config.json").read_text())
    return config.get("model_type") != "bert"


def _run(model_id: str, ids: np.ndarray) -> np.ndarray:
    """Attention probabilities [layers, heads, T, T] for one unpadded sequence."""
    session = get_session(model_id)
    names = {i.name: i for i in session.get_inputs()}
    feed = {"input_ids": ids[None, :], "attention_mask": np.ones((1, ids.size), dtype=np.int64)}
    if "token_type_ids" in names:
        feed["token_type_ids"] = np.zeros((1, ids.size), dtype=np.int64)
    if "position_ids" in names:
        feed["position_ids"] = np.arange(ids.size, dtype=np.int64)[None, :]
    for name, meta in names.items():
        if name.startswith("past_key_values"):
            _, kv_heads, _, head_dim = meta.shape
            dtype = np.float16 if "float16" in meta.type else np.float32
            feed[name] = np.zeros((1, kv_heads, 0, head_dim), dtype=dtype)
    outputs = sorted((o.name for o in session.get_outputs() if o.name.startswith("attentions.")),
                     key=lambda n: int(n.split(".")[1]))
    if not outputs:
        raise ValueError(f"the served graph of {model_id!r} has no attention outputs")
    layers = session.run(outputs, feed)
    return np.stack([layer[0] for layer in layers]).astype(np.float32)


def attention_for_text(text: str, model_id: str, max_tokens: int = MAX_TOKENS) -> AttentionResult:
    if model_id not in ATTENTION_MODELS:
        raise ValueError(f"unknown model {model_id!r}; choose one of: {', '.join(ATTENTION_MODELS)}")
    if not isinstance(text, str) or not text.replace("\x00", "").strip():
        raise ValueError("the text is empty: type a sentence to see where the model attends")
    text = text.replace("\x00", "")
    if not 2 <= max_tokens <= MAX_TOKENS:
        raise ValueError(f"max_tokens must be between 2 and {MAX_TOKENS}")
    tokenizer = get_tokenizer(model_id)
    encoded = tokenizer(text, return_offsets_mapping=True, truncation=True, max_length=max_tokens)
    full_length = len(tokenizer(text)["input_ids"])
    ids = np.asarray(encoded["input_ids"], dtype=np.int64)
    tokens = _display_tokens(text, encoded["offset_mapping"], ids, tokenizer)
    return AttentionResult(model_id, tokens, _run(model_id, ids), _is_causal(model_id),
                           truncated=full_length > ids.size)


def translation_attention(text: str, source: str, target: str) -> AttentionResult:
    """Qwen's attention over prompt + source + its own translation: rows of target tokens, columns of
    source tokens give a (soft) word alignment."""
    text, source, target, _ = validate_request(text, source, target)
    if len(text) > MAX_ALIGNMENT_CHARS:
        raise ValueError(f"alignment works on up to {MAX_ALIGNMENT_CHARS} characters (got {len(text):,})")
    translation = translate_text(text, source, target)
    tokenizer = get_translator().tokenizer
    prompt = tokenizer.apply_chat_template(messages_for(text, source, target), add_generation_prompt=True,
                                           tokenize=False)
    full = prompt + translation
    encoded = tokenizer(full, return_offsets_mapping=True, add_special_tokens=False)
    ids = np.asarray(encoded["input_ids"], dtype=np.int64)
    if ids.size > MAX_TOKENS:
        raise ValueError(f"prompt + translation is {ids.size} tokens; the limit is {MAX_TOKENS}")
    src_start = prompt.rindex(text)
    offsets = encoded["offset_mapping"]
    source_tokens = [i for i, (s, e) in enumerate(offsets) if s < src_start + len(text) and e > src_start]
    target_tokens = [i for i, (s, e) in enumerate(offsets) if s >= len(prompt)]
    return AttentionResult(
        TRANSLATION_MODEL, _display_tokens(full, offsets, ids, tokenizer), _run(TRANSLATION_MODEL, ids), True,
        source_span=(source_tokens[0], source_tokens[-1] + 1) if source_tokens else None,
        target_span=(target_tokens[0], target_tokens[-1] + 1) if target_tokens else None,
    )
