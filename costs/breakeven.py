"""API vs self-hosting: the monthly token volume where running a model on your own GPUs becomes cheaper.

Self-hosting is a fixed bill: a set of `gpus` GPUs rented around the clock (HOURS_PER_MONTH), serving at a
given average utilisation of its capacity (traffic has peaks, so a fleet is never 100 % busy). Its capacity
comes from the fleet model (costs/fleet.py: the largest batch the KV cache allows, roofline decode slowed by
the measured gap, prefill at the calibrated MFU). More traffic than one set can carry needs whole extra sets.
The API bill is linear: input tokens x input price + output tokens x output price.
Break-even volume (same input/output mix) = cost of one set / API price per token of the mix, provided one
set can carry that volume; otherwise self-hosting on these GPUs never gets cheaper than the API.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from costs import fleet, prices, serving
from costs.accelerators import resolve_accelerator
from costs.presets import resolve_model
from costs.results import JsonResult
from costs.sources import DECODE_EFFICIENCY, OUTPUT_TOKENS, PROMPT_TOKENS
from costs.units import fraction, non_negative, positive_int

HOURS_PER_MONTH = 730.0  # 8760 h / 12
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600


@dataclass(frozen=True)
class BreakEven(JsonResult):
    model: str
    gpu: str
    gpus: int
    utilisation: float
    monthly_input_tokens: float
    monthly_output_tokens: float
    api_usd_per_1m_input: float
    api_usd_per_1m_output: float
    api_monthly_usd: float
    fits: bool
    gpu_note: str | None = None
    message: str | None = None
    price_usd_per_gpu_hour: float | None = None
    price_source: str | None = None
    tp: int | None = None
    replicas_per_set: int | None = None
    set_monthly_usd: float | None = None            # one set of `gpus` GPUs for a month
    set_capacity_monthly_tokens: float | None = None  # tokens (same mix) one set serves at this utilisation
    sets_needed: int | None = None
    selfhost_monthly_usd: float | None = None
    selfhost_usd_per_1m_tokens: float | None = None  # blended over the mix, at full sets
    api_usd_per_1m_tokens: float | None = None
    break_even_monthly_tokens: float | None = None  # None: self-hosting never gets cheaper on these GPUs
    cheaper: str | None = None                       # "api" or "self-host" at the given volume


def monthly_api_cost(in_tokens: float, out_tokens: float, api_in: float, api_out: float) -> float:
    return in_tokens / 1e6 * api_in + out_tokens / 1e6 * api_out


def estimate_break_even(gpu, gpus, api_in, api_out, in_tokens, out_tokens, util, model=None, params=None,
                        price=None, price_kind="on-demand", weights="fp16", kv="fp16",
                        prompt_tokens=PROMPT_TOKENS.value, output_tokens=OUTPUT_TOKENS.value) -> BreakEven:
    acc, note = resolve_accelerator(gpu)
    p = resolve_model(model, params)
    n_gpus = positive_int(gpus, "gpus")
    a_in, a_out = non_negative(api_in, "api_in"), non_negative(api_out, "api_out")
    v_in, v_out = non_negative(in_tokens, "in_tokens"), non_negative(out_tokens, "out_tokens")
    if v_in + v_out <= 0:
        raise ValueError("in_tokens + out_tokens must be greater than zero")
    u = fraction(util, "util")
    prompt, output = positive_int(prompt_tokens, "prompt tokens"), positive_int(output_tokens, "output tokens")
    api_month = monthly_api_cost(v_in, v_out, a_in, a_out)
    base = dict(model=p.name, gpu=acc.name, gpus=n_gpus, utilisation=u, monthly_input_tokens=v_in,
                monthly_output_tokens=v_out, api_usd_per_1m_input=a_in, api_usd_per_1m_output=a_out,
                api_monthly_usd=api_month, gpu_note=note)
    wbytes = serving.bytes_for(weights, serving.WEIGHT_BYTES, "weight")
    kbytes = serving.bytes_for(kv, serving.KV_BYTES, "KV cache")
    plans = [fleet.plan_replica(p, acc, prompt, output, None, wbytes, kbytes, DECODE_EFFICIENCY.value, tp)
             for tp in fleet.TP_CHOICES if tp <= n_gpus and p.n_heads % tp == 0]
    plans = [r for r in plans if r is not None]
    if not plans:
        return BreakEven(fits=False, message=f"{p.name} ({weights}) does not fit on {n_gpus} x {acc.name}", **base)
    replica = max(plans, key=lambda r: (n_gpus // r.tp) * r.requests_per_s)  # most throughput from the set
    rate, source = prices.resolve_price(acc.name, price, price_kind)
    if rate is None:
        raise ValueError(f"no price preset for {acc.name}: enter a price (price, USD per GPU-hour)")
    replicas = n_gpus // replica.tp
    set_cost = n_gpus * rate * HOURS_PER_MONTH
    # replica-seconds per token of each kind; one set offers replicas x seconds x utilisation of them
    in_s, out_s = replica.prefill_s / prompt, replica.tpot_s / replica.batch
    need = (v_in * in_s + v_out * out_s) / (replicas * SECONDS_PER_MONTH * u)  # sets for the given volume
    volume = v_in + v_out
    capacity = volume / need
    sets = max(1, math.ceil(need - 1e-12))
    k_even = set_cost / api_month if api_month > 0 else math.inf  # volume multiple where one set = API bill
    even = k_even * volume if k_even * need <= 1 else None
    selfhost = sets * set_cost
    return BreakEven(
        fits=True, price_usd_per_gpu_hour=rate, price_source=source, tp=replica.tp, replicas_per_set=replicas,
        set_monthly_usd=set_cost, set_capacity_monthly_tokens=capacity, sets_needed=sets,
        selfhost_monthly_usd=selfhost, selfhost_usd_per_1m_tokens=set_cost / capacity * 1e6,
        api_usd_per_1m_tokens=api_month / volume * 1e6, break_even_monthly_tokens=even,
        cheaper="self-host" if selfhost < api_month else "api",
        message=None if even is not None else (
            f"one set at {u:.0%} utilisation costs ${set_cost / capacity * 1e6:.3g} per 1M tokens, more than the "
            f"API's ${api_month / volume * 1e6:.3g}: self-hosting on these GPUs never gets cheaper"), **base)


def cost_curves(result: BreakEven, points: int = 41) -> dict:
    """Monthly cost of API and self-hosting over volumes 1e-3..1e3 x the given one (same mix), for the plot."""
    volume = result.monthly_input_tokens + result.monthly_output_tokens
    share_in = result.monthly_input_tokens / volume
    xs = [volume * 10 ** (-3 + 6 * i / (points - 1)) for i in range(points)]
    api = [monthly_api_cost(x * share_in, x * (1 - share_in), result.api_usd_per_1m_input,
                            result.api_usd_per_1m_output) for x in xs]
    selfhost = None
    if result.fits:
        selfhost = [max(1, math.ceil(x / result.set_capacity_monthly_tokens - 1e-12)) * result.set_monthly_usd
                    for x in xs]
    return {"monthly_tokens": xs, "api_usd": api, "selfhost_usd": selfhost}
