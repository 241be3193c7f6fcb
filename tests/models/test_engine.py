"""The continuous-batching engine on tiny decoders: batched = alone, slots reused, cancel frees work,
KV memory released, failures reported per request."""
from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pytest

from models import engine as engine_module
from models.engine import EngineError
from models.sampling import SamplingSettings

GREEDY = SamplingSettings(max_new_tokens=24, temperature=0, repetition_penalty=1.0, ignore_eos=True)
TEXTS = ["The cat sat on the mat", "Large models cost money", "大模型创业需要算力", "Hello world, hello model!",
         "Startups win with data, speed and focus.", "The cat", "Hello", "Large models cost money to train and serve"]


@pytest.fixture
def fused(tiny_fused_llama, make_engine):
    return make_engine("tiny-fused")


def prompts(tokenizer, n):
    return [tokenizer(TEXTS[i % len(TEXTS)] + " " * (i // len(TEXTS)))["input_ids"] for i in range(n)]


def run_concurrently(engine, prompt_list, settings_list):
    results = [None] * len(prompt_list)
    errors = []

    def worker(i):
        try:
            results[i] = [s.token_id for s in engine.stream(prompt_list[i], settings_list[i])]
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(prompt_list))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def wait_idle(engine, within_s=10.0):
    deadline = time.monotonic() + within_s
    while engine.active and time.monotonic() < deadline:
        time.sleep(0.01)
    return engine.active


def test_the_fused_graph_is_batched_and_the_optimum_export_is_stepped_per_sequence(fused, make_engine, tiny_llama):
    assert fused.batched and fused.graph.fused
    assert not make_engine("tiny-llama").batched


def test_sixteen_greedy_sequences_in_one_batch_give_the_tokens_each_gives_alone(fused):
    batch = prompts(fused.tokenizer, 16)
    alone = [[s.token_id for s in fused.stream(p, GREEDY)] for p in batch]
    before = dict(fused.counters)
    together = run_concurrently(fused, batch, [GREEDY] * 16)
    assert together == alone
    steps, rows = (fused.counters[k] - before[k] for k in ("steps", "rows"))
    assert rows / steps > 4  # the concurrent sequences really shared runs
    assert all(len(tokens) == GREEDY.max_new_tokens for tokens in together)


def test_batched_greedy_equals_the_graph_decoded_alone_without_the_engine(fused):
    prompt = prompts(fused.tokenizer, 1)[0]
    assert [s.token_id for s in fused.stream(prompt, GREEDY)] == fused.graph.greedy(prompt, 24, ignore_eos=True)


def test_a_seeded_sampled_sequence_gives_the_same_text_alone_or_batched(fused):
    sampled = SamplingSettings(max_new_tokens=20, temperature=1.0, top_k=20, top_p=0.9, seed=11, ignore_eos=True)
    batch = prompts(fused.tokenizer, 8)
    alone = [s.token_id for s in fused.stream(batch[3], sampled)]
    together = run_concurrently(fused, batch, [GREEDY] * 3 + [sampled] + [GREEDY] * 4)
    assert together[3] == alone


def test_more_requests_than_slots_all_finish_and_reuse_slots(tiny_fused_llama, make_engine):
    engine = make_engine("tiny-fused", slots=2)
    batch = prompts(engine.tokenizer, 6)
    alone = [[s.token_id for s in engine.stream(p, GREEDY)] for p in batch]
    peak = []
    sampler = threading.Thread(target=lambda: [peak.append(engine.stats()["running"]) or time.sleep(0.002)
                                               for _ in range(400)])
    sampler.start()
    together = run_concurrently(engine, batch, [GREEDY] * 6)
    sampler.join()
    assert together == alone
    assert max(peak) <= 2


def test_cancelling_a_request_frees_its_slot_and_the_others_continue(fused):
    long = SamplingSettings(max_new_tokens=200, temperature=0, ignore_eos=True)
    batch = prompts(fused.tokenizer, 3)
    expected = [s.token_id for s in fused.stream(batch[1], GREEDY)]
    streams = [fused.stream(p, long) for p in (batch[0], batch[2])]
    for stream in streams:
        next(stream)
    other = run_concurrently(fused, [batch[1]], [GREEDY])[0]
    for stream in streams:
        stream.close()  # what a closed browser tab or Stop does to the generator
    assert other == expected
    assert wait_idle(fused) == 0
    assert fused.stats()["cancelled"] >= 2


def test_an_abandoned_generator_is_cancelled_when_it_is_collected(fused):
    stream = fused.stream(prompts(fused.tokenizer, 1)[0], SamplingSettings(max_new_tokens=200, temperature=0,
                                                                           ignore_eos=True))
    next(stream)
    assert fused.active == 1
    del stream
    gc.collect()
    assert wait_idle(fused) == 0


def test_kv_memory_is_released_when_the_engine_is_idle(fused):
    stream = fused.stream(prompts(fused.tokenizer, 1)[0], SamplingSettings(max_new_tokens=50, temperature=0,
                                                                           ignore_eos=True))
    next(stream)
    assert fused.stats()["kv_bytes"] > 0
    stream.close()
    assert wait_idle(fused) == 0
    deadline = time.monotonic() + 5
    while fused.stats()["kv_bytes"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fused.stats()["kv_bytes"] == 0


def test_the_kv_buffer_grows_while_sequences_run_without_changing_their_tokens(tiny_fused_llama, make_engine,
                                                                               monkeypatch):
    monkeypatch.setattr(engine_module, "MIN_KV_LENGTH", 8)
    engine = make_engine("tiny-fused")
    short, long = (SamplingSettings(max_new_tokens=n, temperature=0, ignore_eos=True) for n in (4, 120))
    batch = prompts(engine.tokenizer, 2)
    alone = [[s.token_id for s in engine.stream(p, s)] for p, s in zip(batch, (short, long))]
    first = engine.stream(batch[0], short)
    next(first)  # the buffer is sized for the short request; the long one makes it grow mid-run
    together = run_concurrently(engine, [batch[1]], [long])
    assert [alone[0][0]] + [s.token_id for s in first] == alone[0]
    assert together[0] == alone[1]


def test_a_failed_model_run_ends_that_request_with_a_message_and_the_engine_goes_on(fused, monkeypatch):
    original = fused.graph.prefill_slot
    calls = []

    def failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("simulated out of memory")
        return original(*args, **kwargs)

    monkeypatch.setattr(fused.graph, "prefill_slot", failing_once)
    prompt = prompts(fused.tokenizer, 1)[0]
    with pytest.raises(EngineError, match="simulated out of memory"):
        list(fused.stream(prompt, GREEDY))
    assert len(list(fused.stream(prompt, GREEDY))) == GREEDY.max_new_tokens


def test_requests_beyond_the_kv_budget_are_refused_clearly(tiny_fused_llama, make_engine):
    engine = make_engine("tiny-fused", kv_budget=1024)
    with pytest.raises(ValueError, match="cache memory"):
        list(engine.stream([5] * 50, GREEDY))


def test_chunked_prefill_in_a_slot_gives_the_same_tokens(tiny_fused_llama, make_engine, monkeypatch):
    from models import decoder

    engine = make_engine("tiny-fused")
    prompt = engine.tokenizer("Startups win with data, speed and focus. " * 5)["input_ids"]
    whole = [s.token_id for s in engine.stream(prompt, GREEDY)]
    monkeypatch.setattr(decoder, "PREFILL_LOGITS_BUDGET", 4 * engine.graph.config.vocab_size * 16)
    assert len(prompt) > 32
    assert [s.token_id for s in engine.stream(prompt, GREEDY)] == whole


def test_eos_ends_a_sequence_unless_ignored(fused):
    prompt = prompts(fused.tokenizer, 1)[0]
    first = next(iter(fused.stream(prompt, GREEDY))).token_id
    fused.graph.config = type(fused.graph.config)(**{**fused.graph.config.__dict__, "eos_ids": frozenset({first})})
    stopping = SamplingSettings(max_new_tokens=24, temperature=0, repetition_penalty=1.0)
    steps = list(fused.stream(prompt, stopping))
    assert len(steps) == 1 and steps[0].finish_reason == "eos"
    assert len(list(fused.stream(prompt, GREEDY))) == 24


def test_engine_logits_rows_match_unbatched_logits(fused):
    """The slot path's logits for row b equal the sequence path's logits for that prompt alone."""
    graph = fused.graph
    batch = prompts(fused.tokenizer, 3)
    kv = graph.new_slots(4, 64)
    last = [graph.prefill_slot(kv, b, p) for b, p in enumerate(batch)]
    tokens = np.array([int(np.argmax(x)) for x in last] + [0])
    lengths = np.array([len(p) for p in batch] + [0])
    rows = graph.decode_slots(kv, tokens, lengths)
    for b, p in enumerate(batch):
        alone = graph.forward(p + [int(tokens[b])], logits="last", keep_cache=False).logits
        np.testing.assert_allclose(rows[b], alone, atol=1e-4)
