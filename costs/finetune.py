"""Fine-tuning: full, LoRA and QLoRA; SFT and DPO. Memory per GPU, minimum GPUs, GPU-hours and $.

Trainable parameters (Hu et al. 2021, LoRA): a rank-r adapter on a d_in x d_out matrix adds r·(d_in + d_out).
Targets: "attention-qv" (q_proj, v_proj: PEFT's default for Llama), "attention" (q, k, v, o), "all-linear"
(attention + MLP gate/up/down). k/v projections are n_kv_heads·head_dim wide (GQA).

Memory (GB = 10^9 bytes), all shards spread over the GPUs with ZeRO-3/FSDP:
  full     weights 2Ψ + gradients 2Ψ + Adam 12Ψ (ZeRO paper's 16 bytes/param)
  LoRA     frozen bf16 base 2Ψ + adapters 16 bytes/trainable param (fp32 weights, gradients, Adam m and v)
  QLoRA    frozen 4-bit NF4 base with double quantization: 4.127 bits/param (Dettmers et al. 2023, Sec. 3)
           + bf16 adapters, gradients 2+2 bytes + Adam 8 bytes; with the paper's paged optimizer the Adam
           states may live in CPU RAM, so they are not counted on the GPU (switch `paged_optimizer`)
  DPO      + a frozen reference model: a second bf16 copy of the weights for full fine-tuning; none for
           (Q)LoRA, where the reference is the base with adapters switched off (TRL's behaviour)
  activations: gradient checkpointing (full recompute) per costs/memory.py, DPO doubles the micro-batch
           (chosen and rejected), + the fp32 logits of one micro-batch.
Compute per training token: full 6·N; (Q)LoRA 4·N (no weight gradients for the frozen base); +2·N with
gradient checkpointing (the forward is recomputed); DPO adds the reference forward 2·N. `tokens` counts every
token the policy sees (chosen + rejected for DPO) x epochs.
MFU default: the calibrated pre-training model (costs/calibration.py) for that GPU and size. There are no
published fine-tuning runs in our data, and QLoRA's dequantization overhead is not modelled: the GPU-hours
are a lower bound for QLoRA.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from costs import memory, prices
from costs.accelerators import resolve_accelerator
from costs.presets import ModelPreset, resolve_model
from costs.results import JsonResult
from costs.training import resolve_mfu
from costs.units import positive, positive_int

METHODS = ("full", "lora", "qlora")
OBJECTIVES = ("sft", "dpo")
TARGETS = ("attention-qv", "attention", "all-linear")
NF4_BYTES_PER_PARAM = (4 + 0.127) / 8  # NF4 + double-quantised constants (QLoRA paper, Section 3)
ADAPTER_BYTES = {"lora": 16.0, "qlora": 12.0}  # per trainable param: see the module docstring
PAGED_ADAM_BYTES = 8.0                           # of QLoRA's 12: the two fp32 Adam states


def lora_trainable_params(p: ModelPreset, rank: int, targets: str = "attention-qv") -> int:
    """r·(d_in + d_out) for each targeted matrix, summed over layers."""
    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {', '.join(TARGETS)}, got {targets!r}")
    r = positive_int(rank, "rank")
    d, kv = p.hidden, p.n_kv_heads * p.head_dim
    q_out = p.n_heads * p.head_dim
    per_layer = {"q": d + q_out, "v": d + kv}
    if targets in ("attention", "all-linear"):
        per_layer.update(k=d + kv, o=q_out + d)
    if targets == "all-linear":
        if not p.intermediate:
            raise ValueError(f"{p.name}: LoRA on the MLP of a MoE model is not modelled; use attention targets")
        per_layer.update(up=d + p.intermediate, down=p.intermediate + d)
        if p.gated_mlp:
            per_layer["gate"] = d + p.intermediate
    return r * sum(per_layer.values()) * p.n_layers


@dataclass(frozen=True)
class FinetuneEstimate(JsonResult):
    model: str
    method: str
    objective: str
    gpu: str
    gpus: int
    params: float
    trainable_params: float
    trainable_share: float
    per_gpu_gb: dict               # base weights, trainable states, reference model, activations
    total_per_gpu_gb: float
    usable_gb: float
    fits: bool
    min_gpus: int | None
    min_gpus_reason: str
    tokens: float
    flops_per_token: float
    flops: float
    mfu: float
    mfu_basis: str
    gpu_hours: float
    wall_hours: float
    gpu_note: str | None = None
    gpu_hours_low: float | None = None
    gpu_hours_high: float | None = None
    rank: int | None = None
    targets: str | None = None
    paged_optimizer: bool | None = None
    price_usd_per_gpu_hour: float | None = None
    price_source: str | None = None
    cost_usd: float | None = None


def _memory_parts(p: ModelPreset, method: str, objective: str, trainable: float, paged: bool, seq_len: int,
                  micro_batch: int) -> tuple[dict, float]:
    """(sharded parts in GB, replicated activations in GB) before dividing by the GPU count."""
    n = p.params
    if method == "full":
        parts = {"base weights": 2 * n, "trainable states": 14 * n}  # gradients 2Ψ + Adam 12Ψ
    elif method == "lora":
        parts = {"base weights": 2 * n, "trainable states": ADAPTER_BYTES["lora"] * trainable}
    else:
        states = ADAPTER_BYTES["qlora"] - (PAGED_ADAM_BYTES if paged else 0.0)
        parts = {"base weights": NF4_BYTES_PER_PARAM * n, "trainable states": states * trainable}
    parts["reference model"] = 2 * n if (objective == "dpo" and method == "full") else 0.0
    rows = micro_batch * (2 if objective == "dpo" else 1)
    act = p.n_layers * memory.activation_bytes_per_layer(seq_len, rows, p.hidden, p.n_heads, "full")
    act += seq_len * rows * p.vocab * 4.0  # fp32 logits of one micro-batch
    return {k: v / memory.GB for k, v in parts.items()}, act / memory.GB


def estimate_finetune(gpu, method="lora", objective="sft", model=None, params=None, rank=8,
                      targets="attention-qv", tokens=1e8, epochs=1, seq_len=2048, micro_batch=1, gpus=1,
                      mfu=None, price=None, price_kind="on-demand", paged_optimizer=True,
                      gradient_checkpointing=True) -> FinetuneEstimate:
    """Memory, minimum GPUs, GPU-hours and cost of a fine-tuning run. Raises ValueError on bad input."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    acc, note = resolve_accelerator(gpu)
    p = resolve_model(model, params)
    n_gpus = positive_int(gpus, "gpus")
    s, b = positive_int(seq_len, "seq_len"), positive_int(micro_batch, "micro_batch")
    trainable = p.params if method == "full" else lora_trainable_params(p, rank, targets)
    parts, act = _memory_parts(p, method, objective, trainable, bool(paged_optimizer), s, b)
    usable = memory.usable_gb(acc.memory_gb)
    sharded = sum(parts.values())
    per_gpu = {k: v / n_gpus for k, v in parts.items()}
    per_gpu["activations"] = act
    total = sum(per_gpu.values())
    if act >= usable:
        min_gpus, reason = None, "activations alone exceed one GPU: shorten seq_len or micro_batch"
    else:
        min_gpus = max(1, math.ceil(sharded / (usable - act) - 1e-12))
        reason = f"ZeRO-3/FSDP: {sharded:.1f} GB of model states over GPUs with {usable - act:.1f} GB free each"

    n_tokens = positive(tokens, "tokens") * positive(epochs, "epochs")
    per_token = (6.0 if method == "full" else 4.0) * p.compute_params
    if gradient_checkpointing:
        per_token += 2.0 * p.compute_params
    if objective == "dpo":
        per_token += 2.0 * p.compute_params
    mfu_value, basis, band = resolve_mfu(mfu, acc, p.compute_params, "bf16")
    if mfu in (None, ""):
        basis = "pre-training fit applied to fine-tuning (no published fine-tuning runs in our data): " + basis
    flops = per_token * n_tokens
    hours = flops / (acc.peak_flops * mfu_value) / 3600.0
    rate, source = prices.resolve_price(acc.name, price, price_kind)
    lora = method != "full"
    return FinetuneEstimate(
        model=p.name, method=method, objective=objective, gpu=acc.name, gpus=n_gpus, params=p.params,
        trainable_params=float(trainable), trainable_share=trainable / p.params, per_gpu_gb=per_gpu,
        total_per_gpu_gb=total, usable_gb=usable, fits=total <= usable, min_gpus=min_gpus, min_gpus_reason=reason,
        tokens=n_tokens, flops_per_token=per_token, flops=flops, mfu=mfu_value, mfu_basis=basis, gpu_hours=hours,
        wall_hours=hours / n_gpus, gpu_note=note, gpu_hours_low=hours * band[0] if band else None,
        gpu_hours_high=hours * band[1] if band else None, rank=int(rank) if lora else None,
        targets=targets if lora else None, paged_optimizer=bool(paged_optimizer) if method == "qlora" else None,
        price_usd_per_gpu_hour=rate, price_source=source, cost_usd=hours * rate if rate is not None else None)
