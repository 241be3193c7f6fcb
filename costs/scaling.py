"""Scaling advice: Chinchilla-optimal size and data for a compute budget, loss estimate, over-training.

Loss fit (Hoffmann et al. 2022, "Chinchilla", arXiv 2203.15556, Approach 3):
    L(N, D) = E + A / N^alpha + B / D^beta,  E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28
Minimising L under C = 6·N·D gives N_opt = G·(C/6)^a, D_opt = (C/6)^b / G with a = beta/(alpha+beta),
b = alpha/(alpha+beta), G = (alpha·A / (beta·B))^(1/(alpha+beta)).
The popular rule of thumb D ≈ 20·N (Approaches 1-2) gives N = sqrt(C/120). Both are shown: they differ,
and neither was fitted on today's data mixtures.
"""
from __future__ import annotations

import math

from costs.units import positive

E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28
TOKENS_PER_PARAM_RULE = 20.0


def loss(params, tokens) -> float:
    return E + A / positive(params, "params") ** ALPHA + B / positive(tokens, "tokens") ** BETA


def chinchilla_rule(compute) -> dict:
    """D = 20·N with C = 6·N·D  =>  N = sqrt(C / 120)."""
    c = positive(compute, "compute")
    n = math.sqrt(c / (6.0 * TOKENS_PER_PARAM_RULE))
    return {"params": n, "tokens": TOKENS_PER_PARAM_RULE * n, "loss": loss(n, TOKENS_PER_PARAM_RULE * n)}


def chinchilla_fit_optimum(compute) -> dict:
    c = positive(compute, "compute")
    g = (ALPHA * A / (BETA * B)) ** (1.0 / (ALPHA + BETA))
    n = g * (c / 6.0) ** (BETA / (ALPHA + BETA))
    d = (c / 6.0) ** (ALPHA / (ALPHA + BETA)) / g
    return {"params": n, "tokens": d, "loss": loss(n, d)}


def tokens_for_loss(params, target_loss) -> float | None:
    """Tokens a model of `params` needs to reach target_loss under the fit; None if unreachable."""
    gap = float(target_loss) - E - A / positive(params, "params") ** ALPHA
    if gap <= 0:
        return None
    return (B / gap) ** (1.0 / BETA)


def overtraining_tradeoff(compute, shrink_factors=(1.0, 0.75, 0.5, 0.35, 0.25)) -> list[dict]:
    """Smaller models trained on more tokens to the *same loss* as the compute-optimal model of the loss fit.

    The base is the minimum of L(N, D) at this compute (not the 20-tokens rule: a model smaller than the rule's
    N can be *cheaper* to train under this fit, which would make the trade-off meaningless). For each row:
    training compute vs the optimum, inference cost per token (2·N FLOPs) vs the optimum, and the number of
    served tokens after which the smaller model's total (training + inference) compute is lower.
    """
    base = chinchilla_fit_optimum(compute)
    base_compute = 6.0 * base["params"] * base["tokens"]
    rows = []
    for factor in shrink_factors:
        n = base["params"] * factor
        d = tokens_for_loss(n, base["loss"])
        if d is None:
            rows.append({"shrink": factor, "params": n, "tokens": None, "reachable": False})
            continue
        train = 6.0 * n * d
        extra_train = train - base_compute
        saved_per_token = 2.0 * (base["params"] - n)
        rows.append({
            "shrink": factor, "params": n, "tokens": d, "reachable": True, "tokens_per_param": d / n,
            "train_compute": train, "train_compute_ratio": train / base_compute,
            "inference_cost_ratio": n / base["params"],
            "break_even_inference_tokens": (extra_train / saved_per_token) if saved_per_token > 0 else None,
        })
    return rows
