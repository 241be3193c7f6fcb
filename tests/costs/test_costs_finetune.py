import pytest

from costs import finetune
from costs.presets import get_preset


def test_lora_trainable_parameters_match_peft_for_llama2_7b():
    p = get_preset("llama2-7b")
    # PEFT print_trainable_parameters() for Llama-2-7B: r=8 on q_proj,v_proj -> 4,194,304;
    # r=16 on all linear layers -> 39,976,960
    assert finetune.lora_trainable_params(p, 8, "attention-qv") == 4_194_304 == 8 * 2 * (4096 + 4096) * 32
    assert finetune.lora_trainable_params(p, 16, "all-linear") == 39_976_960


def test_lora_on_gqa_uses_the_narrow_kv_projections():
    p = get_preset("llama3-8b")  # k/v are 8 heads x 128 = 1024 wide
    assert finetune.lora_trainable_params(p, 8, "attention") == 8 * 32 * ((4096 + 4096) * 2 + (4096 + 1024) * 2)


def test_qlora_paper_65b_fits_on_one_48gb_gpu_but_not_24gb():
    kw = dict(method="qlora", model="llama-65b", rank=64, targets="all-linear", seq_len=512)
    on_48 = finetune.estimate_finetune("L40S", **kw)
    assert on_48.fits and on_48.min_gpus == 1
    # 4.127 bits per parameter for the NF4 base with double quantization
    assert on_48.per_gpu_gb["base weights"] == pytest.approx(65.2e9 * 4.127 / 8 / 1e9)
    assert finetune.estimate_finetune("RTX-A6000", **kw).fits
    assert not finetune.estimate_finetune("L4", **kw).fits


def test_full_finetuning_65b_needs_many_gpus_and_lora_is_in_between():
    full = finetune.estimate_finetune("A100-80GB", method="full", model="llama-65b")
    assert full.total_per_gpu_gb > 780  # QLoRA paper: full 16-bit fine-tuning of 65B needs > 780 GB
    assert full.min_gpus >= 15 and not full.fits
    lora = finetune.estimate_finetune("A100-80GB", method="lora", model="llama-65b")
    assert lora.min_gpus == 2 and lora.trainable_share < 0.001


def test_dpo_adds_a_reference_model_only_for_full_finetuning_and_its_forward_flops():
    sft = finetune.estimate_finetune("H100-80GB", method="full", model="llama3-8b", gpus=8)
    dpo = finetune.estimate_finetune("H100-80GB", method="full", objective="dpo", model="llama3-8b", gpus=8)
    assert sft.per_gpu_gb["reference model"] == 0
    assert dpo.per_gpu_gb["reference model"] == pytest.approx(2 * 8.03e9 / 8 / 1e9)
    assert dpo.flops_per_token == pytest.approx(sft.flops_per_token + 2 * 8.03e9)
    lora_dpo = finetune.estimate_finetune("H100-80GB", method="lora", objective="dpo", model="llama3-8b")
    assert lora_dpo.per_gpu_gb["reference model"] == 0  # the base with adapters off is the reference


def test_compute_and_cost_by_hand():
    r = finetune.estimate_finetune("H100-80GB", method="lora", model="llama2-7b", tokens=1e8, epochs=2, mfu=0.4,
                                   price=2.0, gpus=4)
    per_token = (4 + 2) * 6.74e9  # LoRA 4N + checkpointing 2N
    hours = per_token * 2e8 / (989e12 * 0.4) / 3600
    assert r.gpu_hours == pytest.approx(hours) and r.wall_hours == pytest.approx(hours / 4)
    assert r.cost_usd == pytest.approx(hours * 2.0) and r.gpu_hours_low is None


@pytest.mark.parametrize("kwargs,needle", [
    (dict(method="prefix"), "method"), (dict(objective="ppo"), "objective"), (dict(rank=0), "rank"),
    (dict(targets="mlp"), "targets"), (dict(model="deepseek-v3-like", targets="all-linear"), "MoE"),
    (dict(model=None, params=None), "parameter count"), (dict(seq_len=1.5), "seq_len"),
])
def test_bad_finetune_input(kwargs, needle):
    base = dict(model="llama2-7b")
    base.update(kwargs)
    with pytest.raises(ValueError, match=needle):
        finetune.estimate_finetune("H100-80GB", **base)
