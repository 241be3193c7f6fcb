"""Sentiment classification (negative / neutral / positive) served from the one `sentiment-minilm` ONNX graph.

No torch, no gradio: tokenization (the tokenizer saved beside the export), one onnxruntime session,
occlusion saliency, and parsing of batch uploads. Library errors are ValueError with a message a person
can act on; the demo shows them as gr.Error.
"""
from __future__ import annotations

import csv
import html
import io
import json
import os
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
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_BATCH_ROWS = 10_000
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


def run_bucketed(session, tokenizer, texts: list[str], progress: Callable[[int, int], None] | None = None
                 ) -> tuple[np.ndarray, list[bool]]:
    """Probabilities [n, 3] in input order: texts are tokenized once, grouped by token length
    (models.batching.length_buckets: at most BATCH_SIZE rows, little padding) and each group runs padded
    to its own longest text. `progress(done, total)` is called after each run."""
    ids, truncated = _tokenize(tokenizer, texts)
    probs = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
    done = 0
    for idx in length_buckets([len(row) for row in ids], BATCH_SIZE):
        probs[idx] = _run(session, _pad([ids[i] for i in idx], tokenizer.pad_token_id or 0))
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


# ---------------------------------------------------------------- batch mode


def _read_source(source) -> tuple[bytes | str, str]:
    """(content, name) from a path, an uploaded-file object, raw bytes, or pasted text."""
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), "upload"
    path = None
    if isinstance(source, os.PathLike):
        path = Path(source)
    elif not isinstance(source, str) and hasattr(source, "name"):  # gradio / tempfile objects
        path = Path(source.name)
    if path is None:
        if not isinstance(source, str):
            raise ValueError(f"batch input must be a file or text, not {type(source).__name__}")
        if len(source.encode("utf-8", "surrogatepass")) > MAX_UPLOAD_BYTES:
            raise ValueError(f"the pasted text is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        return source, "pasted text"
    if not path.is_file():
        raise ValueError(f"the uploaded file {path.name!r} cannot be found; upload it again")
    size = path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise ValueError(f"{path.name} is {size / 1024 / 1024:.1f} MB; the limit is "
                         f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    return path.read_bytes(), path.name


def _decode(data: bytes, name: str) -> str:
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(f"{name} is {len(data) / 1024 / 1024:.1f} MB; the limit is "
                         f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    if b"\x00" in data[:8192]:
        raise ValueError(f"{name} looks like a binary file (e.g. .xlsx, image); upload a UTF-8 .csv or .txt")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name} is not UTF-8 text (undecodable byte at position {exc.start}); "
                         "save it as UTF-8 CSV or plain text and upload again") from None


def _looks_like_csv_header(first_line: str) -> bool:
    fields = next(csv.reader([first_line]), [])
    return len(fields) > 1 and any(f.strip().lower() == "text" for f in fields)


def _parse_csv(text: str, name: str) -> list[str]:
    try:
        rows = csv.reader(io.StringIO(text))
        header = next(rows, None)
        if not header or not any(h.strip() for h in header):
            raise ValueError(f"{name} is empty: it needs a header row with a 'text' column and one row per text")
        names = [h.strip().lower() for h in header]
        if "text" not in names:
            shown = ", ".join(repr(h.strip()) for h in header[:10])
            raise ValueError(f"{name} has no 'text' column (columns found: {shown}); "
                             "name the column that holds the sentences 'text'")
        col = names.index("text")
        out = []
        for row in rows:
            if len(out) >= MAX_BATCH_ROWS and col < len(row) and row[col].strip():
                raise ValueError(f"{name} has more than {MAX_BATCH_ROWS:,} rows; split it into smaller files")
            if col < len(row) and row[col].strip():
                out.append(row[col].strip())
    except csv.Error as exc:
        raise ValueError(f"{name} is not a readable CSV ({exc}); check its quoting") from None
    return out


def parse_batch(file_or_text) -> list[str]:
    """Texts for batch mode.

    A file named *.csv (or pasted text whose first line is a CSV header with a 'text' column) is read as
    CSV and its 'text' column is used; anything else is one text per line. Blank lines/cells are skipped.
    Empty input, a CSV without a 'text' column, binary or non-UTF-8 files, more than 5 MB or more than
    10,000 texts raise ValueError saying which."""
    if file_or_text is None:
        raise ValueError("no input: upload a .csv/.txt file or paste one text per line")
    content, name = _read_source(file_or_text)
    text = _decode(content, name) if isinstance(content, bytes) else content
    if "\x00" in text:
        raise ValueError(f"{name} contains NUL characters; it looks like binary data, not text")
    if not text.strip():
        raise ValueError(f"{name} is empty: upload a .csv with a 'text' column or paste one text per line")
    first_line = text.lstrip().splitlines()[0]
    if name.lower().endswith(".csv") or _looks_like_csv_header(first_line):
        texts = _parse_csv(text, name)
    else:
        texts = [line.strip() for line in text.splitlines() if line.strip()]
    if not texts:
        raise ValueError(f"{name} has no texts in it (only a header or blank lines)")
    if len(texts) > MAX_BATCH_ROWS:
        raise ValueError(f"{name} has {len(texts):,} texts; the limit is {MAX_BATCH_ROWS:,} per batch")
    return texts


BATCH_COLUMNS = ("text", "label", *(f"p_{label}" for label in LABELS))


def batch_rows(texts: list[str], progress: Callable[[int, int], None] | None = None) -> list[list]:
    """[text, label, p_negative, p_neutral, p_positive] per text, in input order."""
    probs, _ = predict_proba(texts, progress)
    return [[t, LABELS[int(p.argmax())], *(round(float(x), 4) for x in p)] for t, p in zip(texts, probs)]


def write_batch_csv(rows: list[list], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(BATCH_COLUMNS)
        writer.writerows(rows)
    return path


def load_metrics(path: Path = METRICS_PATH) -> dict | None:
    """The training report (test metrics, split sizes, class balance), or None before training."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
