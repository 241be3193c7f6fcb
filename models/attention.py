"""Attention probabilities read from the site's ONNX graphs (exported with `attentions.<layer>` outputs from
eager attention; see export/onnx_configs.py).

Which graph: the tab reads every model's **fp32** variant (ATTENTION_VARIANT), not the quantized graph that
serves Generate/Translate on CPU. Measured against PyTorch eager fp32 on the same weights
(eval/attention_variants.py -> eval/results/attention_variants.json), the served int4/int8-activation graphs
move single attention probabilities by up to a few hundredths, which is a visible change in a heatmap; the
fp32 graphs stay within 1e-4. The cost is one more session per decoder, loaded on the first attention
request only (its resident memory is in the same results file); the translation itself still runs on the
served (fast) variant and only the one forward pass that reads the attention uses fp32.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.generation import GENERATION_MODEL
from models.registry import MINILM
from models.runtime import get_session
from models.tokenization import get_tokenizer
from models.translate import TRANSLATION_MODEL, get_translator, messages_for, translate_text, validate_request

ATTENTION_VARIANT = "fp32"
MAX_TOKENS = 512
MAX_ALIGNMENT_CHARS = 400
VARIANTS_RESULTS = Path(__file__).resolve().parent.parent / "eval" / "results" / "attention_variants.json"


@dataclass(frozen=True)
class AttentionModel:
    """What the tab needs to know about a model before running it (checked against config.json by a test)."""

    id: str
    name: str
    layers: int
    heads: int
    causal: bool
    in_dropdown: bool = True  # the translation model is reached through "Translate & align" only

    @property
    def label(self) -> str:
        kind = "decoder, causal" if self.causal else "encoder, bidirectional"
        return f"{self.name} ({kind}: {self.layers} layers × {self.heads} heads)"


MODELS: dict[str, AttentionModel] = {
    model.id: model
    for model in (
        AttentionModel(MINILM.id, "MiniLM-L6", layers=6, heads=12, causal=False),
        AttentionModel(GENERATION_MODEL, "SmolLM2-135M", layers=30, heads=9, causal=True),
        AttentionModel(TRANSLATION_MODEL, "Qwen2.5-0.5B", layers=24, heads=14, causal=True, in_dropdown=False),
    )
}
ATTENTION_MODELS = {model.id: model.label for model in MODELS.values() if model.in_dropdown}
MAX_LAYERS = max(model.layers for model in MODELS.values())
MAX_HEADS = max(model.heads for model in MODELS.values())


@dataclass(frozen=True)
class AttentionResult:
    model_id: str
    tokens: list[str]  # display strings, one per position
    attentions: np.ndarray  # float32 [layers, heads, T, T]; rows sum to 1
    causal: bool
    special: list[bool]  # per position: a special token (BOS, [CLS], [SEP], <|im_start|>...), from the tokenizer
    variant: str = ATTENTION_VARIANT  # which exported graph produced the weights
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


def _special_flags(tokenizer, ids, added_mask=None) -> list[bool]:
    """Per position: a special token, as the tokenizer declares them. `added_mask` is what it returns for
    `return_special_tokens_mask=True` (the tokens it added itself, e.g. [CLS]/[SEP]); tokens written as text,
    like the chat template's <|im_start|>, are special when the tokenizer's added-token table says so (Qwen
    declares only <|endoftext|> in all_special_ids)."""
    special_ids = set(tokenizer.all_special_ids)
    special_ids.update(i for i, token in tokenizer.added_tokens_decoder.items() if token.special)
    added = added_mask if added_mask is not None else [0] * len(ids)
    return [bool(flag) or int(token_id) in special_ids for flag, token_id in zip(added, ids)]


def _run(model_id: str, ids: np.ndarray, variant: str = ATTENTION_VARIANT) -> np.ndarray:
    """Attention probabilities [layers, heads, T, T] for one unpadded sequence, from one forward pass.

    Decoders go through the shared decoder abstraction (models.decoder); the encoder (BERT: no cache, token
    types) is fed here, the one place the tab builds ONNX inputs."""
    if MODELS[model_id].causal:
        return _decoder_graph(model_id, variant).attention(ids.tolist())
    session = get_session(model_id, variant)
    names = {i.name for i in session.get_inputs()}
    feed = {"input_ids": ids[None, :], "attention_mask": np.ones((1, ids.size), dtype=np.int64)}
    if "token_type_ids" in names:
        feed["token_type_ids"] = np.zeros((1, ids.size), dtype=np.int64)
    outputs = sorted((o.name for o in session.get_outputs() if o.name.startswith("attentions.")),
                     key=lambda n: int(n.split(".")[1]))
    if not outputs:
        raise ValueError(f"the {variant} graph of {model_id!r} has no attention outputs")
    layers = session.run(outputs, feed)
    return np.stack([layer[0] for layer in layers]).astype(np.float32)


def _decoder_graph(model_id: str, variant: str):
    from models.decoder import DecoderGraph

    return DecoderGraph.open(model_id, variant)  # the runtime's shared session; config and tokenizer are cached


def attention_for_text(text: str, model_id: str, max_tokens: int = MAX_TOKENS) -> AttentionResult:
    if model_id not in ATTENTION_MODELS:
        raise ValueError(f"unknown model {model_id!r}; choose one of: {', '.join(ATTENTION_MODELS)}")
    if not isinstance(text, str) or not text.replace("\x00", "").strip():
        raise ValueError("the text is empty: type a sentence to see where the model attends")
    text = text.replace("\x00", "")
    if not 2 <= max_tokens <= MAX_TOKENS:
        raise ValueError(f"max_tokens must be between 2 and {MAX_TOKENS}")
    tokenizer = get_tokenizer(model_id)
    encoded = tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True, truncation=True,
                        max_length=max_tokens)
    full_length = len(tokenizer(text)["input_ids"])
    ids = np.asarray(encoded["input_ids"], dtype=np.int64)
    return AttentionResult(
        model_id, _display_tokens(text, encoded["offset_mapping"], ids, tokenizer), _run(model_id, ids),
        MODELS[model_id].causal, special=_special_flags(tokenizer, ids, encoded["special_tokens_mask"]),
        truncated=full_length > ids.size,
    )


def translation_attention(text: str, source: str, target: str) -> AttentionResult:
    """Qwen's attention over prompt + source + its own translation: rows of target tokens, columns of
    source tokens give a (soft) word alignment. The translation is the Translate tab's (served variant);
    the attention is read from one fp32 forward pass over the finished text."""
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
        TRANSLATION_MODEL, _display_tokens(full, offsets, ids, tokenizer), _run(TRANSLATION_MODEL, ids),
        MODELS[TRANSLATION_MODEL].causal, special=_special_flags(tokenizer, ids),
        source_span=(source_tokens[0], source_tokens[-1] + 1) if source_tokens else None,
        target_span=(target_tokens[0], target_tokens[-1] + 1) if target_tokens else None,
    )


@dataclass(frozen=True)
class VariantCheck:
    """One exported graph of one model against PyTorch eager fp32 (from eval/results/attention_variants.json)."""

    model_id: str
    variant: str
    max_abs_diff: float  # attention probability, over the eval's texts, all layers/heads/positions
    rss_growth_mb: float  # resident memory the session added (after running the texts)
    shown_by_tab: bool  # the variant this tab reads
    served_on_cpu: bool  # the variant Generate/Translate serve on CPU


def variant_checks(path: Path | None = None) -> tuple[list[VariantCheck], dict]:
    """The measured checks and the run's environment (device, date, commit); ([], {}) when not measured yet."""
    path = path or VARIANTS_RESULTS
    if not path.is_file():
        return [], {}
    data = json.loads(path.read_text(encoding="utf-8"))
    checks = [
        VariantCheck(model_id, variant, float(report["max_abs_diff"]), float(report["rss_growth_mb"]),
                     variant == data["tab_variant"], variant == entry["served_cpu_variant"])
        for model_id, entry in data["models"].items()
        for variant, report in entry["variants"].items()
    ]
    return checks, data["environment"]
