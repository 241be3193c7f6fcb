"""The shared tokenizer survives concurrent calls that change truncation (it raised 'Already borrowed')."""
from __future__ import annotations

import threading

from models.tokenization import get_tokenizer


def test_concurrent_truncating_calls_do_not_collide(tiny_llama, tiny_registry):
    tokenizer = get_tokenizer("tiny-llama")
    errors = []

    def hammer(i):
        try:
            for n in range(200):
                tokenizer("The cat sat on the mat " * (1 + (n + i) % 5), truncation=bool(n % 2), max_length=8)
                tokenizer.decode([5, 6, 7])
        except Exception as exc:  # noqa: BLE001 - any failure is the bug
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_the_proxy_behaves_like_the_tokenizer(tiny_llama, tiny_registry):
    _, original = tiny_llama
    shared = get_tokenizer("tiny-llama")
    text = "Hello world"
    assert shared(text)["input_ids"] == original(text)["input_ids"]
    assert shared.eos_token_id == original.eos_token_id and len(shared) == len(original)
