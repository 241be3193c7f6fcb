"""The shared ONNX decode loop on a tiny random Llama exported like the real ones."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models import decoding
from models.decoding import OnnxCausalLM
from models.sampling import SamplingSettings

GREEDY = SamplingSettings(max_new_tokens=32, temperature=0, repetition_penalty=1.0)


@pytest.fixture
def lm(tiny_llama, tiny_registry):
    return OnnxCausalLM("tiny-llama")


def prompt_ids(tokenizer, text="The cat sat on the mat"):
    return tokenizer(text)["input_ids"]


def torch_greedy(model, ids, n):
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             max_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=0)
    return out[0, len(ids):].tolist()


def test_greedy_tokens_match_pytorch_for_32_tokens(lm, tiny_llama):
    model, tokenizer = tiny_llama
    ids = prompt_ids(tokenizer)
    lm.eos_ids = set()  # a random model may emit EOS anywhere; compare the full 32 tokens
    onnx_tokens = [step.token_id for step in lm.stream(ids, GREEDY)]
    assert len(onnx_tokens) == 32
    assert onnx_tokens == torch_greedy(model, ids, 32)


def test_chunked_prefill_gives_the_same_next_token_logits(lm, tiny_llama, monkeypatch):
    _, tokenizer = tiny_llama
    ids = prompt_ids(tokenizer, "Startups win with data, speed and focus. " * 6)
    whole, _ = lm.prefill(ids)
    monkeypatch.setattr(decoding, "PREFILL_LOGITS_BUDGET", 4 * lm.vocab_size * 16)  # 16-token chunks
    chunked, _ = lm.prefill(ids)
    assert len(ids) > 32
    np.testing.assert_allclose(chunked, whole, atol=1e-4)


def test_max_new_tokens_and_finish_reason(lm, tiny_llama):
    _, tokenizer = tiny_llama
    lm.eos_ids = set()
    steps = list(lm.stream(prompt_ids(tokenizer), SamplingSettings(max_new_tokens=5, temperature=0)))
    assert len(steps) == 5
    assert [s.finish_reason for s in steps] == [None] * 4 + ["length"]


def test_should_stop_ends_the_loop_after_the_current_token(lm, tiny_llama):
    _, tokenizer = tiny_llama
    lm.eos_ids = set()
    calls = []
    steps = list(lm.stream(prompt_ids(tokenizer), GREEDY, should_stop=lambda: len(calls.append(1) or calls) >= 3))
    assert len(steps) == 3
    assert steps[-1].finish_reason == "stopped"


def test_eos_token_ends_generation(lm, tiny_llama):
    _, tokenizer = tiny_llama
    ids = prompt_ids(tokenizer)
    first = next(iter(lm.stream(ids, GREEDY))).token_id
    lm.eos_ids = {first}
    steps = list(lm.stream(ids, GREEDY))
    assert len(steps) == 1 and steps[0].finish_reason == "eos"


def test_alternatives_are_the_top5_with_probabilities(lm, tiny_llama):
    _, tokenizer = tiny_llama
    lm.eos_ids = set()
    step = next(iter(lm.stream(prompt_ids(tokenizer), GREEDY, alternatives=5)))
    probs = [p for _, p in step.alternatives]
    assert len(probs) == 5
    assert probs == sorted(probs, reverse=True)
    assert 0 < sum(probs) <= 1.0 + 1e-6


def test_prompt_longer_than_context_is_rejected(lm):
    with pytest.raises(ValueError, match="context"):
        list(lm.stream([5] * (lm.max_context + 1), GREEDY))


def test_kv_cache_stays_in_ortvalues_between_steps(lm, tiny_llama):
    _, tokenizer = tiny_llama
    logits, past = lm.prefill(prompt_ids(tokenizer))
    import onnxruntime as ort

    assert all(isinstance(value, ort.OrtValue) for value in past)
    assert len(past) == 2 * lm.num_layers
