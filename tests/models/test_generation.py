"""Prompt building for the Generate tab: chat template, completion, trimming to the context window."""
from __future__ import annotations

import pytest

from models import generation
from models.sampling import SamplingSettings


@pytest.fixture
def lm(tiny_llama, make_engine):
    return make_engine("tiny-llama", eos=False)  # a random model may emit EOS anywhere


def test_chat_mode_uses_the_chat_template_with_system_and_history(lm):
    history = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hello world"}]
    ids, note = generation.build_prompt(lm, "chat", "The cat sat", history, system_prompt="Be brief.")
    text = lm.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert "<|im_start|>assistant\nHello world<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")
    assert note == ""


def test_completion_mode_continues_raw_text(lm):
    ids, _ = generation.build_prompt(lm, "completion", "Once upon a time")
    assert lm.tokenizer.decode(ids) == "Once upon a time"


def test_old_turns_are_trimmed_with_a_visible_note(lm):
    history = []
    for _ in range(20):
        history += [{"role": "user", "content": "Large models cost money to train and to serve. " * 3},
                    {"role": "assistant", "content": "Startups win with data, speed and focus. " * 3}]
    ids, note = generation.build_prompt(lm, "chat", "The cat sat", history, reserve=64)
    assert len(ids) <= lm.max_context - 64
    assert "trimmed" in note and "oldest" in note
    assert lm.tokenizer.decode(ids).endswith("The cat sat<|im_end|>\n<|im_start|>assistant\n")


def test_a_single_message_longer_than_the_window_keeps_its_end(lm):
    ids, note = generation.build_prompt(lm, "completion", "hello world " * 400, reserve=16)
    assert len(ids) == lm.max_context - 16
    assert "kept the last" in note


@pytest.mark.parametrize("prompt,message", [("", "empty"), ("   \n\t", "empty"), ("x" * 20_001, "limit"),
                                            (None, "text")])
def test_unusable_prompts_are_clear_errors(prompt, message):
    with pytest.raises(ValueError, match=message):
        generation.validate_prompt(prompt)


def test_nul_characters_are_dropped_not_fatal():
    assert generation.validate_prompt("a\x00b") == "ab"


def test_generate_streams_growing_text_with_stats(lm, monkeypatch):
    monkeypatch.setattr(generation, "get_generator", lambda model_id=None: lm)
    stream = generation.generate("The cat", SamplingSettings(max_new_tokens=6, temperature=0), mode="completion")
    first = next(stream)
    # the first token is out while the model is still decoding: that is streaming, not a final answer
    assert first.n_tokens == 1 and first.finish_reason is None and lm.active == 1
    assert first.ttft_ms is not None and first.ttft_ms > 0
    seen = [(first.n_tokens, first.text)]
    for update in stream:
        seen.append((update.n_tokens, update.text))
    assert [n for n, _ in seen] == [1, 2, 3, 4, 5, 6]  # one update per token
    texts = [t for _, t in seen]
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:])) and len(texts[-1]) > len(texts[0])
    assert update.finish_reason == "length" and update.tokens_per_s > 0 and len(update.tokens) == 6
    assert lm.active == 0


def test_same_seed_reproduces_text_and_other_seeds_differ(lm, monkeypatch):
    monkeypatch.setattr(generation, "get_generator", lambda model_id=None: lm)

    def sample(seed):
        settings = SamplingSettings(max_new_tokens=24, temperature=1.0, top_k=0, top_p=1.0, seed=seed)
        return list(generation.generate("The cat", settings, mode="completion"))[-1].text

    first = sample(7)
    assert sample(7) == first
    texts = [first] + [sample(seed) for seed in (1, 2, 3)]
    assert len(set(texts)) == 4, texts  # each seed draws its own text


def test_stop_strings_cut_the_text_before_the_stop(lm, monkeypatch):
    monkeypatch.setattr(generation, "get_generator", lambda model_id=None: lm)
    full = list(generation.generate("The cat", SamplingSettings(max_new_tokens=20, temperature=0), mode="completion"))[-1].text
    stop = full.strip()[3:6]
    assert stop and stop in full
    last = list(generation.generate("The cat", SamplingSettings(max_new_tokens=20, temperature=0, stop_strings=(stop,)),
                                    mode="completion"))[-1]
    assert last.finish_reason == "stop_string"
    assert stop not in last.text and full.startswith(last.text)

