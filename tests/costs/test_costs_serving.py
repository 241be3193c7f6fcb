import pytest

from costs import serving


def test_decode_bandwidth_bound_by_hand_llama2_7b_batch1_h100():
    r = serving.estimate_serving(6.74e9, "H100-80GB", 32, 4096, 32, 128, context=2048, batch=1, price=2.0)
    kv = 2 * 32 * 32 * 128 * 2 * 2048
    bytes_per_step = 6.74e9 * 2 + kv
    assert r.bytes_per_step == pytest.approx(bytes_per_step)
    assert r.bandwidth_bound_tokens_per_s == pytest.approx(3.35e12 / bytes_per_step)
    assert r.bound == "memory bandwidth"
    assert r.usd_per_million_output_tokens == pytest.approx(2.0 / 3600 / r.tokens_per_s * 1e6)


def test_large_batches_become_compute_bound():
    r = serving.estimate_serving(6.74e9, "H100-80GB", 32, 4096, 32, 128, context=128, batch=4096)
    flops_per_token = 2 * 6.74e9 + 4 * 32 * 128 * 4096
    assert r.compute_bound_tokens_per_s == pytest.approx(989e12 * serving.DEFAULT_SERVING_MFU / flops_per_token)
    assert r.bound == "compute"


def test_prefill_flops_by_hand():
    assert serving.prefill_flops(7e9, 1000, 32, 4096) == pytest.approx(2 * 7e9 * 1000 + 2 * 32 * 1000 ** 2 * 4096)


def test_moe_batch1_reads_only_active_weights_and_memory_check():
    r = serving.estimate_serving(671e9, "H200", 61, 7168, 128, 128, context=1024, batch=1, gpus=8,
                                 active_params=37e9, kv_elems_per_token_per_layer=576)
    assert r.weights_read_bytes == pytest.approx(37e9 * 2)
    assert r.fits_in_memory is False  # 1.34 TB of bf16 weights > 8 x 141 GB
    assert r.usd_per_million_output_tokens is None  # no price for a setup that cannot run
    assert r.memory_available_gb == pytest.approx(8 * 141 * 0.9)


def test_bad_serving_input():
    with pytest.raises(ValueError):
        serving.estimate_serving(7e9, "H100", 32, 4096, 32, 128, batch=0)
