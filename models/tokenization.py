"""Tokenizers saved beside each exported model (fast Rust tokenizers via transformers; no torch needed)."""
from __future__ import annotations

import threading
from functools import lru_cache

from models.paths import model_dir
from models.runtime import RuntimeUnavailable

_lock = threading.Lock()


@lru_cache(maxsize=None)
def _load(model_id: str):
    from transformers import AutoTokenizer

    path = model_dir(model_id)
    if not (path / "tokenizer.json").is_file():
        raise RuntimeUnavailable(f"no tokenizer for {model_id!r} in {path}; run `python -m export`")
    return AutoTokenizer.from_pretrained(str(path))


def get_tokenizer(model_id: str):
    with _lock:  # the first load is not thread-safe; later calls hit the cache
        return _load(model_id)
