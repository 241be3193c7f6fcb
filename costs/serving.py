"""Serving: prefill FLOPs, decode throughput bounds and $ per million output tokens.

Prefill (one prompt of T tokens):  2·N·T  +  2·L·T²·d   (matmuls + causal attention scores/values, forward only)
Decode, one step for a batch of B sequences at context c:
    bytes read  = weights touched + B · KV cache of one sequence
                  (weights touched = min(total, B · active) params for MoE: a lower bound for routing)
    bandwidth-bound tokens/s = B · bandwidth / bytes read
    compute-bound  tokens/s = peak · MFU / (2·N_active + 4·L·c·d)
    tokens/s = min of the two (a roofline: real servers land below it)
$ per 1M output tokens = (price per GPU-hour · GPUs / 3600) / tokens/s · 1e6
"""
from __future__ import annotations

from costs import memory, prices
from costs.accelerators import get_accelerator
from costs.units import fraction, non_negative, positive, positive_int

DEFAULT_SERVING_MFU = 0.5  # decode matmuls at large batch; an optimistic roofline fraction


def prefill_flops(params, prompt_tokens, n_layers, hidden) -> float:
    t = positive(prompt_tokens, "prompt tokens")
    layers, hidden = positive_int(n_layers, "layers"), positive_int(hidden, "hidden")
    return 2.0 * positive(params, "params") * t + 2.0 * layers * t * t * hidden


def estimate_serving(params, gpu, n_layers, hidden, n_kv_heads, head_dim, context=2048, batch=1, gpus=1,
                     active_params=None, weight_bytes=2.0, kv_bytes=2.0, price=None, mfu=DEFAULT_SERVING_MFU,
                     kv_elems_per_token_per_layer=None, prompt_tokens=None) -> dict:
    acc = get_accelerator(gpu)
    total = positive(params, "params")
    active = positive(active_params, "active params") if active_params not in (None, "") else total
    n_gpus, b = positive_int(gpus, "gpus"), positive_int(batch, "batch")
    c = positive_int(context, "context")
    layers, d = positive_int(n_layers, "layers"), positive_int(hidden, "hidden")
    kv_per_seq = memory.kv_cache_bytes(layers, n_kv_heads, head_dim, c, 1, kv_bytes, kv_elems_per_token_per_layer)
    weights_read = min(total, active * b) * positive(weight_bytes, "bytes per weight")
    bytes_per_step = weights_read + b * kv_per_seq
    bandwidth = acc.bandwidth_tbps * 1e12 * n_gpus
    bw_tps = b * bandwidth / bytes_per_step
    flops_per_token = 2.0 * active + 4.0 * layers * c * d
    compute_tps = acc.peak_flops * n_gpus * fraction(mfu, "serving MFU") / flops_per_token
    tps = min(bw_tps, compute_tps)
    result = {
        "gpu": acc.name, "gpus": n_gpus, "batch": b, "context": c,
        "bytes_per_step": bytes_per_step, "weights_read_bytes": weights_read, "kv_bytes_per_sequence": kv_per_seq,
        "bandwidth_bound_tokens_per_s": bw_tps, "compute_bound_tokens_per_s": compute_tps,
        "tokens_per_s": tps, "tokens_per_s_per_sequence": tps / b,
        "bound": "memory bandwidth" if bw_tps <= compute_tps else "compute",
        "memory_needed_gb": (total * weight_bytes + b * kv_per_seq) / 1e9,
        "memory_available_gb": acc.memory_gb * n_gpus,
    }
    result["fits_in_memory"] = result["memory_needed_gb"] <= result["memory_available_gb"]
    if prompt_tokens not in (None, ""):
        result["prefill_flops"] = prefill_flops(active, prompt_tokens, layers, d)
        result["prefill_seconds_at_mfu"] = result["prefill_flops"] / (acc.peak_flops * n_gpus * mfu)
    if price not in (None, ""):
        rate, source = non_negative(price, "price"), "user"
    else:
        preset = prices.default_price(acc.name)
        rate, source = (preset.usd_per_gpu_hour, preset.label) if preset else (None, None)
    if rate is not None:
        result.update({"price_usd_per_gpu_hour": rate, "price_source": source,
                       "usd_per_million_output_tokens": rate * n_gpus / 3600.0 / tps * 1e6})
    return result
