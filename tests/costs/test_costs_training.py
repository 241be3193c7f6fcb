import math

import pytest

from costs import training
from costs.accelerators import get_accelerator
from costs.units import human, parse_quantity


def test_6nd_for_llama2_70b_on_2t_tokens_is_8_4e23():
    assert training.flops_6nd(70e9, 2e12) == pytest.approx(8.4e23)


def test_attention_term_matches_hand_computation_for_gpt3():
    # 12·L·H·Q·T = 12 · 96 · 96 · 128 · 2048 per token
    per_token = training.attention_flops_per_token(96, 96, 128, 2048)
    assert per_token == 12 * 96 * 96 * 128 * 2048 == 28991029248
    total = training.flops_with_attention(175e9, 300e9, 96, 96, 128, 2048)
    assert total == pytest.approx((6 * 175e9 + 28991029248) * 300e9)


def test_gpu_hours_wall_days_and_cost_by_hand():
    r = training.estimate_training(70e9, 2e12, "A100-80GB", gpus=2048, mfu=0.5, price=2.0)
    hours = 8.4e23 / (312e12 * 0.5) / 3600
    assert r.gpu_hours == pytest.approx(hours)
    assert r.wall_days == pytest.approx(hours / 2048 / 24)
    assert r.cost_usd == pytest.approx(hours * 2.0)
    assert r.gpu == "A100-80GB" and r.mfu == 0.5 and r.price_source == "user"


def test_moe_uses_active_parameters_for_flops():
    r = training.estimate_training(671e9, 14.8e12, "H800", active_params=37e9, mfu=0.4)
    assert r.flops == pytest.approx(6 * 37e9 * 14.8e12)


def test_wall_days_only_with_a_gpu_count_and_default_price_is_labelled():
    r = training.estimate_training(7e9, 1e12, "H100")
    assert r.wall_days is None and "wall_days" not in r.to_dict()
    assert r.price_source != "user" and r.cost_usd > 0
    assert "published runs" in r.mfu_basis
    assert r.gpu_hours_low < r.gpu_hours < r.gpu_hours_high  # the calibrated default carries its error band


def test_no_price_preset_means_no_cost_but_a_user_price_works():
    assert training.estimate_training(7e9, 1e12, "MI300X").cost_usd is None
    assert training.estimate_training(7e9, 1e12, "MI300X", price=3).cost_usd > 0


def test_energy_matches_llama2_model_card_method():
    # Llama 2 7B card: 184,320 GPU-hours at 400 W -> 31.22 tCO2eq (PUE folded into their power figure)
    kwh = training.energy_kwh(184320, 400, pue=1.0)
    assert kwh == pytest.approx(73728)
    assert kwh * 0.4235 / 1000 == pytest.approx(31.22, rel=1e-3)


def test_broader_costs_storage_and_egress_by_hand():
    r = training.estimate_training(1e9, 1e11, "H100-80GB", gpus=8, mfu=0.5, price=2.0,
                                   storage_usd_per_gb_month=0.02, dataset_gb=100, checkpoint_gb=10,
                                   checkpoints_kept=2, egress_gb=50, egress_usd_per_gb=0.1)
    months = max(r.wall_days / 30.4, 1.0)
    assert r.storage.storage_cost_usd == pytest.approx((100 + 10 * 2) * 0.02 * months)
    assert r.storage.egress_cost_usd == pytest.approx(5.0)
    assert r.total_cost_usd == pytest.approx(r.compute_cost_usd + r.storage.storage_cost_usd + 5.0)
    flat = r.to_dict()  # the CLI/API JSON stays flat, with the same keys as before
    assert flat["storage_cost_usd"] == r.storage.storage_cost_usd and flat["co2_tonnes"] == r.energy.co2_tonnes


@pytest.mark.parametrize("kwargs", [
    dict(params=0, tokens=1e12, gpu="H100"), dict(params=-7e9, tokens=1e12, gpu="H100"),
    dict(params=float("nan"), tokens=1e12, gpu="H100"), dict(params=7e9, tokens=float("inf"), gpu="H100"),
    dict(params=7e9, tokens=1e12, gpu="H900"), dict(params=7e9, tokens=1e12, gpu="H100", mfu=1.5),
    dict(params=7e9, tokens=1e12, gpu="H100", gpus=2.5), dict(params=7e9, tokens=1e12, gpu="H100", price=-1),
    dict(params=7e9, tokens=1e12, gpu="H100", active_params=8e9),
])
def test_bad_input_is_a_value_error(kwargs):
    with pytest.raises(ValueError):
        training.estimate_training(**kwargs)


@pytest.mark.parametrize("text,value", [("7e9", 7e9), ("7B", 7e9), ("2T", 2e12), ("124m", 124e6),
                                        ("1,000", 1000.0), (" 1.5k ", 1500.0), (3, 3.0)])
def test_quantities_people_type_are_parsed(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "seven", "7X", "", None, True, "1,5B", "1,5", "12,34"])
def test_unreadable_quantities_are_rejected(text):
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_cost_vs_size_series_grows_with_size_and_is_cheaper_on_newer_gpus_per_flop():
    series = training.cost_vs_size(["A100-80GB", "H100-80GB"], [1e9, 1e10])
    a100, h100 = series["A100-80GB"], series["H100-80GB"]
    assert a100[1]["cost_usd"] > a100[0]["cost_usd"] * 50  # cost ~ N^2 when D = 20N
    assert h100[0]["gpu_hours"] < a100[0]["gpu_hours"]
    assert human(7e9) == "7B" and math.isclose(training.log_space(1, 100, 3)[1], 10)


def test_peak_used_is_the_accelerator_table_entry():
    r = training.estimate_training(1e9, 1e9, "TPUv4", mfu=1.0)
    assert r.gpu_hours == pytest.approx(6e18 / get_accelerator("TPUv4").peak_flops / 3600)


def test_user_mfu_has_no_error_band_and_fp8_uses_the_fp8_peak():
    user = training.estimate_training(7e9, 1e12, "H100-80GB", mfu=0.4)
    assert user.gpu_hours_low is None and user.mfu_basis == "user"
    fp8 = training.estimate_training(7e9, 1e12, "H100-80GB", mfu=0.4, precision="fp8")
    assert fp8.gpu_hours == pytest.approx(user.gpu_hours * 989 / 1979) and fp8.peak_tflops == 1979.0
    with pytest.raises(ValueError, match="FP8"):
        training.estimate_training(7e9, 1e12, "A100-80GB", precision="fp8")


def test_attention_convention_does_not_scale_the_calibrated_hours():
    arch = {"n_layers": 32, "n_heads": 32, "head_dim": 128, "seq_len": 4096}
    with_arch = training.estimate_training(6.74e9, 2e12, "A100-80GB", arch=arch)
    without = training.estimate_training(6.74e9, 2e12, "A100-80GB")
    assert with_arch.flops_with_attention > with_arch.flops
    assert with_arch.gpu_hours == without.gpu_hours  # the MFU fit already absorbs attention FLOPs


def test_spot_without_a_spot_preset_says_so():
    with pytest.raises(ValueError, match="no spot price preset for V100"):
        training.estimate_training(7e9, 1e12, "V100", price_kind="spot")
    assert training.estimate_training(7e9, 1e12, "V100", price_kind="spot", price=1.0).cost_usd > 0


def test_vague_gpu_name_is_said():
    assert "A100-40GB" in training.estimate_training(7e9, 1e12, "A100").gpu_note
    assert training.estimate_training(7e9, 1e12, "A100-80GB").gpu_note is None
