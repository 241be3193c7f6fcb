import math

import pytest

from costs import scaling


def test_loss_formula_by_hand_for_chinchilla_70b_1_4t():
    expected = 1.69 + 406.4 / 70e9 ** 0.34 + 410.7 / 1.4e12 ** 0.28
    assert scaling.loss(70e9, 1.4e12) == pytest.approx(expected)
    assert 1.9 < expected < 2.0


def test_20_tokens_per_param_rule_recovers_chinchilla_size():
    c = 6 * 70e9 * 1.4e12  # Chinchilla's budget
    rule = scaling.chinchilla_rule(c)
    assert rule["params"] == pytest.approx(math.sqrt(c / 120))
    assert rule["params"] == pytest.approx(70e9, rel=0.01)
    assert rule["tokens"] == pytest.approx(20 * rule["params"])


def test_loss_fit_optimum_spends_the_budget_and_is_a_minimum():
    c = 1e24
    opt = scaling.chinchilla_fit_optimum(c)
    assert 6 * opt["params"] * opt["tokens"] == pytest.approx(c)
    for factor in (0.8, 1.25):
        n = opt["params"] * factor
        assert scaling.loss(n, c / (6 * n)) > opt["loss"]


def test_overtraining_keeps_the_loss_costs_more_training_and_less_inference():
    rows = scaling.overtraining_tradeoff(1e24, shrink_factors=(1.0, 0.5))
    base, small = rows
    assert base["train_compute_ratio"] == pytest.approx(1.0)
    assert scaling.loss(small["params"], small["tokens"]) == pytest.approx(
        scaling.loss(base["params"], base["tokens"]))
    assert small["train_compute_ratio"] > 1.0 and small["inference_cost_ratio"] == pytest.approx(0.5)
    extra = small["train_compute"] - base["train_compute"]
    assert small["break_even_inference_tokens"] == pytest.approx(extra / (2 * (base["params"] - small["params"])))


def test_unreachable_loss_is_reported_not_crashed():
    assert scaling.tokens_for_loss(1e6, 1.7) is None
    with pytest.raises(ValueError):
        scaling.chinchilla_rule(0)
