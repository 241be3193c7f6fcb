"""Serving fleet: from traffic (QPS, prompt/output lengths) and latency targets (TTFT, TPOT) to GPUs and $/1M.

Per replica of `tp` GPUs (tensor parallel; auto = the power of two needing the fewest GPUs in all):
  * KV budget: largest batch B_kv = (usable memory − weights) / KV bytes of one sequence at prompt + output;
  * decode: the roofline step of serving.decode_step at average context prompt + output/2, slowed by the
    measured-vs-roofline gap (sources.DECODE_EFFICIENCY): TPOT(B) = B / (roofline tokens/s · efficiency);
    the batch is the largest B <= B_kv with TPOT(B) <= target;
  * prefill: TTFT = prefill FLOPs / (peak · tp · prefill MFU), prefill MFU = the calibrated training MFU for that
    GPU and model size (large matmuls like training; costs/calibration.py), no queueing;
  * requests/s per replica R = 1 / (prefill seconds + output tokens · TPOT / B) (continuous batching: prefill
    steals whole-replica time from decode).
Replicas = ceil(QPS / R); $ split between input and output tokens by the share of replica time spent on each.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from costs import calibration, memory, prices, serving
from costs.accelerators import Accelerator, resolve_accelerator
from costs.presets import ModelPreset, resolve_model
from costs.results import JsonResult
from costs.sources import DECODE_EFFICIENCY
from costs.units import fraction, positive, positive_int


@dataclass(frozen=True)
class Replica:
    """What one replica of tp GPUs can do for one request shape (all the fleet and break-even math need)."""
    tp: int
    weights_gb: float
    kv_per_sequence_gb: float
    usable_gb: float
    max_batch_kv: int
    batch: int
    tpot_s: float
    prefill_s: float
    requests_per_s: float
    roofline_tokens_per_s_per_gpu: float
    tokens_per_s_per_gpu: float
    bound: str
    tpot_met: bool

    @property
    def prefill_share(self) -> float:
        """Share of the replica's busy time spent on prefill (the rest is decode)."""
        return self.prefill_s * self.requests_per_s


TP_CHOICES = (1, 2, 4, 8)  # one NVLink node; more is allowed as an explicit tp (interconnect not modelled)


def best_replica(p: ModelPreset, acc: Accelerator, prompt: int, output: int, tpot_target: float | None,
                 weight_bytes: float, kv_bytes: float, efficiency: float, qps: float = 1.0) -> Replica | None:
    """Auto tp: the replica size (power of two dividing the heads) needing the fewest GPUs for this QPS,
    preferring sizes that meet the TPOT target; ties go to the smaller replica."""
    plans = [plan_replica(p, acc, prompt, output, tpot_target, weight_bytes, kv_bytes, efficiency, tp)
             for tp in TP_CHOICES if p.n_heads % tp == 0]
    plans = [r for r in plans if r is not None]
    if not plans:
        return None
    return min(plans, key=lambda r: (not r.tpot_met, math.ceil(qps / r.requests_per_s) * r.tp, r.tp))


def plan_replica(p: ModelPreset, acc: Accelerator, prompt: int, output: int, tpot_target: float | None,
                 weight_bytes: float, kv_bytes: float, efficiency: float, tp: int) -> Replica | None:
    """One replica of tp GPUs for this model/GPU/shape; None when the weights plus one sequence do not fit."""
    weights_gb = p.params * weight_bytes / memory.GB
    kv_seq = memory.kv_cache_bytes(p.n_layers, p.n_kv_heads, p.head_dim, prompt + output, 1, kv_bytes,
                                   p.kv_elems_per_token_per_layer)
    memory.check_tp_divides_heads(tp, p.n_heads)
    usable = memory.usable_gb(acc.memory_gb, tp)
    b_kv = math.floor((usable - weights_gb) * memory.GB / kv_seq)
    if b_kv < 1:
        return None
    context = prompt + output // 2
    active = p.compute_params

    def step(batch: int) -> serving.DecodeStep:
        return serving.decode_step(acc, tp, p.params, active, p.n_layers, p.hidden, kv_seq * context /
                                   (prompt + output), batch, context, weight_bytes, serving.DEFAULT_SERVING_MFU)

    def tpot(batch: int) -> float:
        return batch / (step(batch).tokens_per_s * efficiency)

    batch, met = b_kv, True
    if tpot_target is not None and tpot(b_kv) > tpot_target:
        if tpot(1) > tpot_target:
            batch, met = 1, False
        else:  # TPOT grows with B: bisect for the largest batch that meets the target
            low, high = 1, b_kv
            while high - low > 1:
                mid = (low + high) // 2
                low, high = (mid, high) if tpot(mid) <= tpot_target else (low, mid)
            batch = low
    mfu, _ = calibration.default_mfu(acc, active)
    prefill_s = serving.prefill_flops(active, prompt, p.n_layers, p.hidden) / (acc.peak_flops * tp * mfu)
    t = tpot(batch)
    rps = 1.0 / (prefill_s + output * t / batch)
    roof = step(batch)
    return Replica(tp, weights_gb, kv_seq / memory.GB, usable, b_kv, batch, t, prefill_s, rps,
                   roof.tokens_per_s / tp, batch / t / tp, roof.bound, met)


@dataclass(frozen=True)
class FleetEstimate(JsonResult):
    model: str
    gpu: str
    qps: float
    prompt_tokens: int
    output_tokens: int
    weights: str
    kv: str
    efficiency: float
    efficiency_source: str
    fits: bool
    gpu_note: str | None = None
    message: str | None = None
    tp: int | None = None
    weights_gb: float | None = None
    kv_per_sequence_gb: float | None = None
    usable_gb_per_replica: float | None = None
    max_batch_kv: int | None = None
    batch: int | None = None
    tpot_s: float | None = None
    tpot_target_s: float | None = None
    tpot_met: bool | None = None
    ttft_s: float | None = None
    ttft_target_s: float | None = None
    ttft_met: bool | None = None
    bound: str | None = None
    roofline_output_tokens_per_s_per_gpu: float | None = None
    output_tokens_per_s_per_gpu: float | None = None
    requests_per_s_per_replica: float | None = None
    replicas: int | None = None
    gpus: int | None = None
    price_usd_per_gpu_hour: float | None = None
    price_source: str | None = None
    usd_per_hour: float | None = None
    usd_per_million_input_tokens: float | None = None
    usd_per_million_output_tokens: float | None = None


def estimate_fleet(gpu, qps, prompt_tokens, output_tokens, model=None, params=None, ttft_s=None, tpot_s=None,
                   weights="fp16", kv="fp16", tp=None, price=None, price_kind="on-demand",
                   efficiency=DECODE_EFFICIENCY.value) -> FleetEstimate:
    """GPUs and $ per 1M input/output tokens for a traffic level. Raises ValueError on bad input."""
    acc, note = resolve_accelerator(gpu)
    p = resolve_model(model, params)
    q = positive(qps, "qps")
    prompt, output = positive_int(prompt_tokens, "prompt tokens"), positive_int(output_tokens, "output tokens")
    ttft = positive(ttft_s, "TTFT target") if ttft_s not in (None, "") else None
    tpot_target = positive(tpot_s, "TPOT target") if tpot_s not in (None, "") else None
    eff = fraction(efficiency, "efficiency")
    wbytes = serving.bytes_for(weights, serving.WEIGHT_BYTES, "weight")
    kbytes = serving.bytes_for(kv, serving.KV_BYTES, "KV cache")
    n_tp = positive_int(tp, "tp") if tp not in (None, "") else None
    base = dict(model=p.name, gpu=acc.name, qps=q, prompt_tokens=prompt, output_tokens=output, weights=weights,
                kv=kv, efficiency=eff, efficiency_source=DECODE_EFFICIENCY.label, gpu_note=note,
                tpot_target_s=tpot_target, ttft_target_s=ttft)
    if n_tp is None:
        replica = best_replica(p, acc, prompt, output, tpot_target, wbytes, kbytes, eff, q)
    else:
        replica = plan_replica(p, acc, prompt, output, tpot_target, wbytes, kbytes, eff, n_tp)
    if replica is None:
        where = f"{n_tp} x {acc.name}" if n_tp else f"up to {TP_CHOICES[-1]} x {acc.name}"
        return FleetEstimate(fits=False, tp=n_tp, message=(
            f"{p.name} with {weights} weights plus the KV cache of one {prompt + output}-token sequence does not "
            f"fit in {where} ({memory.USABLE_FRACTION:.0%} of memory usable): no cost is given"), **base)
    replicas = math.ceil(q / replica.requests_per_s)
    n_gpus = replicas * replica.tp
    rate, source = prices.resolve_price(acc.name, price, price_kind)
    per_hour = cost_in = cost_out = None
    if rate is not None:
        per_hour = rate * n_gpus
        share = replica.prefill_share
        cost_in = per_hour * share / (q * prompt * 3600) * 1e6
        cost_out = per_hour * (1 - share) / (q * output * 3600) * 1e6
    ttft_met = None if ttft is None else replica.prefill_s <= ttft
    messages = []
    if not replica.tpot_met:
        messages.append(f"TPOT target {tpot_target:g} s is out of reach even at batch 1 "
                        f"({replica.tpot_s * 1000:.0f} ms): use more GPUs per replica (tp) or lower precision")
    if ttft_met is False:
        messages.append(f"TTFT {replica.prefill_s * 1000:.0f} ms (prefill alone) exceeds the {ttft:g} s target")
    return FleetEstimate(
        fits=True, message="; ".join(messages) or None, tp=replica.tp, weights_gb=replica.weights_gb,
        kv_per_sequence_gb=replica.kv_per_sequence_gb, usable_gb_per_replica=replica.usable_gb,
        max_batch_kv=replica.max_batch_kv, batch=replica.batch, tpot_s=replica.tpot_s, tpot_met=replica.tpot_met,
        ttft_s=replica.prefill_s, ttft_met=ttft_met, bound=replica.bound,
        roofline_output_tokens_per_s_per_gpu=replica.roofline_tokens_per_s_per_gpu,
        output_tokens_per_s_per_gpu=replica.tokens_per_s_per_gpu,
        requests_per_s_per_replica=replica.requests_per_s, replicas=replicas, gpus=n_gpus,
        price_usd_per_gpu_hour=rate, price_source=source, usd_per_hour=per_hour,
        usd_per_million_input_tokens=cost_in, usd_per_million_output_tokens=cost_out, **base)
