import pytest

from costs import memory
from costs.presets import get_preset

GB = 1e9


def test_mixed_precision_adam_is_16_bytes_per_param_as_in_the_zero_paper():
    states = memory.model_state_bytes(1e9, "adam_mixed")
    assert sum(states.values()) / 1e9 == 16.0
    assert states == {"weights": 2e9, "gradients": 2e9, "optimizer": 12e9}


@pytest.mark.parametrize("stage,expected_gb", [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_paper_figure1_example_7_5b_params_64_gpus(stage, expected_gb):
    # Rajbhandari et al. 2019, Figure 1: Psi = 7.5B, Nd = 64, K = 12
    sharded = memory.shard_model_states(memory.model_state_bytes(7.5e9), stage, dp=64)
    assert sum(sharded.values()) / GB == pytest.approx(expected_gb, abs=0.05)


def test_8bit_adam_and_sgd_bytes_per_param():
    assert sum(memory.model_state_bytes(1, "adam_8bit").values()) == 10.0
    assert sum(memory.model_state_bytes(1, "sgd").values()) == 12.0
    with pytest.raises(ValueError):
        memory.model_state_bytes(1e9, "lion")


def test_tensor_parallel_divides_model_states():
    full = memory.shard_model_states(memory.model_state_bytes(8e9), 0, dp=1, tp=1)
    tp8 = memory.shard_model_states(memory.model_state_bytes(8e9), 0, dp=1, tp=8)
    assert sum(tp8.values()) == pytest.approx(sum(full.values()) / 8)


def test_korthikanti_activation_formula_by_hand_gpt3_layer():
    s, b, h, a, t = 2048, 1, 12288, 96, 8
    none = memory.activation_bytes_per_layer(s, b, h, a, "none", t)
    assert none == pytest.approx(s * b * h * (34 + 5 * a * s / h) / t) == pytest.approx(358612992)
    assert memory.activation_bytes_per_layer(s, b, h, a, "selective", t) == pytest.approx(34 * s * b * h / t)
    assert memory.activation_bytes_per_layer(s, b, h, a, "full", t) == pytest.approx(2 * s * b * h / t)
    with pytest.raises(ValueError):
        memory.activation_bytes_per_layer(s, b, h, a, "sometimes", t)


def test_kv_cache_is_gqa_aware():
    llama2_70b, llama2_7b = get_preset("llama2-70b"), get_preset("llama2-7b")
    per_token_70b = memory.kv_cache_bytes(80, 8, 128, 1)
    assert per_token_70b == 2 * 80 * 8 * 128 * 2 == 327680
    assert memory.kv_cache_bytes(32, 32, 128, 1) == 524288  # MHA 7B: 0.5 MiB per token
    assert llama2_70b.kv_elems_per_token * 2 == per_token_70b
    assert llama2_7b.kv_elems_per_token * 2 == 524288
    assert memory.kv_cache_bytes(80, 8, 128, 4096, batch=4) == 327680 * 4096 * 4


def test_minimum_gpus_by_hand_for_zero3():
    # 7.5B with Adam: 120 GB of states, full recompute on a short sequence (activations tiny), 80 GB x 0.9 usable
    r = memory.plan_training_memory(7.5e9, 32, 4096, 32, 128, 1, "adam_mixed", zero_stage=3, dp=1,
                                    recompute="full", gpu="A100-80GB")
    act_gb = 32 * 2 * 128 * 4096 / GB
    assert r.per_gpu_gb["activations"] == pytest.approx(act_gb)
    assert r.min_gpus == 2  # ceil(120 / (72 - 0.03))
    assert r.fits is False   # dp = 1 holds all 120 GB


def test_zero0_cannot_be_rescued_by_more_data_parallel_gpus():
    r = memory.plan_training_memory(7.5e9, 32, 4096, 32, 128, 1, "adam_mixed", zero_stage=0,
                                    recompute="full", gpu="A100-80GB")
    assert r.min_gpus is None and "exceeds" in r.min_gpus_reason
    r_tp = memory.plan_training_memory(7.5e9, 32, 4096, 32, 128, 1, "adam_mixed", zero_stage=0, tp=2,
                                       recompute="full", gpu="A100-80GB")
    assert r_tp.min_gpus == 2 and r_tp.fits


def test_activation_switches_sequence_parallel_and_flash_attention():
    s, b, h, a, t = 2048, 1, 12288, 96, 8
    no_sp = memory.activation_bytes_per_layer(s, b, h, a, "none", t, sequence_parallel=False)
    assert no_sp == pytest.approx(s * b * h * (10 + 24 / t + 5 * a * s / (h * t)))  # Korthikanti Eq. 1 with TP
    flash = memory.activation_bytes_per_layer(s, b, h, a, "none", t, flash_attention=True)
    assert flash == pytest.approx(34 * s * b * h / t)  # the 5as/h score term is not stored
    assert memory.activation_bytes_per_layer(s, b, h, a, "full", t, sequence_parallel=False) == 2 * s * b * h


def test_tensor_parallel_must_divide_the_heads():
    with pytest.raises(ValueError, match="must divide the 32 attention heads"):
        memory.plan_training_memory(7e9, 32, 4096, 32, 2048, tp=3)


def test_one_usable_fraction_and_the_plan_is_a_dataclass():
    r = memory.plan_training_memory(7e9, 32, 4096, 32, 2048, gpu="H100-80GB", zero_stage=3, dp=8)
    assert r.usable_gb == pytest.approx(80 * memory.USABLE_FRACTION)
    assert memory.plan_training_memory(7e9, 32, 4096, 32, 2048).fits is None
    assert "fits" not in memory.plan_training_memory(7e9, 32, 4096, 32, 2048).to_dict()
