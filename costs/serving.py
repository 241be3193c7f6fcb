"""Serving: prefill FLOPs, decode throughput bounds and $ per million output tokens.

Prefill (one prompt of T tokens):  2·N·T  +  2·L·T²·d   (matmuls + causal attention scores/values, forward only)
Decode, one step for a batch of B sequences at context c:
    bytes read  = weights touched + B · KV cache of one sequence
                  (weights touched = min(total, B · active) params for MoE: a lower bound for routing)
    bandwidth-bound tokens/s = B · bandwidth / bytes read
    compute-bound  tokens/s = peak · MFU / (2·N_active + 4·L·c·d)
    tokens/s = min of the two (a roofline: real servers land below it, see sources.DECODE_EFFICIENCY)
$ per 1M output tokens = (price per GPU-hour · GPUs / 3600) / tokens/s · 1e6, only for setups that fit in
memory (usable = memory.USABLE_FRACTION of the GPUs' memory).
"""
from __future__ import annotations

from dataclasses import dataclass

from costs import memory, prices
from costs.accelerators import Accelerator, resolve_accelerator
from costs.results import JsonResult
from costs.units import fraction, positive, positive_int

DEFAULT_SERVING_MFU = 0.5  # decode/prefill matmuls at large batch: an optimistic roofline fraction
WEIGHT_BYTES = {"fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
KV_BYTES = {"fp16": 2.0, "bf16": 2.0, "fp8": 1.0}


def bytes_for(precision: str, table: dict, what: str) -> float:
    if precision not in table:
        raise ValueError(f"{what} precision must be one of {', '.join(table)}, got {precision!r}")
    return table[precision]


def prefill_flops(params, prompt_tokens, n_layers, hidden) -> float:
    t = positive(prompt_tokens, "prompt tokens")
    layers, hidden = positive_int(n_layers, "layers"), positive_int(hidden, "hidden")
    return 2.0 * positive(params, "params") * t + 2.0 * layers * t * t * hidden


@dataclass(frozen=True)
class DecodeStep:
    """One decode step of B sequences at context c on n GPUs (the roofline; no efficiency applied)."""
    bytes_per_step: float
    weights_read_bytes: float
    kv_bytes_per_sequence: float
    bandwidth_bound_tokens_per_s: float
    compute_bound_tokens_per_s: float

    @property
    def tokens_per_s(self) -> float:
        return min(self.bandwidth_bound_tokens_per_s, self.compute_bound_tokens_per_s)

    @property
    def bound(self) -> str:
        return "memory bandwidth" if self.bandwidth_bound_tokens_per_s <= self.compute_bound_tokens_per_s else "compute"


def decode_step(acc: Accelerator, n_gpus: int, total: float, active: float, layers: int, hidden: int,
                kv_per_seq: float, batch: int, context: int, weight_bytes: float, mfu: float) -> DecodeStep:
    weights_read = min(total, active * batch) * weight_bytes
    bytes_per_step = weights_read + batch * kv_per_seq
    bw_tps = batch * acc.bandwidth_tbps * 1e12 * n_gpus / bytes_per_step
    compute_tps = acc.peak_flops * n_gpus * mfu / (2.0 * active + 4.0 * layers * context * hidden)
    return DecodeStep(bytes_per_step, weights_read, kv_per_seq, bw_tps, compute_tps)


@dataclass(frozen=True)
class ServingEstimate(JsonResult):
    gpu: str
    gpus: int
    batch: int
    context: int
    bytes_per_step: float
    weights_read_bytes: float
    kv_bytes_per_sequence: float
    bandwidth_bound_tokens_per_s: float
    compute_bound_tokens_per_s: float
    tokens_per_s: float
    tokens_per_s_per_sequence: float
    bound: str
    memory_needed_gb: float
    memory_available_gb: float     # usable: memory.USABLE_FRACTION of the GPUs' memory
    fits_in_memory: bool
    gpu_note: str | None = None
    prefill_flops: float | None = None
    prefill_seconds_at_mfu: float | None = None
    price_usd_per_gpu_hour: float | None = None
    price_source: str | None = None
    usd_per_million_output_tokens: float | None = None  # None when the setup does not fit


def estimate_serving(params, gpu, n_layers, hidden, n_kv_heads, head_dim, context=2048, batch=1, gpus=1,
                     active_params=None, weight_bytes=2.0, kv_bytes=2.0, price=None, mfu=DEFAULT_SERVING_MFU,
                     kv_elems_per_token_per_layer=None, prompt_tokens=None) -> ServingEstimate:
    acc, note = resolve_accelerator(gpu)
    total = positive(params, "params")
    active = positive(active_params, "active params") if active_params not in (None, "") else total
    n_gpus, b = positive_int(gpus, "gpus"), positive_int(batch, "batch")
    c = positive_int(context, "context")
    layers, d = positive_int(n_layers, "layers"), positive_int(hidden, "hidden")
    wbytes = positive(weight_bytes, "bytes per weight")
    kv_per_seq = memory.kv_cache_bytes(layers, n_kv_heads, head_dim, c, 1, kv_bytes, kv_elems_per_token_per_layer)
    mfu = fraction(mfu, "serving MFU")
    step = decode_step(acc, n_gpus, total, active, layers, d, kv_per_seq, b, c, wbytes, mfu)
    needed = (total * wbytes + b * kv_per_seq) / memory.GB
    available = memory.usable_gb(acc.memory_gb, n_gpus)
    fits = needed <= available
    pre_flops = pre_s = None
    if prompt_tokens not in (None, ""):
        pre_flops = prefill_flops(active, prompt_tokens, layers, d)
        pre_s = pre_flops / (acc.peak_flops * n_gpus * mfu)
    rate, source = prices.resolve_price(acc.name, price)
    per_million = rate * n_gpus / 3600.0 / step.tokens_per_s * 1e6 if (rate is not None and fits) else None
    return ServingEstimate(
        gpu=acc.name, gpus=n_gpus, batch=b, context=c, bytes_per_step=step.bytes_per_step,
        weights_read_bytes=step.weights_read_bytes, kv_bytes_per_sequence=kv_per_seq,
        bandwidth_bound_tokens_per_s=step.bandwidth_bound_tokens_per_s,
        compute_bound_tokens_per_s=step.compute_bound_tokens_per_s, tokens_per_s=step.tokens_per_s,
        tokens_per_s_per_sequence=step.tokens_per_s / b, bound=step.bound, memory_needed_gb=needed,
        memory_available_gb=available, fits_in_memory=fits, gpu_note=note, prefill_flops=pre_flops,
        prefill_seconds_at_mfu=pre_s, price_usd_per_gpu_hour=rate, price_source=source,
        usd_per_million_output_tokens=per_million)
