"""Training compute, time, money, energy and CO2.

Conventions (shown side by side in the UI; the headline uses 6·N·D, which is what the calibration uses):
  * 6ND       C = 6 · N · D            N = parameters (active parameters for MoE), D = training tokens.
                                       2 FLOPs per parameter per token forward, 4 backward (Kaplan et al. 2020).
  * attention C = (6·N + 12·L·H·Q·T)·D L layers, H query heads, Q head dim, T sequence length
                                       (PaLM, Chowdhery et al. 2022, Appendix B; nanoGPT's estimate_mfu).
GPU-hours = C / (peak dense FLOP/s of the training precision × MFU) / 3600; MFU defaults to the fitted model
in costs/calibration.py, with its leave-one-out error band (gpu_hours_low/high).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from costs import calibration, prices
from costs.accelerators import Accelerator, get_accelerator, resolve_accelerator
from costs.results import JsonResult
from costs.units import fraction, non_negative, positive, positive_int

DEFAULT_PUE = 1.2                 # between hyperscale (~1.1) and typical enterprise data centres
DEFAULT_GRID_KG_PER_KWH = 0.4     # round figure between US and world averages; set your own
DEFAULT_DATASET_BYTES_PER_TOKEN = 4.0   # ~4 bytes of raw text per token (English BPE)
DEFAULT_CHECKPOINT_BYTES_PER_PARAM = 16.0  # full mixed-precision Adam state (ZeRO paper: 2+2+12)
DEFAULT_CHECKPOINTS_KEPT = 5


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


def gpu_hours(flops: float, accelerator: Accelerator, mfu: float, precision: str = "bf16") -> float:
    return flops / (calibration.peak_flops(accelerator, precision) * mfu) / 3600.0


def energy_kwh(gpu_hours_: float, power_w: float, pue: float = DEFAULT_PUE) -> float:
    """Facility energy: GPU-hours × board power × PUE (the Llama model cards' method)."""
    return gpu_hours_ * power_w * pue / 1000.0


@dataclass(frozen=True)
class Storage(JsonResult):
    storage_gb: float
    dataset_gb: float
    checkpoint_gb: float
    checkpoints_kept: int
    storage_months: float
    storage_usd_per_gb_month: float
    storage_cost_usd: float
    egress_gb: float
    egress_usd_per_gb: float
    egress_cost_usd: float


@dataclass(frozen=True)
class Energy(JsonResult):
    power_w: float
    pue: float
    energy_kwh: float
    grid_kg_co2_per_kwh: float
    co2_tonnes: float


@dataclass(frozen=True)
class TrainingEstimate(JsonResult):
    """`python -m costs train --json` prints to_dict() of this (flat: storage and energy fields inlined)."""
    gpu: str
    params: float
    active_params: float
    tokens: float
    flops: float
    flops_convention: str
    precision: str
    peak_tflops: float
    mfu: float
    mfu_basis: str
    gpu_hours: float
    gpu_hours_low: float | None = None     # error band of the calibrated default (None with a user MFU)
    gpu_hours_high: float | None = None
    gpu_note: str | None = None            # which variant a vague GPU name picked
    flops_with_attention: float | None = None
    attention_share: float | None = None
    gpus: int | None = None
    wall_days: float | None = None
    price_usd_per_gpu_hour: float | None = None
    price_source: str | None = None
    compute_cost_usd: float | None = None
    cost_usd: float | None = None
    total_cost_usd: float | None = None
    storage: Storage | None = None
    energy: Energy | None = None

    def to_dict(self) -> dict:
        flat = super().to_dict()
        for part in ("storage", "energy"):
            flat.update(flat.pop(part, {}))
        return flat


def storage_and_egress(n_tokens: float, total_params: float, wall_days: float | None,
                       storage_usd_per_gb_month=None, dataset_gb=None, checkpoint_gb=None,
                       checkpoints_kept=DEFAULT_CHECKPOINTS_KEPT, egress_gb=None, egress_usd_per_gb=None) -> Storage:
    """Dataset + kept checkpoints stored for the run's duration (at least one month), final weights sent out once."""
    storage_rate = (prices.STORAGE_USD_PER_GB_MONTH if storage_usd_per_gb_month in (None, "")
                    else non_negative(storage_usd_per_gb_month, "storage price"))
    data_gb = (n_tokens * DEFAULT_DATASET_BYTES_PER_TOKEN / 1e9 if dataset_gb in (None, "")
               else non_negative(dataset_gb, "dataset size"))
    ckpt_gb = (total_params * DEFAULT_CHECKPOINT_BYTES_PER_PARAM / 1e9 if checkpoint_gb in (None, "")
               else non_negative(checkpoint_gb, "checkpoint size"))
    kept = positive_int(checkpoints_kept, "checkpoints kept")
    months = max((30.4 if wall_days is None else wall_days) / 30.4, 1.0)
    out_gb = total_params * 2 / 1e9 if egress_gb in (None, "") else non_negative(egress_gb, "egress")
    egress_rate = (prices.EGRESS_USD_PER_GB if egress_usd_per_gb in (None, "")
                   else non_negative(egress_usd_per_gb, "egress price"))
    return Storage(data_gb + ckpt_gb * kept, data_gb, ckpt_gb, kept, months, storage_rate,
                   (data_gb + ckpt_gb * kept) * storage_rate * months, out_gb, egress_rate, out_gb * egress_rate)


def energy_for(hours: float, accelerator: Accelerator, power_w=None, pue=DEFAULT_PUE,
               grid_kg_per_kwh=DEFAULT_GRID_KG_PER_KWH) -> Energy | None:
    watts = power_w if power_w not in (None, "") else accelerator.tdp_w
    if watts is None:
        return None
    watts = positive(watts, "power")
    kwh = energy_kwh(hours, watts, positive(pue, "PUE"))
    grid = non_negative(grid_kg_per_kwh, "grid intensity")
    return Energy(watts, float(pue), kwh, grid, kwh * grid / 1000.0)


def resolve_mfu(mfu, accelerator: Accelerator, compute_params: float, precision: str, year=None):
    """(MFU, basis, error band or None): the user's MFU, or the calibrated default with its error band."""
    if mfu not in (None, ""):
        return fraction(mfu, "mfu"), "user", None
    value, basis = calibration.default_mfu(accelerator, compute_params, year, precision)
    return value, basis, calibration.error_band()


def estimate_training(params, tokens, gpu, gpus=None, mfu=None, price=None, active_params=None,
                      arch: dict | None = None, price_kind: str = "on-demand",
                      storage_usd_per_gb_month=None, dataset_gb=None, checkpoint_gb=None,
                      checkpoints_kept=DEFAULT_CHECKPOINTS_KEPT, egress_gb=None, egress_usd_per_gb=None,
                      pue=DEFAULT_PUE, grid_kg_per_kwh=DEFAULT_GRID_KG_PER_KWH, power_w=None,
                      precision: str = "bf16", year=None) -> TrainingEstimate:
    """The training estimate behind the CLI, the API and the tab. Raises ValueError on bad input.

    GPU-hours always come from 6·N·D (what the MFU model was calibrated on); the attention-FLOPs convention
    is reported beside it as FLOPs only: scaling the calibrated hours by it would count attention twice.
    """
    total_params = positive(params, "params")
    compute_params = positive(active_params, "active params") if active_params not in (None, "") else total_params
    if compute_params > total_params:
        raise ValueError("active params cannot exceed total params")
    n_tokens = positive(tokens, "tokens")
    accelerator, gpu_note = resolve_accelerator(gpu)
    mfu_value, mfu_basis, band = resolve_mfu(mfu, accelerator, compute_params, precision, year)
    flops = 6.0 * compute_params * n_tokens
    hours = gpu_hours(flops, accelerator, mfu_value, precision)

    with_attention = share = None
    if arch:
        attn = attention_flops_per_token(arch["n_layers"], arch["n_heads"], arch["head_dim"], arch["seq_len"])
        with_attention, share = (6.0 * compute_params + attn) * n_tokens, attn / (6.0 * compute_params + attn)
    n_gpus = positive_int(gpus, "gpus") if gpus not in (None, "") else None
    wall_days = hours / n_gpus / 24.0 if n_gpus else None

    rate, source = prices.resolve_price(accelerator.name, price, price_kind)
    compute_cost = storage = None
    if rate is not None:
        compute_cost = hours * rate
        storage = storage_and_egress(n_tokens, total_params, wall_days, storage_usd_per_gb_month, dataset_gb,
                                     checkpoint_gb, checkpoints_kept, egress_gb, egress_usd_per_gb)
    return TrainingEstimate(
        gpu=accelerator.name, params=total_params, active_params=compute_params, tokens=n_tokens, flops=flops,
        flops_convention="6ND", precision=precision,
        peak_tflops=calibration.peak_flops(accelerator, precision) / 1e12, mfu=mfu_value, mfu_basis=mfu_basis,
        gpu_hours=hours, gpu_hours_low=hours * band[0] if band else None,
        gpu_hours_high=hours * band[1] if band else None, gpu_note=gpu_note,
        flops_with_attention=with_attention, attention_share=share, gpus=n_gpus, wall_days=wall_days,
        price_usd_per_gpu_hour=rate, price_source=source, compute_cost_usd=compute_cost, cost_usd=compute_cost,
        total_cost_usd=(compute_cost + storage.storage_cost_usd + storage.egress_cost_usd) if storage else None,
        storage=storage, energy=energy_for(hours, accelerator, power_w, pue, grid_kg_per_kwh))


def cost_vs_size(gpus: list[str], sizes: list[float], tokens_per_param: float = 20.0,
                 price_kind: str = "on-demand") -> dict[str, list[dict]]:
    """Series for the 'cost vs model size' plot: each GPU at its default MFU and price preset."""
    series: dict[str, list[dict]] = {}
    for name in gpus:
        points = []
        for size in sizes:
            estimate = estimate_training(size, size * tokens_per_param, name, price_kind=price_kind)
            if estimate.cost_usd is not None:
                points.append({"params": size, "tokens": estimate.tokens, "cost_usd": estimate.cost_usd,
                               "gpu_hours": estimate.gpu_hours, "mfu": estimate.mfu})
        series[get_accelerator(name).name] = points
    return series


def log_space(low: float, high: float, count: int) -> list[float]:
    step = (math.log10(high) - math.log10(low)) / (count - 1)
    return [10 ** (math.log10(low) + i * step) for i in range(count)]
