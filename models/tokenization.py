"""Tokenizers saved beside each exported model (fast Rust tokenizers via transformers; no torch needed).

One tokenizer per model is shared by every request thread. A fast tokenizer is not safe to share: a call
with truncation/padding reconfigures the Rust object, and a concurrent call then fails with
"Already borrowed" (seen under load on the Attention tab). Every method call therefore goes through a lock;
tokenizing is microseconds next to a model run.
"""
from __future__ import annotations

import threading
from functools import lru_cache

from models.paths import model_dir
from models.runtime import RuntimeUnavailable

_lock = threading.Lock()


class SharedTokenizer:
    """Proxy that serialises calls into one transformers fast tokenizer."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self._lock = threading.RLock()

    def __call__(self, *args, **kwargs):
        with self._lock:
            return self._tokenizer(*args, **kwargs)

    def __len__(self) -> int:
        return len(self._tokenizer)

    def __getattr__(self, name):
        attribute = getattr(self._tokenizer, name)
        if not callable(attribute):
            return attribute

        def locked(*args, **kwargs):
            with self._lock:
                return attribute(*args, **kwargs)

        return locked


@lru_cache(maxsize=None)
def _load(model_id: str) -> SharedTokenizer:
    from transformers import AutoTokenizer

    path = model_dir(model_id)
    if not (path / "tokenizer.json").is_file():
        raise RuntimeUnavailable(f"no tokenizer for {model_id!r} in {path}; run `python -m export`")
    return SharedTokenizer(AutoTokenizer.from_pretrained(str(path)))


def get_tokenizer(model_id: str) -> SharedTokenizer:
    with _lock:  # the first load is not thread-safe; later calls hit the cache
        return _load(model_id)
