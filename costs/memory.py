"""Memory planner: what one GPU holds during training, and how many GPUs you need at least.

Model states (Rajbhandari et al. 2019, "ZeRO", arXiv 1910.02054, Section 3.1): with Ψ parameters,
16-bit weights (2Ψ) and gradients (2Ψ) plus optimizer states KΨ:
    Adam, mixed precision   K = 12  (fp32 master weights, momentum, variance)  -> 16 bytes/param in total
    8-bit Adam              K = 6   (fp32 master weights + two 1-byte states; Dettmers et al. 2021)
    SGD with momentum       K = 8   (fp32 master weights + fp32 momentum)
ZeRO stages over Nd data-parallel ranks: 1 shards optimizer states, 2 also gradients, 3 also weights.
Tensor parallelism of degree t divides all model states by t.

Activations per layer (Korthikanti et al. 2022, arXiv 2205.05198, Section 4), 16-bit, s = sequence length,
b = micro-batch, h = hidden size, a = attention heads, t = tensor-parallel degree. Two switches, both labelled
in the UI and CLI:
  sequence parallelism (SP) on:  s·b·h·(34 + 5·a·s/h) / t          (Eq. 2: everything sharded by t)
  sequence parallelism off:      s·b·h·(10 + 24/t + 5·a·s/(h·t))   (Eq. 1: LayerNorm/dropout not sharded)
  FlashAttention (or selective recompute): the 5·a·s/h term (scores, softmax, dropout mask) is not stored
  full recompute: only each layer's input, 2·s·b·h (/ t with SP)
Not counted: embedding/logit buffers, framework workspace, fragmentation (hence USABLE_FRACTION).
Tensor parallelism splits attention heads, so t must divide the head count.

Sizes are GB = 10^9 bytes (see costs/accelerators.py for how vendor capacities are read).

KV cache for inference: 2 · L · n_kv_heads · head_dim · bytes · sequence length · batch (GQA-aware).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from costs.accelerators import get_accelerator
from costs.results import JsonResult
from costs.units import positive, positive_int

OPTIMIZER_BYTES_PER_PARAM = {"adam_mixed": 12.0, "adam_8bit": 6.0, "sgd": 8.0}
OPTIMIZER_LABELS = {"adam_mixed": "Adam, mixed precision (K=12)", "adam_8bit": "8-bit Adam (K=6)",
                    "sgd": "SGD with momentum (K=8)"}
RECOMPUTE_MODES = ("none", "selective", "full")
GB = 1e9
# One usable share of GPU memory for training and serving: ~10 % goes to the CUDA context, framework workspace,
# NCCL buffers and fragmentation (PyTorch/vLLM practice: vLLM's default gpu_memory_utilization is 0.9).
USABLE_FRACTION = 0.9
USABLE_SOURCE = ("vLLM default gpu_memory_utilization=0.9 (https://docs.vllm.ai/en/latest/serving/engine_args.html,"
                 " 2025)")


def usable_gb(memory_gb: float, gpus: int = 1) -> float:
    return memory_gb * gpus * USABLE_FRACTION


def check_tp_divides_heads(tp: int, n_heads: int) -> None:
    if n_heads % tp:
        divisors = ", ".join(str(d) for d in range(1, min(n_heads, 64) + 1) if n_heads % d == 0)
        raise ValueError(f"tensor-parallel degree (tp) {tp} must divide the {n_heads} attention heads "
                         f"(e.g. one of {divisors})")


def model_state_bytes(params: float, optimizer: str = "adam_mixed") -> dict:
    if optimizer not in OPTIMIZER_BYTES_PER_PARAM:
        raise ValueError(f"Unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZER_BYTES_PER_PARAM)}")
    psi = positive(params, "params")
    return {"weights": 2.0 * psi, "gradients": 2.0 * psi, "optimizer": OPTIMIZER_BYTES_PER_PARAM[optimizer] * psi}


def shard_model_states(states: dict, zero_stage: int, dp: int, tp: int = 1) -> dict:
    """Per-GPU model-state bytes under tensor parallel degree tp and ZeRO stage over dp ranks."""
    if zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"ZeRO stage must be 0, 1, 2 or 3, got {zero_stage!r}")
    dp = positive_int(dp, "data-parallel degree")
    tp = positive_int(tp, "tensor-parallel degree")
    w, g, o = (states[k] / tp for k in ("weights", "gradients", "optimizer"))
    if zero_stage >= 1:
        o /= dp
    if zero_stage >= 2:
        g /= dp
    if zero_stage >= 3:
        w /= dp
    return {"weights": w, "gradients": g, "optimizer": o}


def activation_bytes_per_layer(seq_len: int, micro_batch: int, hidden: int, n_heads: int,
                               recompute: str = "none", tp: int = 1, sequence_parallel: bool = True,
                               flash_attention: bool = False) -> float:
    if recompute not in RECOMPUTE_MODES:
        raise ValueError(f"recompute must be one of {', '.join(RECOMPUTE_MODES)}, got {recompute!r}")
    s, b = positive_int(seq_len, "sequence length"), positive_int(micro_batch, "micro-batch")
    h, a = positive_int(hidden, "hidden size"), positive_int(n_heads, "attention heads")
    t = positive_int(tp, "tensor-parallel degree")
    check_tp_divides_heads(t, a)
    if recompute == "full":
        return 2.0 * s * b * h / (t if sequence_parallel else 1)
    linear = 34.0 / t if sequence_parallel else 10.0 + 24.0 / t
    scores = 0.0 if (recompute == "selective" or flash_attention) else 5.0 * a * s / (h * t)
    return s * b * h * (linear + scores)


def kv_cache_bytes(n_layers: int, n_kv_heads: int, head_dim: int, seq_len: int, batch: int = 1,
                   bytes_per_elem: float = 2.0, kv_elems_per_token_per_layer: int | None = None) -> float:
    per_layer = kv_elems_per_token_per_layer or (
        2 * positive_int(n_kv_heads, "KV heads") * positive_int(head_dim, "head dim"))
    return (positive_int(n_layers, "layers") * per_layer * positive(bytes_per_elem, "bytes per element")
            * positive_int(seq_len, "sequence length") * positive_int(batch, "batch"))


@dataclass(frozen=True)
class MemoryPlan(JsonResult):
    per_gpu_gb: dict                 # weights, gradients, optimizer, activations
    total_per_gpu_gb: float
    model_states_unsharded_gb: float
    bytes_per_param_unsharded: float
    optimizer: str
    zero_stage: int
    dp: int
    tp: int
    recompute: str
    sequence_parallel: bool
    flash_attention: bool
    gpu: str | None = None           # the GPU fields are None when no GPU was given
    gpu_memory_gb: float | None = None
    usable_gb: float | None = None
    fits: bool | None = None
    min_gpus: int | None = None
    min_dp: int | None = None
    min_gpus_reason: str | None = None


def plan_training_memory(params, n_layers, hidden, n_heads, seq_len, micro_batch=1, optimizer="adam_mixed",
                         zero_stage=0, dp=1, tp=1, recompute="none", gpu=None, sequence_parallel=True,
                         flash_attention=False) -> MemoryPlan:
    """Per-GPU memory breakdown (GB) and, when a GPU is given, whether it fits and the minimum GPU count."""
    states = model_state_bytes(params, optimizer)
    sharded = shard_model_states(states, zero_stage, dp, tp)
    layers = positive_int(n_layers, "layers")
    act = layers * activation_bytes_per_layer(seq_len, micro_batch, hidden, n_heads, recompute, tp,
                                              sequence_parallel, flash_attention)
    per_gpu = {k: v / GB for k, v in sharded.items()}
    per_gpu["activations"] = act / GB
    total = sum(per_gpu.values())
    fields = dict(per_gpu_gb=per_gpu, total_per_gpu_gb=total, model_states_unsharded_gb=sum(states.values()) / GB,
                  bytes_per_param_unsharded=sum(states.values()) / positive(params, "params"), optimizer=optimizer,
                  zero_stage=zero_stage, dp=int(dp), tp=int(tp), recompute=recompute,
                  sequence_parallel=bool(sequence_parallel), flash_attention=bool(flash_attention))
    if gpu:
        acc = get_accelerator(gpu)
        capacity = usable_gb(acc.memory_gb)
        fields.update(gpu=acc.name, gpu_memory_gb=acc.memory_gb, usable_gb=capacity, fits=total <= capacity,
                      **min_gpus(states, act / GB, capacity, zero_stage, tp))
    return MemoryPlan(**fields)


def min_gpus(states: dict, activation_gb: float, capacity_gb: float, zero_stage: int, tp: int) -> dict:
    """Smallest data-parallel degree (and GPU count = tp·dp) for which model states + activations fit."""
    w, g, o = (states[k] / tp / GB for k in ("weights", "gradients", "optimizer"))
    fixed = {0: w + g + o, 1: w + g, 2: w, 3: 0.0}[zero_stage] + activation_gb
    sharded = {0: 0.0, 1: o, 2: g + o, 3: w + g + o}[zero_stage]
    room = capacity_gb - fixed
    if room <= 0 or (sharded == 0.0 and fixed > capacity_gb):
        reason = ("the unsharded part (weights/gradients/activations) alone exceeds one GPU: raise the ZeRO "
                  "stage, the tensor-parallel degree, or use activation recomputation")
        return {"min_gpus": None, "min_dp": None, "min_gpus_reason": reason}
    dp = 1 if sharded == 0.0 else max(1, math.ceil(sharded / room - 1e-12))
    return {"min_gpus": tp * dp, "min_dp": dp,
            "min_gpus_reason": f"tensor parallel {tp} x data parallel {dp} (ZeRO-{zero_stage})"}
