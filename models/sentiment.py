"""Sentiment classification (negative / neutral / positive) served from the one `sentiment-minilm` ONNX graph.

No torch, no gradio: tokenization (the tokenizer saved beside the export), one onnxruntime session,
occlusion saliency. Batch uploads and the results CSV live in models.batch_io. Library errors are
ValueError with a message a person can act on; the demo shows them as gr.Error.
"""
from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from models.batching import DynamicBatcher, length_buckets
from models.paths import REPO_ROOT

MODEL_ID = "sentiment-minilm"
LABELS = ("negative", "neutral", "positive")
# Tweets in the corpus are at most 320 characters (~90 tokens); 128 tokens covers them and keeps padded
# batches cheap. Longer input is truncated (with a note), never refused.
MAX_TOKENS = 128
# Cut absurdly long input before tokenizing; 128 tokens never need more than a few thousand characters.
MAX_CHARS = 5_000
BATCH_SIZE = 32  # rows per onnxruntime call: bounded padding waste, good throughput on 2 cores
MAX_SALIENCY_WORDS = 80  # occlusion variants per text: one batch of at most this many + 1 rows
METRICS_PATH = REPO_ROOT / "models" / "weights" / "sentiment_metrics.json"

_URL = re.compile(r"(?:https?://|www\.)\S*", re.IGNORECASE)
_MENTION = re.compile(r"@\w+")
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize_text(text: str) -> str:
    """The same cleanup at training and serving time: links -> 'http', @handles -> '@user', HTML entities
    decoded, whitespace collapsed. Masking handles keeps the head from learning that '@united' means
    'negative' (airline complaints dominate the corpus)."""
    text = _CONTROL.sub(" ", html.unescape(text))
    text = _URL.sub("http", text)
    text = _MENTION.sub("@user", text)
    return _SPACE.sub(" ", text).strip()


def validate_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise ValueError("classify() takes a list of texts, not a single string")
    texts = list(texts)
    if not texts:
        raise ValueError("nothing to classify: the list of texts is empty")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"text #{i + 1} is {type(text).__name__}, not a string")
        if not _CONTROL.sub("", text).strip():  # NUL and other control characters alone are empty too
            where = "" if len(texts) == 1 else f" (#{i + 1} of {len(texts)})"
            raise ValueError(f"the text is empty{where}: type a sentence to classify")
    return texts


def _backend():
    from models.runtime import get_session
    from models.tokenization import get_tokenizer

    return get_session(MODEL_ID), get_tokenizer(MODEL_ID)


def _tokenize(tokenizer, texts: list[str]) -> tuple[list[list[int]], list[bool]]:
    """Token ids per text (unpadded, cut to MAX_TOKENS) and whether each text was truncated."""
    cleaned = [normalize_text(t[:MAX_CHARS]) for t in texts]
    enc = tokenizer(cleaned, truncation=True, max_length=MAX_TOKENS)
    truncated = [len(e.overflowing) > 0 or len(t) > MAX_CHARS for e, t in zip(enc.encodings, texts)]
    return enc["input_ids"], truncated


def _pad(ids: list[list[int]], pad_id: int) -> dict[str, np.ndarray]:
    """input_ids / attention_mask padded (on the right) to the longest row."""
    longest = max(len(row) for row in ids)
    input_ids = np.full((len(ids), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), longest), dtype=np.int64)
    for r, row in enumerate(ids):
        input_ids[r, :len(row)] = row
        mask[r, :len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def _encode(tokenizer, texts: list[str]) -> tuple[dict[str, np.ndarray], list[bool]]:
    """One padded batch of all texts (saliency: variants of one text have about the same length)."""
    ids, truncated = _tokenize(tokenizer, texts)
    return _pad(ids, tokenizer.pad_token_id or 0), truncated


def _run(session, arrays: dict[str, np.ndarray]) -> np.ndarray:
    feeds = {}
    for inp in session.get_inputs():
        if inp.name in arrays:
            feeds[inp.name] = arrays[inp.name]
        elif inp.name == "token_type_ids":
            feeds[inp.name] = np.zeros_like(arrays["input_ids"])
        else:
            raise ValueError(f"the sentiment graph wants an input {inp.name!r} this code does not provide")
    return session.run(["probabilities"], feeds)[0]


def bucketed_batches(tokenizer, texts: list[str]) -> tuple[list[tuple[list[int], dict[str, np.ndarray]]], list[bool]]:
    """The batches the classifier runs: texts tokenized once, grouped by token length
    (models.batching.length_buckets: at most BATCH_SIZE rows, little padding), each group padded to its own
    longest text; [(row indices, arrays)] and, per text, whether it was truncated."""
    ids, truncated = _tokenize(tokenizer, texts)
    pad_id = tokenizer.pad_token_id or 0
    return [(idx, _pad([ids[i] for i in idx], pad_id))
            for idx in length_buckets([len(row) for row in ids], BATCH_SIZE)], truncated


def run_bucketed(session, tokenizer, texts: list[str], progress: Callable[[int, int], None] | None = None
                 ) -> tuple[np.ndarray, list[bool]]:
    """Probabilities [n, 3] in input order, run in bucketed_batches. `progress(done, total)` is called after
    each run."""
    batches, truncated = bucketed_batches(tokenizer, texts)
    probs = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
    done = 0
    for idx, arrays in batches:
        probs[idx] = _run(session, arrays)
        done += len(idx)
        if progress:
            progress(done, len(texts))
    return probs, truncated


def predict_proba(texts: Sequence[str], progress: Callable[[int, int], None] | None = None
                  ) -> tuple[np.ndarray, list[bool]]:
    """Probabilities [n, 3] (LABELS order) and, per text, whether it was truncated to MAX_TOKENS.

    Batches hold texts of similar token length (run_bucketed); results come back in input order.
    `progress(done, total)` is called after each batch."""
    texts = validate_texts(texts)
    session, tokenizer = _backend()
    return run_bucketed(session, tokenizer, texts, progress)


def as_dict(row: np.ndarray) -> dict[str, float]:
    return {label: float(p) for label, p in zip(LABELS, row)}


def classify(texts: list[str], progress: Callable[[int, int], None] | None = None) -> list[dict[str, float]]:
    """One {label: probability} per text (batched, padded, truncated to MAX_TOKENS tokens)."""
    probs, _ = predict_proba(texts, progress)
    return [as_dict(row) for row in probs]


def truncation_note(truncated: bool) -> str:
    return (f"Note: the text is longer than {MAX_TOKENS} tokens; only its first {MAX_TOKENS} tokens "
            "were classified." if truncated else "")


def _run_requests(texts: Sequence[str]) -> list[tuple[np.ndarray, bool]]:
    probs, truncated = predict_proba(texts)
    return list(zip(probs, truncated))


_batcher = None
_batcher_lock = threading.Lock()


def _request_batcher() -> DynamicBatcher:
    global _batcher
    with _batcher_lock:
        if _batcher is None:
            # No waiting window: a lone request runs at once (a 5 ms window cost every single request 5 ms),
            # and under load the requests that queue while a batch runs form the next batch.
            _batcher = DynamicBatcher(_run_requests, max_batch=BATCH_SIZE, max_wait_s=0.0, name="classify")
        return _batcher


def classify_one(text: str) -> tuple[dict[str, float], str]:
    """Probabilities for one text and a note ('' or why part of it was not read). Concurrent callers are
    batched together (models.batching): one ONNX run serves all requests queued while the last one ran."""
    validate_texts([text])  # bad input fails here, never inside a shared batch
    probs, truncated = _request_batcher()(text)
    return as_dict(probs), truncation_note(truncated)


def _words(text: str) -> list[str]:
    """Words with their trailing whitespace, so ''.join(words) is the text (minus leading space)."""
    return re.findall(r"\S+\s*", text)


def saliency(text: str) -> list[tuple[str, float]]:
    """Occlusion: for each word, p(predicted class | text) - p(predicted class | text without that word).

    Positive = the word pushes towards the predicted class. All variants run as one batch. Words past
    MAX_SALIENCY_WORDS score 0.0 (they are also past what the model reads in most cases)."""
    validate_texts([text])
    text = text[:MAX_CHARS]
    words = _words(text)
    scored = min(len(words), MAX_SALIENCY_WORDS)
    variants = [text] + ["".join(words[:i] + words[i + 1:]) or " " for i in range(scored)]
    session, tokenizer = _backend()
    arrays, _ = _encode(tokenizer, variants)
    probs = _run(session, arrays)
    predicted = int(probs[0].argmax())
    deltas = probs[0, predicted] - probs[1:, predicted]
    return [(w, float(deltas[i]) if i < scored else 0.0) for i, w in enumerate(words)]


def load_metrics(path: Path = METRICS_PATH) -> dict | None:
    """The training report (test metrics, split sizes, class balance), or None before training."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
