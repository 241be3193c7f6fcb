"""Cost calculator views: Markdown and plotly figures built from the costs/ result dataclasses.

Formatting only: every number comes from a costs/ estimator or a committed results file; the tab module
(demos/costs_tab.py) owns the form, the handlers and the URL state.
"""
from __future__ import annotations

import plotly.graph_objects as go

from costs import calibration, memory, prices, scaling, sources, training
from costs.accelerators import ACCELERATORS, get_accelerator
from costs.presets import PRESETS
from costs.units import human

PLOT_GPUS = ["A100-80GB", "H100-80GB", "H200", "B200", "TPUv5p", "RTX4090"]
CHART_MARGIN = dict(l=10, r=10, t=50, b=10)


def money(x: float) -> str:
    return f"${x:,.0f}" if x >= 100 else f"${x:,.2f}"


def default_info(default: sources.Default) -> str:
    """The `info=` line under a form field: default value, source and date."""
    return f"default {default.value:g}: {default.source} ({default.as_of})"


def layout(fig: go.Figure, title: str, height: int = 380, **kw) -> go.Figure:
    fig.update_layout(title=title, margin=CHART_MARGIN, height=height, legend=dict(orientation="h", y=-0.2),
                      autosize=True, **kw)
    return fig


def hours_with_band(hours: float, low: float | None, high: float | None, unit: str = "GPU-hours") -> str:
    """'**138,811 GPU-hours** (published runs: 105,966-209,543)' -- the band wherever a GPU-hours figure is shown."""
    band = (f" (published runs land at {low:,.0f}-{high:,.0f}, 10-90 % leave-one-out)" if low is not None
            else " (your MFU: no calibrated error band)")
    return f"**{hours:,.0f} {unit}**{band}"


def note_line(gpu_note: str | None) -> str:
    return f"\n\n*Note: {gpu_note}.*" if gpu_note else ""


# ----------------------------------------------------------------------------------------------- training
def training_markdown(r: training.TrainingEstimate) -> str:
    acc = get_accelerator(r.gpu)
    lines = [f"### {human(r.params)} params · {human(r.tokens)} tokens on {r.gpu}",
             hours_with_band(r.gpu_hours, r.gpu_hours_low, r.gpu_hours_high)]
    head = []
    if r.wall_days is not None:
        head.append(f"**{r.wall_days:,.1f} days** on {r.gpus:,} GPUs")
    if r.cost_usd is not None:
        head.append(f"**{money(r.cost_usd)}** compute")
    lines += [" · ".join(head), "", "| convention | FLOPs | GPU-hours |\n|---|---|---|",
              f"| **6·N·D** (headline; used by the calibration) | {r.flops:.3e} | {r.gpu_hours:,.0f} |"]
    if r.flops_with_attention is not None:
        lines.append(f"| (6·N + 12·L·H·Q·T)·D (with attention, PaLM App. B) | {r.flops_with_attention:.3e} "
                     f"(+{r.attention_share:.1%}) | not rescaled: the calibrated MFU already absorbs attention |")
    else:
        lines.append("| (6·N + 12·L·H·Q·T)·D | pick a model preset to see it | |")
    lines.append(f"\nGPU-hours = FLOPs / ({r.peak_tflops:g} TFLOP/s dense {r.precision.upper()} × MFU {r.mfu:.3f}) "
                 f"/ 3600. MFU: {r.mfu_basis}. Peak from [{acc.name} datasheet]({acc.source}).")
    lines.append(_training_costs(r))
    if r.energy is not None:
        e = r.energy
        lines.append(f"\nEnergy ≈ {e.energy_kwh:,.0f} kWh = GPU-hours × {e.power_w:g} W × PUE {e.pue:g}; "
                     f"CO₂ ≈ {e.co2_tonnes:,.1f} t at {e.grid_kg_co2_per_kwh:g} kg/kWh (defaults: PUE "
                     f"{training.DEFAULT_PUE}, {training.DEFAULT_GRID_KG_PER_KWH} kg/kWh; set yours below).")
    else:
        lines.append(f"\n{r.gpu} has no published power figure: enter a wattage for energy and CO₂.")
    return "\n".join(lines) + note_line(r.gpu_note)


def _training_costs(r: training.TrainingEstimate) -> str:
    if r.cost_usd is None:
        return f"\nNo price preset for {r.gpu}: enter a $/GPU-hour to get a cost."
    s = r.storage
    return "\n".join([
        "", "| cost line | amount | how |\n|---|---|---|",
        f"| compute | {money(r.compute_cost_usd)} | GPU-hours × ${r.price_usd_per_gpu_hour:g}/GPU-h "
        f"({r.price_source}) |",
        f"| storage | {money(s.storage_cost_usd)} | ({s.dataset_gb:,.0f} GB dataset + {s.checkpoints_kept} × "
        f"{s.checkpoint_gb:,.0f} GB full checkpoints) × {s.storage_months:.1f} months × "
        f"${s.storage_usd_per_gb_month:g}/GB-month |",
        f"| egress | {money(s.egress_cost_usd)} | {s.egress_gb:,.0f} GB out × ${s.egress_usd_per_gb:g}/GB |",
        f"| **total** | **{money(r.total_cost_usd)}** | |"])


def breakdown_figure(r: training.TrainingEstimate) -> go.Figure:
    fig = go.Figure()
    if r.cost_usd is not None:
        items = [("compute", r.compute_cost_usd, "GPU-hours × $/GPU-h"),
                 ("storage", r.storage.storage_cost_usd, "GB × $/GB-month × months"),
                 ("egress", r.storage.egress_cost_usd, "GB out × $/GB")]
        fig.add_bar(x=[i[0] for i in items], y=[i[1] for i in items], customdata=[i[2] for i in items],
                    hovertemplate="%{x}: $%{y:,.0f}<br>%{customdata}<extra></extra>", marker_color="#4c78a8")
        fig.update_yaxes(type="log", title="USD (log)")
        return layout(fig, f"Cost breakdown: {money(r.total_cost_usd)} total")
    fig.add_bar(x=["GPU-hours"], y=[r.gpu_hours], hovertemplate="6ND / (peak × MFU) / 3600: %{y:,.0f}<extra></extra>")
    return layout(fig, "GPU-hours (enter a price for a cost breakdown)")


def cost_vs_size_figure(r: training.TrainingEstimate) -> go.Figure:
    series = training.cost_vs_size(PLOT_GPUS, training.log_space(1e8, 1e12, 13))
    low, high = calibration.error_band()
    band = f"published runs: {low:.2f}-{high:.2f}× this (10-90 %)"
    fig = go.Figure()
    for gpu, points in series.items():
        if not points:
            continue
        fig.add_scatter(
            x=[p["params"] for p in points], y=[p["cost_usd"] for p in points], mode="lines", name=gpu,
            customdata=[[p["tokens"], p["gpu_hours"], p["mfu"]] for p in points],
            hovertemplate=(f"{gpu}<br>N=%{{x:.3s}}, D=20N=%{{customdata[0]:.3s}}<br>"
                           "cost = 6ND/(peak·MFU)/3600 × $/h = $%{y:,.0f}<br>"
                           f"GPU-hours %{{customdata[1]:,.0f}} ({band}), MFU %{{customdata[2]:.2f}}"
                           "<extra></extra>"))
    if r.cost_usd is not None:
        fig.add_scatter(x=[r.params], y=[r.cost_usd], mode="markers", name="your run",
                        marker=dict(symbol="star", size=14, color="black"),
                        hovertemplate="your run: $%{y:,.0f}<extra></extra>")
    fig.update_xaxes(type="log", title="parameters N")
    fig.update_yaxes(type="log", title="compute cost, USD")
    return layout(fig, "Compute cost vs model size (D = 20·N, default MFU and on-demand price)")


# -------------------------------------------------------------------------------------------- calibration
def calibration_figure(report: dict | None = None) -> go.Figure:
    report = report or calibration.committed_report()
    runs = {run.run: run for run in calibration.load_runs()}
    rows = report["leave_one_out"]["rows"]
    fig = go.Figure()
    low = min(min(r["published_gpu_hours"], r["estimated_gpu_hours"]) for r in rows) / 2
    high = max(max(r["published_gpu_hours"], r["estimated_gpu_hours"]) for r in rows) * 2
    for factor, label, dash in ((1, "estimate = published", "solid"), (2, "2× band", "dash"),
                                (0.5, None, "dash"), (1.15, "1.15× band", "dot"), (1 / 1.15, None, "dot")):
        fig.add_scatter(x=[low, high], y=[low * factor, high * factor], mode="lines", name=label,
                        showlegend=label is not None, line=dict(color="gray", dash=dash, width=1), hoverinfo="skip")
    by_gen: dict[str, list] = {}
    for row in rows:
        by_gen.setdefault(runs[row["run"]].accelerator.generation, []).append(row)
    for gen, items in by_gen.items():
        fig.add_scatter(
            x=[i["published_gpu_hours"] for i in items], y=[i["estimated_gpu_hours"] for i in items],
            mode="markers", name=gen, marker=dict(size=9), text=[i["run"] for i in items],
            customdata=[[i["ratio"], runs[i["run"]].source_url] for i in items],
            hovertemplate=("%{text}<br>published %{x:,.0f} GPU-h<br>leave-one-out estimate %{y:,.0f} GPU-h<br>"
                           "ratio %{customdata[0]:.2f}<br>%{customdata[1]}<extra></extra>"))
    fig.update_xaxes(type="log", title="published GPU-hours")
    fig.update_yaxes(type="log", title="estimate from a fit without that run")
    return layout(fig, "Calibration: leave-one-out estimate vs published training runs", height=460)


def calibration_markdown(report: dict | None = None) -> str:
    report = report or calibration.committed_report()
    coef = ", ".join(f"{k} {v:+.3f}" for k, v in report["model"]["coefficients"].items())
    band = report["error_band"]
    lines = [f"**Method.** {report['method']}. Coefficients (ln MFU): {coef}. A run's *implied* MFU = 6·N·D / "
             "(published GPU-hours × 3600 × peak of its precision); published GPU-hours are wall-clock device "
             "hours, so this end-to-end MFU includes restarts and downtime. Figures from "
             "`costs/data/calibration_report.json` (`python -m costs calibrate --write`).",
             "", "| variant | median ratio error | within 2× | within 1.5× | worst |", "|---|---|---|---|---|"]
    for label, key in (("in-sample", "in_sample"), ("**leave-one-out**", "leave_one_out"),
                       (f"fixed MFU {report['fixed_baseline']['mfu']} (no calibration)", "fixed_baseline")):
        s = report[key]
        lines.append(f"| {label} | {s['median_ratio_error']:.3f}× | {s['share_within_2x']:.0%} | "
                     f"{s['share_within_1_5x']:.0%} | {s['worst_ratio_error']:.2f}× ({s['worst_run']}) |")
    lines.append(f"\nError band shown next to every GPU-hours figure: published runs land at {band['low']:.2f}-"
                 f"{band['high']:.2f}× our estimate ({band['basis']}). Goal: median ≤ "
                 f"{report['goal']['median_ratio_error_max']}× and ≥ {report['goal']['share_within_2x_min']:.0%} "
                 "within 2× (leave-one-out). Ratio error = max(est/pub, pub/est).")
    lines += ["\n**Also tried** (leave-one-out; the ridge λ was picked on this same table, which flatters the "
              "headline a little):", "| features | λ | median | within 2× | worst |", "|---|---|---|---|---|"]
    lines += [f"| {a['features']} | {a['ridge_lambda']:g} | {a['median_ratio_error']:.3f}× | "
              f"{a['share_within_2x']:.0%} | {a['worst_ratio_error']:.2f}× |"
              for a in report["alternatives_leave_one_out"]]
    lines.append("\n| run | params (active) | tokens | year | hardware | precision | published GPU-h | "
                 "LOO est./pub. | source |\n|---|---|---|---|---|---|---|---|---|")
    ratios = {r["run"]: r["ratio"] for r in report["leave_one_out"]["rows"]}
    for run in calibration.load_runs():
        active = f" ({human(run.active_params)})" if run.active_params else ""
        lines.append(f"| {run.run} | {human(run.params)}{active} | {human(run.tokens)} | {run.year} | {run.gpu} | "
                     f"{run.precision} | {run.gpu_hours:,.0f} ({run.hours_basis}) | {ratios[run.run]:.2f} | "
                     f"[link]({run.source_url}) |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ memory
MEMORY_FORMULAS = {"weights": "2Ψ / TP (/DP at ZeRO-3)", "gradients": "2Ψ / TP (/DP at ZeRO≥2)",
                   "optimizer": "KΨ / TP (/DP at ZeRO≥1)", "activations": "L · per-layer activations (Korthikanti)"}


def memory_view(r: memory.MemoryPlan, preset_name: str, params: float, micro_batch, seq_len):
    fig = go.Figure()
    for name, gb in r.per_gpu_gb.items():
        fig.add_bar(x=["per GPU"], y=[gb], name=name, customdata=[MEMORY_FORMULAS[name]],
                    hovertemplate=f"{name}: %{{y:.1f}} GB<br>%{{customdata}}<extra></extra>")
    fig.add_hline(y=r.gpu_memory_gb, line_dash="dash", annotation_text=f"{r.gpu} {r.gpu_memory_gb:g} GB")
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title="GB")
    layout(fig, f"{r.total_per_gpu_gb:.1f} GB per GPU")
    verdict = "fits" if r.fits else "does **not** fit"
    md = (f"**{preset_name}** ({human(params)} params, {memory.OPTIMIZER_LABELS[r.optimizer]}), ZeRO-{r.zero_stage}, "
          f"TP {r.tp}, DP {r.dp}, micro-batch {micro_batch}, sequence {seq_len}, recompute: {r.recompute}, "
          f"sequence parallelism {'on' if r.sequence_parallel else 'off'}, FlashAttention "
          f"{'on' if r.flash_attention else 'off'}.\n\n"
          + " · ".join(f"{k} **{v:.1f} GB**" for k, v in r.per_gpu_gb.items())
          + f" → **{r.total_per_gpu_gb:.1f} GB/GPU**: {verdict} in {r.usable_gb:.0f} GB usable "
            f"({memory.USABLE_FRACTION:.0%} of {r.gpu_memory_gb:g} GB; {memory.USABLE_SOURCE}).\n\n"
          + (f"Minimum GPUs at this TP: **{r.min_gpus}** ({r.min_gpus_reason})." if r.min_gpus
             else f"No data-parallel degree is enough: {r.min_gpus_reason}.")
          + f"\n\nUnsharded model states: {r.model_states_unsharded_gb:.1f} GB = {r.bytes_per_param_unsharded:.0f} "
            "bytes/param (ZeRO paper: 16 for mixed-precision Adam). Sizes in GB = 10⁹ bytes.")
    return md, fig


# ----------------------------------------------------------------------------------------------- scaling
def scaling_view(c: float):
    rule, fit = scaling.chinchilla_rule(c), scaling.chinchilla_fit_optimum(c)
    md = [f"**Budget C = {c:.3e} FLOPs** (C = 6·N·D).",
          "", "| recipe | N | D | tokens/param | loss L(N,D) |", "|---|---|---|---|---|",
          f"| D = 20·N (Chinchilla rule of thumb) | {human(rule['params'])} | {human(rule['tokens'])} | 20 | "
          f"{rule['loss']:.3f} |",
          f"| minimum of the loss fit | {human(fit['params'])} | {human(fit['tokens'])} | "
          f"{fit['tokens'] / fit['params']:.0f} | {fit['loss']:.3f} |",
          "", "L(N,D) = 1.69 + 406.4/N^0.34 + 410.7/D^0.28 (Hoffmann et al. 2022, Approach 3). The two recipes "
          "disagree because Approaches 1-2 and 3 of the paper do; both are estimates for its data mix.",
          "", "**Over-training**: smaller models trained longer to the *same loss* as the loss-fit optimum "
          "(more training compute, cheaper inference; break-even = extra training FLOPs / inference FLOPs saved "
          "per token).",
          "", "| model size | N | D | tokens/param | training compute | inference cost/token | "
          "break-even after |", "|---|---|---|---|---|---|---|"]
    for row in scaling.overtraining_tradeoff(c):
        if not row["reachable"]:
            md.append(f"| {row['shrink']:.0%} | {human(row['params'])} | unreachable | | | | |")
            continue
        be = row["break_even_inference_tokens"]
        md.append(f"| {row['shrink']:.0%} | {human(row['params'])} | {human(row['tokens'])} | "
                  f"{row['tokens_per_param']:.0f} | {row['train_compute_ratio']:.2f}× | "
                  f"{row['inference_cost_ratio']:.2f}× | {human(be) + ' tokens served' if be else '—'} |")
    fig = go.Figure()
    sizes = training.log_space(rule["params"] / 10, rule["params"] * 5, 40)
    fig.add_scatter(x=sizes, y=[scaling.loss(n, c / (6 * n)) for n in sizes], mode="lines", name="isoFLOP curve",
                    hovertemplate="N=%{x:.3s}, D=C/(6N)<br>L=%{y:.3f}<extra></extra>")
    fig.add_scatter(x=[rule["params"]], y=[rule["loss"]], mode="markers", name="D = 20N",
                    marker=dict(size=12, symbol="diamond"))
    fig.add_scatter(x=[fit["params"]], y=[fit["loss"]], mode="markers", name="loss-fit minimum",
                    marker=dict(size=12, symbol="star"))
    fig.update_xaxes(type="log", title="parameters N")
    fig.update_yaxes(title="predicted loss")
    return "\n".join(md), layout(fig, "Loss at fixed compute (L = 1.69 + 406.4/N^0.34 + 410.7/D^0.28)")


# ---------------------------------------------------------------------------------------------- fine-tune
def finetune_view(r):
    """Markdown + stacked memory bar for a costs.finetune.FinetuneEstimate."""
    verdict = "fits" if r.fits else "does **not** fit"
    adapter = (f", rank {r.rank} on {r.targets}" if r.rank else "") + (
        f", paged optimizer {'on' if r.paged_optimizer else 'off'}" if r.paged_optimizer is not None else "")
    md = [f"### {r.model}: {r.method.upper()} {r.objective.upper()}{adapter} on {r.gpus}× {r.gpu}",
          f"Trainable parameters: **{human(r.trainable_params)}** ({r.trainable_share:.3%} of {human(r.params)}).",
          "", " · ".join(f"{k} **{v:.1f} GB**" for k, v in r.per_gpu_gb.items())
          + f" → **{r.total_per_gpu_gb:.1f} GB per GPU**: {verdict} in {r.usable_gb:.0f} GB usable "
            f"({memory.USABLE_FRACTION:.0%}; {memory.USABLE_SOURCE}).",
          f"Minimum GPUs: **{r.min_gpus if r.min_gpus else 'none is enough'}** ({r.min_gpus_reason}).", "",
          hours_with_band(r.gpu_hours, r.gpu_hours_low, r.gpu_hours_high)
          + f" · {r.wall_hours:,.1f} h wall clock on {r.gpus} GPUs",
          f"= {r.flops_per_token / 1e9:,.1f} GFLOPs/token × {human(r.tokens)} tokens / (peak × MFU {r.mfu:.3f}). "
          f"MFU: {r.mfu_basis}."]
    if r.cost_usd is not None:
        md.append(f"\n**{money(r.cost_usd)}** at ${r.price_usd_per_gpu_hour:g}/GPU-h ({r.price_source}).")
    else:
        md.append(f"\nNo price preset for {r.gpu}: enter a $/GPU-hour for a cost.")
    fig = go.Figure()
    for name, gb in r.per_gpu_gb.items():
        fig.add_bar(x=["per GPU"], y=[gb], name=name, hovertemplate=f"{name}: %{{y:.2f}} GB<extra></extra>")
    fig.add_hline(y=r.usable_gb, line_dash="dash", annotation_text=f"usable {r.usable_gb:.0f} GB")
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title="GB")
    return "\n".join(md) + note_line(r.gpu_note), layout(fig, f"{r.total_per_gpu_gb:.1f} GB per GPU")


# ------------------------------------------------------------------------------------------------ sources
def sources_markdown() -> str:
    lines = ["#### Accelerators (dense peaks; the table in `costs/accelerators.py` is the single source of truth)",
             "| name | BF16 dense TFLOPS | FP8 dense | TF32 dense | memory | bandwidth | power | released | source |",
             "|---|---|---|---|---|---|---|---|---|"]
    for a in ACCELERATORS.values():
        lines.append(f"| {a.name} | {a.bf16_dense_tflops:g} | {a.fp8_dense_tflops or '—'} | "
                     f"{a.tf32_dense_tflops or '—'} | {a.memory_gb:g} GB | {a.bandwidth_tbps:g} TB/s | "
                     f"{str(int(a.tdp_w)) + ' W' if a.tdp_w else 'n/p'} | {a.date} | [datasheet]({a.source}) |")
    lines.append("\nMemory is in GB = 10⁹ bytes; vendor capacities are read at face value (A100/H100 '80 GB' is "
                 f"80 GiB, ~7 % more: extra headroom), and {memory.USABLE_FRACTION:.0%} of it is usable for training "
                 f"and serving ({memory.USABLE_SOURCE}).")
    lines.append("\nNotes: " + " ".join(f"**{a.name}**: {a.notes}" for a in ACCELERATORS.values() if a.notes))
    lines += ["\n#### Price presets (indicative snapshots, not quotes: override them)",
              "| GPU | kind | $/GPU-hour | provider | as of | source |", "|---|---|---|---|---|---|"]
    for p in prices.GPU_PRICES:
        lines.append(f"| {p.gpu} | {p.kind} | {p.usd_per_gpu_hour:g} | {p.provider} | {p.as_of} | "
                     f"[link]({p.source}){' — ' + p.note if p.note else ''} |")
    lines.append(f"\nStorage: ${prices.STORAGE_USD_PER_GB_MONTH}/GB-month — {prices.STORAGE_SOURCE}. "
                 f"Egress: ${prices.EGRESS_USD_PER_GB}/GB — {prices.EGRESS_SOURCE}. MI300X, L40S and RTX-A6000 "
                 "have no price preset.")
    lines += ["\n#### Model presets", "| preset | params | active | tokens | L | d | heads | KV heads | MLP | vocab | "
              "context | source |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in PRESETS.values():
        lines.append(f"| {p.name} | {human(p.params)} | {human(p.active_params) if p.active_params else '—'} | "
                     f"{human(p.tokens)} | {p.n_layers} | {p.hidden} | {p.n_heads} | {p.n_kv_heads} | "
                     f"{p.intermediate or 'MoE'} | {p.vocab} | {p.context} | [link]({p.source}) {p.note} |")
    lines += ["\n#### Defaults of the fine-tuning, fleet and break-even calculators", "| default | value | source | "
              "as of |", "|---|---|---|---|"]
    for name in ("DECODE_EFFICIENCY", "TTFT_TARGET_S", "TPOT_TARGET_S", "PROMPT_TOKENS", "OUTPUT_TOKENS", "QPS",
                 "UTILISATION", "MONTHLY_INPUT_TOKENS", "MONTHLY_OUTPUT_TOKENS", "LORA_RANK", "QLORA_RANK",
                 "FINETUNE_SEQ_LEN", "FINETUNE_TOKENS"):
        d = getattr(sources, name)
        link = f" [link]({d.url})" if d.url else ""
        lines.append(f"| {name.lower()} | {d.value:g} | {d.source}{link} | {d.as_of} |")
    lines.append("\nMethods and anchors: EleutherAI *Transformer Math 101*; Epoch AI's compute-estimation "
                 "method; Hugging Face *model memory usage*; calflops; gpu_poor. Formulas: Kaplan et al. 2020 (6ND), "
                 "PaLM App. B (attention FLOPs), ZeRO (model states), Korthikanti et al. 2022 (activations), "
                 "Hoffmann et al. 2022 (scaling law), Hu et al. 2021 (LoRA), Dettmers et al. 2023 (QLoRA).")
    return "\n".join(lines)
