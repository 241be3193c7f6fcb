"""The decoder abstraction (models.decoder.DecoderGraph) and the per-sequence decode logic, on a tiny random
Llama exported like the real ones (optimum's graph: the engine steps it one sequence at a time)."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from models import decoder
from models.sampling import SamplingSettings

GREEDY = SamplingSettings(max_new_tokens=32, temperature=0, repetition_penalty=1.0)


@pytest.fixture
def lm(tiny_llama, make_engine):
    return make_engine("tiny-llama", eos=False)  # a random model may emit EOS anywhere


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
    onnx_tokens = [step.token_id for step in lm.stream(ids, GREEDY)]
    assert len(onnx_tokens) == 32
    assert onnx_tokens == torch_greedy(model, ids, 32)
    assert lm.graph.greedy(ids, 32) == onnx_tokens  # the graph's own greedy loop (parity, gate) agrees


def test_chunked_prefill_gives_the_same_next_token_logits(lm, tiny_llama, monkeypatch):
    _, tokenizer = tiny_llama
    ids = prompt_ids(tokenizer, "Startups win with data, speed and focus. " * 6)
    whole, _ = lm.graph.prefill(ids)
    monkeypatch.setattr(decoder, "PREFILL_LOGITS_BUDGET", 4 * lm.graph.config.vocab_size * 16)  # 16-token chunks
    chunked, _ = lm.graph.prefill(ids)
    assert len(ids) > 32
    np.testing.assert_allclose(chunked, whole, atol=1e-4)


def test_same_seed_reproduces_text_and_every_other_seed_differs(lm, tiny_llama):
    _, tokenizer = tiny_llama
    ids = prompt_ids(tokenizer)
    settings = SamplingSettings(max_new_tokens=24, temperature=1.0, top_k=0, top_p=1.0, seed=7)
    first = [s.token_id for s in lm.stream(ids, settings)]
    again = [s.token_id for s in lm.stream(ids, settings)]
    others = [[s.token_id for s in lm.stream(ids, SamplingSettings(max_new_tokens=24, temperature=1.0, top_k=0,
                                                                     top_p=1.0, seed=seed))] for seed in (1, 2, 3)]
    assert first == again
    assert all(other != first for other in others)  # 24 tokens over a ~400-token vocabulary at temperature 1


def test_max_new_tokens_and_finish_reason(lm, tiny_llama):
    _, tokenizer = tiny_llama
    steps = list(lm.stream(prompt_ids(tokenizer), SamplingSettings(max_new_tokens=5, temperature=0)))
    assert len(steps) == 5
    assert [s.finish_reason for s in steps] == [None] * 4 + ["length"]


def test_should_stop_ends_the_loop_after_the_current_token(lm, tiny_llama):
    _, tokenizer = tiny_llama
    calls = []
    steps = list(lm.stream(prompt_ids(tokenizer), GREEDY, should_stop=lambda: len(calls.append(1) or calls) >= 3))
    assert len(steps) == 3
    assert steps[-1].finish_reason == "stopped"


def test_eos_token_ends_generation(lm, tiny_llama):
    from dataclasses import replace

    _, tokenizer = tiny_llama
    ids = prompt_ids(tokenizer)
    first = next(iter(lm.stream(ids, GREEDY))).token_id
    lm.graph.config = replace(lm.graph.config, eos_ids=frozenset({first}))
    steps = list(lm.stream(ids, GREEDY))
    assert len(steps) == 1 and steps[0].finish_reason == "eos"


def test_alternatives_are_the_top5_with_probabilities(lm, tiny_llama):
    _, tokenizer = tiny_llama
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
    logits, past = lm.graph.prefill(prompt_ids(tokenizer))
    assert all(isinstance(value, ort.OrtValue) for value in past)
    assert len(past) == 2 * lm.graph.config.layers


def test_attention_rows_are_causal_probabilities(lm, tiny_llama):
    _, tokenizer = tiny_llama
    ids = prompt_ids(tokenizer)
    attn = lm.graph.attention(ids)
    assert attn.shape == (lm.graph.config.layers, lm.graph.config.heads, len(ids), len(ids))
    np.testing.assert_allclose(attn.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.triu(attn, 1) == 0)


def test_perplexity_matches_pytorch_cross_entropy(lm, tiny_llama):
    model, tokenizer = tiny_llama
    ids = prompt_ids(tokenizer, "Startups win with data, speed and focus.")
    with torch.no_grad():
        loss = model(torch.tensor([ids]), labels=torch.tensor([ids])).loss.item()
    assert lm.graph.perplexity(ids) == pytest.approx(np.exp(loss), rel=1e-4)


def test_eos_ids_come_from_config_tokenizer_and_chat_turn_ends(tiny_llama):
    _, tokenizer = tiny_llama
    ids = decoder.eos_token_ids({"eos_token_id": [1, 2]}, tokenizer)
    assert {1, 2, tokenizer.convert_tokens_to_ids("<|im_end|>")} <= ids
