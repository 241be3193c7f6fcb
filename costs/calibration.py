"""Default MFU per accelerator generation, calibrated on published training runs (data/published_runs.csv).

Method (chosen to be simple enough to audit, and not tuned to the data beyond one number per generation):
  1. For every published run, the *implied* MFU = 6·N·D / (GPU-hours · 3600 · dense BF16 peak),
     with N = active parameters for MoE. GPU-hours are wall-clock device hours as published, so this
     "end-to-end MFU" includes restarts, evaluation and other overheads -- which is what a budget needs.
  2. The default MFU of a generation (Ampere, Hopper, ...) is the median implied MFU of its runs when it has
     at least MIN_RUNS_PER_GENERATION runs; otherwise the median over all runs (pooled).
  3. We report the error of "estimate from params, tokens and GPU type alone" against the published GPU-hours:
     in-sample, and leave-one-out (each run's default recomputed without that run), plus a fixed-MFU baseline.

Ratio error of one run = max(estimate/published, published/estimate) (1.0 = exact).
"""
from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from costs.accelerators import Accelerator, get_accelerator

DATA_FILE = Path(__file__).with_name("data") / "published_runs.csv"
MIN_RUNS_PER_GENERATION = 3
FIXED_BASELINE_MFU = 0.35  # middle of Epoch AI's "30-40% when unknown" rule of thumb


@dataclass(frozen=True)
class PublishedRun:
    run: str
    params: float
    active_params: float | None
    tokens: float
    gpu: str
    gpu_hours: float
    hours_basis: str
    source_url: str
    note: str

    @property
    def compute_params(self) -> float:
        return self.active_params or self.params

    @property
    def accelerator(self) -> Accelerator:
        return get_accelerator(self.gpu)

    @property
    def flops(self) -> float:
        return 6.0 * self.compute_params * self.tokens

    @property
    def implied_mfu(self) -> float:
        return self.flops / (self.gpu_hours * 3600.0 * self.accelerator.peak_flops)


@lru_cache(maxsize=1)
def load_runs() -> tuple[PublishedRun, ...]:
    with DATA_FILE.open(newline="", encoding="utf-8") as handle:
        return tuple(
            PublishedRun(
                run=row["run"], params=float(row["params"]),
                active_params=float(row["active_params"]) if row["active_params"] else None,
                tokens=float(row["tokens"]), gpu=row["gpu"], gpu_hours=float(row["gpu_hours"]),
                hours_basis=row["hours_basis"], source_url=row["source_url"], note=row["note"],
            )
            for row in csv.DictReader(handle)
        )


def fit_default_mfu(runs) -> dict:
    """{generation: (mfu, n_runs)} plus the pooled median under the key None."""
    table: dict = {None: (statistics.median(r.implied_mfu for r in runs), len(runs))}
    by_generation: dict[str, list[float]] = {}
    for run in runs:
        by_generation.setdefault(run.accelerator.generation, []).append(run.implied_mfu)
    for generation, values in by_generation.items():
        if len(values) >= MIN_RUNS_PER_GENERATION:
            table[generation] = (statistics.median(values), len(values))
    return table


@lru_cache(maxsize=1)
def default_mfu_table() -> dict:
    return fit_default_mfu(load_runs())


def default_mfu(accelerator: Accelerator | str) -> tuple[float, str]:
    """(MFU, one-line explanation) for an accelerator when the user gives none."""
    acc = get_accelerator(accelerator) if isinstance(accelerator, str) else accelerator
    table = default_mfu_table()
    if acc.generation in table:
        value, count = table[acc.generation]
        return value, f"median end-to-end MFU of {count} published {acc.generation} runs"
    value, count = table[None]
    return value, (f"no published {acc.generation} runs in our set: median of all {count} runs "
                   "(treat as a rough guess)")


def ratio_error(estimate: float, published: float) -> float:
    ratio = estimate / published
    return max(ratio, 1.0 / ratio)


def _predict_hours(run: PublishedRun, mfu: float) -> float:
    return run.flops / (run.accelerator.peak_flops * mfu) / 3600.0


def _mfu_from_table(table: dict, run: PublishedRun) -> float:
    entry = table.get(run.accelerator.generation) or table[None]
    return entry[0]


def summarize(runs, predict: Callable[[int, PublishedRun], float]) -> dict:
    rows = []
    for index, run in enumerate(runs):
        estimate = _predict_hours(run, predict(index, run))
        rows.append({"run": run.run, "gpu": run.accelerator.name, "published_gpu_hours": run.gpu_hours,
                     "estimated_gpu_hours": estimate, "ratio": estimate / run.gpu_hours,
                     "ratio_error": ratio_error(estimate, run.gpu_hours)})
    errors = [row["ratio_error"] for row in rows]
    worst = max(rows, key=lambda row: row["ratio_error"])
    return {
        "n_runs": len(rows),
        "median_ratio_error": statistics.median(errors),
        "share_within_2x": sum(error <= 2.0 for error in errors) / len(errors),
        "share_within_1_5x": sum(error <= 1.5 for error in errors) / len(errors),
        "worst_ratio_error": worst["ratio_error"],
        "worst_run": worst["run"],
        "rows": rows,
    }


def calibration_report(runs=None) -> dict:
    """In-sample, leave-one-out and fixed-MFU-baseline figures for 'params + tokens + GPU type -> GPU-hours'."""
    runs = tuple(runs) if runs is not None else load_runs()
    table = fit_default_mfu(runs)

    def leave_one_out(index: int, run: PublishedRun) -> float:
        return _mfu_from_table(fit_default_mfu(runs[:index] + runs[index + 1:]), run)

    return {
        "method": "default MFU = median implied end-to-end MFU per accelerator generation "
                  f"(>= {MIN_RUNS_PER_GENERATION} runs, else median of all runs); FLOPs = 6·N·D",
        "default_mfu": {("pooled" if key is None else key): {"mfu": value, "n_runs": count}
                        for key, (value, count) in table.items()},
        "in_sample": summarize(runs, lambda _i, run: _mfu_from_table(table, run)),
        "leave_one_out": summarize(runs, leave_one_out),
        "fixed_baseline": dict(summarize(runs, lambda _i, _run: FIXED_BASELINE_MFU), mfu=FIXED_BASELINE_MFU),
        "goal": {"median_ratio_error_max": 1.2, "share_within_2x_min": 0.95},
    }


def format_report(report: dict) -> str:
    lines = [f"Calibration on {report['in_sample']['n_runs']} published training runs ({DATA_FILE.name})",
             f"Method: {report['method']}", "", "Default MFU by generation:"]
    for key, entry in report["default_mfu"].items():
        lines.append(f"  {key:<10} {entry['mfu']:.3f}  ({entry['n_runs']} runs)")
    lines.append("")
    lines.append(f"{'variant':<34}{'median ratio err':>17}{'within 2x':>11}{'within 1.5x':>12}  worst")
    for label, key in (("in-sample (per-generation median)", "in_sample"),
                       ("leave-one-out", "leave_one_out"),
                       (f"fixed MFU {FIXED_BASELINE_MFU} (baseline)", "fixed_baseline")):
        s = report[key]
        lines.append(f"{label:<34}{s['median_ratio_error']:>16.3f}x{s['share_within_2x']:>10.0%}"
                     f"{s['share_within_1_5x']:>12.0%}  {s['worst_ratio_error']:.2f}x ({s['worst_run']})")
    goal = report["goal"]
    lines.append("")
    lines.append(f"Goal: median ratio error <= {goal['median_ratio_error_max']}x and >= "
                 f"{goal['share_within_2x_min']:.0%} of runs within 2x.")
    lines.append("Per run (in-sample): estimated / published GPU-hours")
    for row in report["in_sample"]["rows"]:
        lines.append(f"  {row['run']:<30} {row['gpu']:<10} {row['ratio']:6.2f}")
    return "\n".join(lines)
