import math

import numpy as np
import pytest

from models.sampling import (
    SamplingSettings,
    apply_repetition_penalty,
    choose_token,
    sampling_distribution,
    top_alternatives,
)


def test_temperature_zero_is_greedy():
    logits = np.array([0.1, 3.0, 2.9, -1.0])
    rng = np.random.default_rng(0)
    assert all(choose_token(logits, np.array([], dtype=np.int64), SamplingSettings(temperature=0,
               repetition_penalty=1.0), rng) == 1 for _ in range(10))


def test_top_k_keeps_only_k_tokens():
    probs = sampling_distribution(np.arange(10, dtype=np.float32), SamplingSettings(temperature=1, top_k=3, top_p=1))
    assert np.count_nonzero(probs) == 3
    assert set(np.flatnonzero(probs)) == {7, 8, 9}


def test_top_p_keeps_the_smallest_prefix_reaching_p():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    probs = sampling_distribution(logits, SamplingSettings(temperature=1, top_k=0, top_p=0.75))
    assert set(np.flatnonzero(probs)) == {0, 1}
    assert math.isclose(probs.sum(), 1.0)


def test_repetition_penalty_lowers_seen_tokens_like_transformers():
    logits = np.array([2.0, -2.0, 1.0])
    out = apply_repetition_penalty(logits, np.array([0, 1]), 2.0)
    assert out.tolist() == [1.0, -4.0, 1.0]


def test_alternatives_sorted_and_normalised():
    alts = top_alternatives(np.array([1.0, 5.0, 3.0, 2.0, 4.0, 0.0]), 5)
    assert [i for i, _ in alts] == [1, 4, 2, 3, 0]


@pytest.mark.parametrize("field,value,message", [
    ("temperature", -0.1, "temperature"), ("temperature", float("nan"), "temperature"),
    ("top_p", 0.0, "top_p"), ("top_p", 1.5, "top_p"), ("top_k", -1, "top_k"),
    ("max_new_tokens", 0, "max_new_tokens"), ("max_new_tokens", 10_000, "max_new_tokens"),
    ("max_new_tokens", 2.5, "whole number"), ("repetition_penalty", 0.5, "repetition_penalty"),
    ("seed", -3, "seed"), ("seed", float("inf"), "seed"), ("stop_strings", ("",), "stop strings"),
])
def test_invalid_settings_are_clear_errors(field, value, message):
    with pytest.raises(ValueError, match=message):
        SamplingSettings(**{field: value}).validate()
