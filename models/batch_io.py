"""Classify's batch mode: an uploaded file (or pasted lines) in, a results table and its CSV out.

Reading is strict and says what is wrong (binary or non-UTF-8 files, no 'text' column, too big, too many
rows); writing goes through models.csv_export, so visitor text can never run as a spreadsheet formula.
"""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from pathlib import Path

from models.csv_export import table_to_csv
from models.sentiment import LABELS, predict_proba

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_BATCH_ROWS = 10_000


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


def batch_csv(rows: list[list]) -> str:
    """The results as CSV text (formula-safe: a text like '=1+2' is written as "'=1+2")."""
    return table_to_csv(BATCH_COLUMNS, rows)
