import math

import pytest

from costs import fleet, memory, sources


def test_kv_budget_and_batch_by_hand_llama3_70b_h100():
    r = fleet.estimate_fleet("H100-80GB", 10, 1020, 129, model="llama3-70b", tp=4, tpot_s=None)
    kv_seq = 2 * 80 * 8 * 128 * 2 * (1020 + 129) / 1e9
    assert r.kv_per_sequence_gb == pytest.approx(kv_seq)
    assert r.max_batch_kv == math.floor((4 * 80 * memory.USABLE_FRACTION - 70.6 * 2) / kv_seq)
    assert r.batch == r.max_batch_kv  # no TPOT target: the KV cache is the limit


def test_tpot_target_limits_the_batch_and_fleet_covers_the_qps():
    r = fleet.estimate_fleet("H100-80GB", 10, 1020, 129, model="llama3-70b", tp=4, tpot_s=0.04)
    assert r.tpot_met and r.tpot_s <= 0.04 and r.batch < r.max_batch_kv
    assert r.replicas * r.requests_per_s_per_replica >= 10 > (r.replicas - 1) * r.requests_per_s_per_replica
    assert r.gpus == r.replicas * 4
    assert r.output_tokens_per_s_per_gpu == pytest.approx(r.roofline_output_tokens_per_s_per_gpu * r.efficiency)


def test_costs_split_between_input_and_output_add_up_to_the_bill():
    r = fleet.estimate_fleet("H100-80GB", 5, 1000, 200, model="llama3-8b", price=2.0)
    hourly = (r.usd_per_million_input_tokens * 5 * 1000 * 3600 / 1e6
              + r.usd_per_million_output_tokens * 5 * 200 * 3600 / 1e6)
    assert hourly == pytest.approx(r.usd_per_hour) and r.usd_per_hour == pytest.approx(2.0 * r.gpus)


def test_lower_precision_means_fewer_gpus():
    fp16 = fleet.estimate_fleet("H100-80GB", 20, 1020, 129, model="llama3-70b")
    int4 = fleet.estimate_fleet("H100-80GB", 20, 1020, 129, model="llama3-70b", weights="int4", kv="fp8")
    assert int4.gpus < fp16.gpus and int4.weights_gb == pytest.approx(fp16.weights_gb / 4)


def test_a_model_that_does_not_fit_gets_no_price():
    r = fleet.estimate_fleet("T4", 1, 1020, 129, model="deepseek-v3-like")
    assert not r.fits and r.usd_per_million_output_tokens is None and "does not fit" in r.message


def test_unreachable_tpot_is_reported_not_hidden():
    r = fleet.estimate_fleet("L4", 1, 1020, 129, model="llama3-8b", tp=1, tpot_s=0.001)
    assert r.fits and r.tpot_met is False and "out of reach" in r.message


def test_defaults_carry_a_source_and_a_date():
    for default in (sources.DECODE_EFFICIENCY, sources.TTFT_TARGET_S, sources.TPOT_TARGET_S,
                    sources.PROMPT_TOKENS, sources.OUTPUT_TOKENS):
        assert default.url.startswith("https://") and default.as_of[:4].isdigit()
    assert sources.QPS.as_of == "example" and "not a measurement" in sources.QPS.source


@pytest.mark.parametrize("kwargs,needle", [(dict(qps=0), "qps"), (dict(weights="fp4"), "weight precision"),
                                           (dict(kv="int4"), "KV cache precision"), (dict(tp=3), "must divide"),
                                           (dict(efficiency=1.5), "efficiency")])
def test_bad_fleet_input(kwargs, needle):
    base = dict(gpu="H100-80GB", qps=1, prompt_tokens=100, output_tokens=100, model="llama3-8b")
    base.update(kwargs)
    with pytest.raises(ValueError, match=needle):
        fleet.estimate_fleet(**base)
