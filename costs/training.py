"""Training compute, time, money, energy and CO2.

Conventions (shown side by side in the UI; the headline uses 6·N·D, which is what the calibration uses):
  * 6ND       C = 6 · N · D            N = parameters (active parameters for MoE), D = training tokens.
                                       2 FLOPs per parameter per token forward, 4 backward (Kaplan et al. 2020).
  * attention C = (6·N + 12·L·H·Q·T)·D L layers, H query heads, Q head dim, T sequence length
                                       (PaLM, Chowdhery et al. 2022, Appendix B; nanoGPT's estimate_mfu).
GPU-hours = C / (peak dense BF16 FLOP/s × MFU) / 3600.
"""
from __future__ import annotations

import math

from costs import calibration, prices
from costs.accelerators import Accelerator, get_accelerator
from costs.units import fraction, non_negative, positive, positive_int

DEFAULT_PUE = 1.2                 # between hyperscale (~1.1) and typical enterprise data centres
DEFAULT_GRID_KG_PER_KWH = 0.4     # round figure between US and world averages; set your own
DEFAULT_DATASET_BYTES_PER_TOKEN = 4.0   # ~4 bytes of raw text per token (English BPE)
DEFAULT_CHECKPOINT_BYTES_PER_PARAM = 16.0  # full mixed-precision Adam state (ZeRO paper: 2+2+12)
DEFAULT_CHECKPOINTS_KEPT = 5
HOURS_PER_MONTH = 730.0


def flops_6nd(params: float, tokens: float) -> float:
    return 6.0 * positive(params, "params") * positive(tokens, "tokens")


def attention_flops_per_token(n_layers: int, n_heads: int, head_dim: int, seq_len: int) -> float:
    """12·L·H·Q·T: the QK^T and AV matmuls, forward + backward (PaLM Appendix B)."""
    return 12.0 * n_layers * n_heads * head_dim * seq_len


def flops_with_attention(params: float, tokens: float, n_layers: int, n_heads: int, head_dim: int,
                         seq_len: int) -> float:
    per_token = 6.0 * positive(params, "params") + attention_flops_per_token(
        positive_int(n_layers, "layers"), positive_int(n_heads, "heads"), positive_int(head_dim, "head_dim"),
        positive_int(seq_len, "sequence length"))
    return per_token * positive(tokens, "tokens")


def gpu_hours(flops: float, accelerator: Accelerator, mfu: float) -> float:
    return flops / (accelerator.peak_flops * mfu) / 3600.0


def energy_kwh(gpu_hours_: float, power_w: float, pue: float = DEFAULT_PUE) -> float:
    """Facility energy: GPU-hours × board power × PUE (the Llama model cards' method)."""
    return gpu_hours_ * power_w * pue / 1000.0


def estimate_training(params, tokens, gpu, gpus=None, mfu=None, price=None, active_params=None,
                      arch: dict | None = None, price_kind: str = "on-demand",
                      storage_usd_per_gb_month=None, dataset_gb=None, checkpoint_gb=None,
                      checkpoints_kept=DEFAULT_CHECKPOINTS_KEPT, egress_gb=None, egress_usd_per_gb=None,
                      pue=DEFAULT_PUE, grid_kg_per_kwh=DEFAULT_GRID_KG_PER_KWH, power_w=None) -> dict:
    """The training estimate behind the CLI, the API and the tab. Raises ValueError on bad input.

    Returns a flat JSON-friendly dict with at least: flops, gpu_hours, mfu, gpu, and wall_days (when gpus is
    given) and cost_usd (when a price is given or a preset exists for the GPU).
    """
    total_params = positive(params, "params")
    compute_params = positive(active_params, "active params") if active_params not in (None, "") else total_params
    if compute_params > total_params:
        raise ValueError("active params cannot exceed total params")
    n_tokens = positive(tokens, "tokens")
    accelerator = get_accelerator(gpu)
    if mfu in (None, ""):
        mfu_value, mfu_basis = calibration.default_mfu(accelerator)
    else:
        mfu_value, mfu_basis = fraction(mfu, "mfu"), "user"

    flops = 6.0 * compute_params * n_tokens
    hours = gpu_hours(flops, accelerator, mfu_value)
    result: dict = {
        "gpu": accelerator.name,
        "params": total_params,
        "active_params": compute_params,
        "tokens": n_tokens,
        "flops": flops,
        "flops_convention": "6ND",
        "peak_tflops": accelerator.bf16_dense_tflops,
        "mfu": mfu_value,
        "mfu_basis": mfu_basis,
        "gpu_hours": hours,
    }
    if arch:
        attn = attention_flops_per_token(arch["n_layers"], arch["n_heads"], arch["head_dim"], arch["seq_len"])
        result["flops_with_attention"] = (6.0 * compute_params + attn) * n_tokens
        result["attention_share"] = attn / (6.0 * compute_params + attn)

    if gpus not in (None, ""):
        n_gpus = positive_int(gpus, "gpus")
        result["gpus"] = n_gpus
        result["wall_days"] = hours / n_gpus / 24.0

    if price not in (None, ""):
        result["price_usd_per_gpu_hour"] = non_negative(price, "price")
        result["price_source"] = "user"
    else:
        preset = prices.default_price(accelerator.name, price_kind)
        if preset is not None:
            result["price_usd_per_gpu_hour"] = preset.usd_per_gpu_hour
            result["price_source"] = f"{preset.provider} ({preset.kind}, {preset.as_of}) {preset.source}"
    if "price_usd_per_gpu_hour" in result:
        compute_cost = hours * result["price_usd_per_gpu_hour"]
        result["compute_cost_usd"] = compute_cost
        result["cost_usd"] = compute_cost

        storage_rate = (prices.STORAGE_USD_PER_GB_MONTH if storage_usd_per_gb_month in (None, "")
                        else non_negative(storage_usd_per_gb_month, "storage price"))
        data_gb = (n_tokens * DEFAULT_DATASET_BYTES_PER_TOKEN / 1e9 if dataset_gb in (None, "")
                   else non_negative(dataset_gb, "dataset size"))
        ckpt_gb = (total_params * DEFAULT_CHECKPOINT_BYTES_PER_PARAM / 1e9 if checkpoint_gb in (None, "")
                   else non_negative(checkpoint_gb, "checkpoint size"))
        kept = positive_int(checkpoints_kept, "checkpoints kept")
        months = max(result.get("wall_days", 30.4) / 30.4, 1.0)
        storage_cost = (data_gb + ckpt_gb * kept) * storage_rate * months
        out_gb = total_params * 2 / 1e9 if egress_gb in (None, "") else non_negative(egress_gb, "egress")
        egress_rate = (prices.EGRESS_USD_PER_GB if egress_usd_per_gb in (None, "")
                       else non_negative(egress_usd_per_gb, "egress price"))
        egress_cost = out_gb * egress_rate
        result.update({
            "storage_gb": data_gb + ckpt_gb * kept, "dataset_gb": data_gb, "checkpoint_gb": ckpt_gb,
            "checkpoints_kept": kept, "storage_months": months, "storage_usd_per_gb_month": storage_rate,
            "storage_cost_usd": storage_cost,
            "egress_gb": out_gb, "egress_usd_per_gb": egress_rate, "egress_cost_usd": egress_cost,
            "total_cost_usd": compute_cost + storage_cost + egress_cost,
        })

    watts = power_w if power_w not in (None, "") else accelerator.tdp_w
    if watts is not None:
        watts = positive(watts, "power")
        kwh = energy_kwh(hours, watts, positive(pue, "PUE"))
        result.update({"power_w": watts, "pue": float(pue), "energy_kwh": kwh,
                       "grid_kg_co2_per_kwh": non_negative(grid_kg_per_kwh, "grid intensity"),
                       "co2_tonnes": kwh * float(grid_kg_per_kwh) / 1000.0})
    return result


def cost_vs_size(gpus: list[str], sizes: list[float], tokens_per_param: float = 20.0,
                 price_kind: str = "on-demand") -> dict[str, list[dict]]:
    """Series for the 'cost vs model size' plot: each GPU at its default MFU and price preset."""
    series: dict[str, list[dict]] = {}
    for name in gpus:
        points = []
        for size in sizes:
            estimate = estimate_training(size, size * tokens_per_param, name, price_kind=price_kind)
            if "cost_usd" in estimate:
                points.append({"params": size, "tokens": estimate["tokens"], "cost_usd": estimate["cost_usd"],
                               "gpu_hours": estimate["gpu_hours"], "mfu": estimate["mfu"]})
        series[get_accelerator(name).name] = points
    return series


def log_space(low: float, high: float, count: int) -> list[float]:
    step = (math.log10(high) - math.log10(low)) / (count - 1)
    return [10 ** (math.log10(low) + i * step) for i in range(count)]
