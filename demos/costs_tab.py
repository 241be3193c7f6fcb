"""Cost calculator tab: training cost, memory planner, scaling advice, serving, sources and calibration.

All arithmetic lives in costs/; this module builds the form, the plotly figures and the URL state.
"""
from __future__ import annotations

import gradio as gr

from demos.common import user_error
import plotly.graph_objects as go

from costs import calibration, memory, prices, scaling, serving, training, urlstate
from costs.accelerators import ACCELERATORS, get_accelerator
from costs.presets import PRESETS, get_preset
from costs.units import human, parse_quantity

CUSTOM = "custom"
PLOT_GPUS = ["A100-80GB", "H100-80GB", "H200", "B200", "TPUv5p", "RTX4090"]
CALIBRATION_REPORT = calibration.calibration_report()
CHART_MARGIN = dict(l=10, r=10, t=50, b=10)


def _money(x: float) -> str:
    return f"${x:,.0f}" if x >= 100 else f"${x:,.2f}"


def _layout(fig: go.Figure, title: str, height: int = 380, **kw) -> go.Figure:
    fig.update_layout(title=title, margin=CHART_MARGIN, height=height, legend=dict(orientation="h", y=-0.2),
                      autosize=True, **kw)
    return fig


# ----------------------------------------------------------------------------------------------- training
def estimate_training(params, tokens, gpu, gpus=None, mfu=None, price=None, active_params=None,
                      preset=CUSTOM, price_kind="on-demand", pue=training.DEFAULT_PUE,
                      grid_kg_per_kwh=training.DEFAULT_GRID_KG_PER_KWH, storage_usd_per_gb_month=None,
                      egress_gb=None):
    """Estimate the compute, time, money, energy and CO2 of one training run.

    Args:
        params: total parameters, e.g. "7e9" or "7B".
        tokens: training tokens, e.g. "2e12" or "2T".
        gpu: accelerator name (H100-80GB, A100-80GB, TPUv4, ...; common spellings accepted).
        gpus: number of accelerators; adds wall-clock days. Empty = not computed.
        mfu: model FLOPs utilisation 0-1. Empty = calibrated default for the GPU generation.
        price: USD per GPU-hour. Empty = the GPU's price preset (source shown in the result).
        active_params: active parameters per token for MoE models. Empty = dense.
        preset: model preset key (adds the attention-FLOPs convention) or "custom".
        price_kind: "on-demand" or "spot" preset when no price is given.
        pue: data-centre power usage effectiveness for the energy estimate.
        grid_kg_per_kwh: grid carbon intensity, kg CO2e per kWh.
        storage_usd_per_gb_month: storage price; empty = AWS S3 Standard list price.
        egress_gb: data moved out; empty = the final bf16 weights once.

    Returns:
        Markdown summary, JSON summary (same keys as `python -m costs train --json`), cost-breakdown figure and
        cost-vs-model-size figure.
    """
    try:
        arch = None
        if preset and preset != CUSTOM:
            p = get_preset(preset)
            arch = {"n_layers": p.n_layers, "n_heads": p.n_heads, "head_dim": p.head_dim, "seq_len": p.context}
        result = training.estimate_training(
            params, tokens, gpu, gpus=gpus or None, mfu=mfu or None, price=price if price not in (None, "") else None,
            active_params=active_params or None, arch=arch, price_kind=price_kind or "on-demand", pue=pue,
            grid_kg_per_kwh=grid_kg_per_kwh, storage_usd_per_gb_month=storage_usd_per_gb_month or None,
            egress_gb=egress_gb if egress_gb not in (None, "") else None)
    except ValueError as exc:
        raise user_error(exc) from None
    return _training_markdown(result), result, _breakdown_figure(result), _cost_vs_size_figure(result)


def _training_markdown(r: dict) -> str:
    acc = get_accelerator(r["gpu"])
    lines = [f"### {human(r['params'])} params · {human(r['tokens'])} tokens on {r['gpu']}"]
    head = [f"**{r['gpu_hours']:,.0f} GPU-hours**"]
    if "wall_days" in r:
        head.append(f"**{r['wall_days']:,.1f} days** on {r['gpus']:,} GPUs")
    if "cost_usd" in r:
        head.append(f"**{_money(r['cost_usd'])}** compute")
    lines.append(" · ".join(head))
    lines.append("")
    lines.append("| convention | FLOPs | GPU-hours |\n|---|---|---|")
    lines.append(f"| **6·N·D** (headline; used by the calibration) | {r['flops']:.3e} | {r['gpu_hours']:,.0f} |")
    if "flops_with_attention" in r:
        attn_hours = r["gpu_hours"] * r["flops_with_attention"] / r["flops"]
        lines.append(f"| (6·N + 12·L·H·Q·T)·D (with attention, PaLM App. B) | {r['flops_with_attention']:.3e} | "
                     f"{attn_hours:,.0f} (+{r['attention_share']:.1%} of FLOPs) |")
    else:
        lines.append("| (6·N + 12·L·H·Q·T)·D | pick a model preset to see it | |")
    lines.append("")
    lines.append(f"GPU-hours = FLOPs / ({acc.bf16_dense_tflops:g} TFLOP/s dense BF16 × MFU {r['mfu']:.3f}) / 3600. "
                 f"MFU: {r['mfu_basis']}. Peak from [{acc.name} datasheet]({acc.source}).")
    if "cost_usd" in r:
        lines.append("")
        lines.append("| cost line | amount | how |\n|---|---|---|")
        lines.append(f"| compute | {_money(r['compute_cost_usd'])} | GPU-hours × "
                     f"${r['price_usd_per_gpu_hour']:g}/GPU-h ({r['price_source']}) |")
        lines.append(f"| storage | {_money(r['storage_cost_usd'])} | ({r['dataset_gb']:,.0f} GB dataset + "
                     f"{r['checkpoints_kept']} × {r['checkpoint_gb']:,.0f} GB full checkpoints) × "
                     f"{r['storage_months']:.1f} months × ${r['storage_usd_per_gb_month']:g}/GB-month |")
        lines.append(f"| egress | {_money(r['egress_cost_usd'])} | {r['egress_gb']:,.0f} GB out × "
                     f"${r['egress_usd_per_gb']:g}/GB |")
        lines.append(f"| **total** | **{_money(r['total_cost_usd'])}** | |")
    else:
        lines.append(f"\nNo price preset for {r['gpu']}: enter a $/GPU-hour to get a cost.")
    if "energy_kwh" in r:
        lines.append(f"\nEnergy ≈ {r['energy_kwh']:,.0f} kWh = GPU-hours × {r['power_w']:g} W × PUE {r['pue']:g}; "
                     f"CO₂ ≈ {r['co2_tonnes']:,.1f} t at {r['grid_kg_co2_per_kwh']:g} kg/kWh (defaults: PUE "
                     f"{training.DEFAULT_PUE}, {training.DEFAULT_GRID_KG_PER_KWH} kg/kWh; set yours below).")
    else:
        lines.append(f"\n{r['gpu']} has no published power figure: enter a wattage for energy and CO₂.")
    return "\n".join(lines)


def _breakdown_figure(r: dict) -> go.Figure:
    fig = go.Figure()
    if "cost_usd" in r:
        items = [("compute", r["compute_cost_usd"], "GPU-hours × $/GPU-h"),
                 ("storage", r["storage_cost_usd"], "GB × $/GB-month × months"),
                 ("egress", r["egress_cost_usd"], "GB out × $/GB")]
        fig.add_bar(x=[i[0] for i in items], y=[i[1] for i in items], customdata=[i[2] for i in items],
                    hovertemplate="%{x}: $%{y:,.0f}<br>%{customdata}<extra></extra>", marker_color="#4c78a8")
        fig.update_yaxes(type="log", title="USD (log)")
        return _layout(fig, f"Cost breakdown: {_money(r['total_cost_usd'])} total")
    fig.add_bar(x=["GPU-hours"], y=[r["gpu_hours"]],
                hovertemplate="6ND / (peak × MFU) / 3600: %{y:,.0f}<extra></extra>")
    return _layout(fig, "GPU-hours (enter a price for a cost breakdown)")


def _cost_vs_size_figure(r: dict) -> go.Figure:
    sizes = training.log_space(1e8, 1e12, 13)
    series = training.cost_vs_size(PLOT_GPUS, sizes)
    fig = go.Figure()
    for gpu, points in series.items():
        if not points:
            continue
        fig.add_scatter(
            x=[p["params"] for p in points], y=[p["cost_usd"] for p in points], mode="lines", name=gpu,
            customdata=[[p["tokens"], p["gpu_hours"], p["mfu"]] for p in points],
            hovertemplate=(f"{gpu}<br>N=%{{x:.3s}}, D=20N=%{{customdata[0]:.3s}}<br>"
                           "cost = 6ND/(peak·MFU)/3600 × $/h = $%{y:,.0f}<br>"
                           "GPU-hours %{customdata[1]:,.0f}, MFU %{customdata[2]:.2f}<extra></extra>"))
    if "cost_usd" in r:
        fig.add_scatter(x=[r["params"]], y=[r["cost_usd"]], mode="markers", name="your run",
                        marker=dict(symbol="star", size=14, color="black"),
                        hovertemplate="your run: $%{y:,.0f}<extra></extra>")
    fig.update_xaxes(type="log", title="parameters N")
    fig.update_yaxes(type="log", title="compute cost, USD")
    return _layout(fig, "Compute cost vs model size (D = 20·N, default MFU and on-demand price)")


# ------------------------------------------------------------------------------------------- calibration
def calibration_figure(report: dict = CALIBRATION_REPORT) -> go.Figure:
    runs = {run.run: run for run in calibration.load_runs()}
    rows = report["in_sample"]["rows"]
    fig = go.Figure()
    low = min(min(r["published_gpu_hours"], r["estimated_gpu_hours"]) for r in rows) / 2
    high = max(max(r["published_gpu_hours"], r["estimated_gpu_hours"]) for r in rows) * 2
    for factor, label, dash in ((1, "estimate = published", "solid"), (2, "2× band", "dash"),
                                (0.5, None, "dash"), (1.2, "1.2× band", "dot"), (1 / 1.2, None, "dot")):
        fig.add_scatter(x=[low, high], y=[low * factor, high * factor], mode="lines", name=label,
                        showlegend=label is not None, line=dict(color="gray", dash=dash, width=1), hoverinfo="skip")
    by_gen: dict[str, list] = {}
    for row in rows:
        by_gen.setdefault(runs[row["run"]].accelerator.generation, []).append(row)
    for gen, items in by_gen.items():
        fig.add_scatter(
            x=[i["published_gpu_hours"] for i in items], y=[i["estimated_gpu_hours"] for i in items],
            mode="markers", name=gen, marker=dict(size=9),
            text=[i["run"] for i in items],
            customdata=[[i["ratio"], runs[i["run"]].source_url] for i in items],
            hovertemplate=("%{text}<br>published %{x:,.0f} GPU-h<br>estimate %{y:,.0f} GPU-h "
                           "= 6ND/(peak × default MFU)/3600<br>ratio %{customdata[0]:.2f}<br>%{customdata[1]}"
                           "<extra></extra>"))
    fig.update_xaxes(type="log", title="published GPU-hours")
    fig.update_yaxes(type="log", title="our estimate (params, tokens, GPU type only)")
    return _layout(fig, "Calibration: estimate vs published training runs", height=460)


def calibration_markdown(report: dict = CALIBRATION_REPORT) -> str:
    lines = [f"**Method.** {report['method']}. A run's *implied* MFU = 6·N·D / (published GPU-hours × 3600 × "
             "peak); the published GPU-hours are wall-clock device hours, so this end-to-end MFU includes restarts "
             "and downtime. Defaults: " + ", ".join(f"{k} {v['mfu']:.3f} ({v['n_runs']} runs)"
                                                   for k, v in report["default_mfu"].items()) + ".",
             "", "| variant | median ratio error | within 2× | within 1.5× | worst |", "|---|---|---|---|---|"]
    for label, key in (("in-sample", "in_sample"), ("leave-one-out", "leave_one_out"),
                       (f"fixed MFU {calibration.FIXED_BASELINE_MFU} (no calibration)", "fixed_baseline")):
        s = report[key]
        lines.append(f"| {label} | {s['median_ratio_error']:.3f}× | {s['share_within_2x']:.0%} | "
                     f"{s['share_within_1_5x']:.0%} | {s['worst_ratio_error']:.2f}× ({s['worst_run']}) |")
    lines.append(f"\nGoal: median ≤ {report['goal']['median_ratio_error_max']}× and ≥ "
                 f"{report['goal']['share_within_2x_min']:.0%} within 2×. Ratio error = max(est/pub, pub/est). "
                 "Generations without ≥ 3 published runs (Volta, TPU, Blackwell, MI300X, Ada, Turing) use the "
                 "median of all runs: expect larger errors there.")
    lines.append("\n| run | params (active) | tokens | hardware | published GPU-h | est./pub. | source |\n"
                 "|---|---|---|---|---|---|---|")
    ratios = {r["run"]: r["ratio"] for r in report["in_sample"]["rows"]}
    for run in calibration.load_runs():
        active = f" ({human(run.active_params)})" if run.active_params else ""
        lines.append(f"| {run.run} | {human(run.params)}{active} | {human(run.tokens)} | {run.gpu} | "
                     f"{run.gpu_hours:,.0f} ({run.hours_basis}) | {ratios[run.run]:.2f} | [link]({run.source_url}) |")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------- memory
def plan_memory(preset, params, optimizer, zero_stage, tp, dp, micro_batch, seq_len, recompute, gpu):
    """Per-GPU training memory (weights, gradients, optimizer, activations) and the minimum GPU count."""
    try:
        p = get_preset(preset)
        n = parse_quantity(params, "params") if params not in (None, "") else p.params
        r = memory.plan_training_memory(n, p.n_layers, p.hidden, p.n_heads, int(seq_len or p.context),
                                        int(micro_batch or 1), optimizer, int(zero_stage), int(dp or 1),
                                        int(tp or 1), recompute, gpu)
    except (ValueError, TypeError) as exc:
        raise user_error(exc) from None
    parts = r["per_gpu_gb"]
    fig = go.Figure()
    formulas = {"weights": "2Ψ / TP (/DP at ZeRO-3)", "gradients": "2Ψ / TP (/DP at ZeRO≥2)",
                "optimizer": "KΨ / TP (/DP at ZeRO≥1)", "activations": "L · s·b·h·(34 + 5as/h)/TP (Korthikanti)"}
    for name, gb in parts.items():
        fig.add_bar(x=["per GPU"], y=[gb], name=name, customdata=[formulas[name]],
                    hovertemplate=f"{name}: %{{y:.1f}} GB<br>%{{customdata}}<extra></extra>")
    fig.add_hline(y=r["gpu_memory_gb"], line_dash="dash", annotation_text=f"{r['gpu']} {r['gpu_memory_gb']:g} GB")
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title="GB")
    _layout(fig, f"{r['total_per_gpu_gb']:.1f} GB per GPU")
    verdict = "fits" if r["fits"] else "does **not** fit"
    md = (f"**{p.name}** ({human(n)} params, {OPT_LABELS[optimizer]}), ZeRO-{zero_stage}, TP {tp}, DP {dp}, "
          f"micro-batch {micro_batch}, sequence {seq_len or p.context}, recompute: {recompute}.\n\n"
          + " · ".join(f"{k} **{v:.1f} GB**" for k, v in parts.items())
          + f" → **{r['total_per_gpu_gb']:.1f} GB/GPU**: {verdict} in {r['usable_gb']:.0f} GB usable "
            f"(90% of {r['gpu_memory_gb']:g} GB).\n\n"
          + (f"Minimum GPUs at this TP: **{r['min_gpus']}** ({r['min_gpus_reason']})." if r["min_gpus"]
             else f"No data-parallel degree is enough: {r['min_gpus_reason']}.")
          + f"\n\nUnsharded model states: {r['model_states_unsharded_gb']:.1f} GB = "
            f"{r['bytes_per_param_unsharded']:.0f} bytes/param (ZeRO paper: 16 for mixed-precision Adam).")
    return md, fig


OPT_LABELS = memory.OPTIMIZER_LABELS


# ------------------------------------------------------------------------------------------- scaling
def scaling_advice(compute):
    """Chinchilla-optimal N and D for a compute budget, the loss estimate and the over-training trade-off."""
    try:
        c = parse_quantity(compute, "compute")
        rule, fit = scaling.chinchilla_rule(c), scaling.chinchilla_fit_optimum(c)
        rows = scaling.overtraining_tradeoff(c)
    except ValueError as exc:
        raise user_error(exc) from None
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
    for row in rows:
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
    return "\n".join(md), _layout(fig, "Loss at fixed compute (L = 1.69 + 406.4/N^0.34 + 410.7/D^0.28)")


# ------------------------------------------------------------------------------------------- serving
def serving_estimate(preset, gpu, gpus, batch, context, weight_bytes, price, prompt_tokens):
    """Decode tokens/s (bandwidth and compute bounds) and $ per 1M output tokens for a model on a GPU."""
    try:
        p = get_preset(preset)
        kw = dict(n_layers=p.n_layers, hidden=p.hidden, n_kv_heads=p.n_kv_heads, head_dim=p.head_dim,
                  context=int(context), gpus=int(gpus), active_params=p.active_params,
                  weight_bytes=float(weight_bytes), price=price if price not in (None, "") else None,
                  kv_elems_per_token_per_layer=p.kv_elems_per_token_per_layer)
        r = serving.estimate_serving(p.params, gpu, batch=int(batch), prompt_tokens=prompt_tokens or None, **kw)
        batches = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
        sweep = [serving.estimate_serving(p.params, gpu, batch=b, **kw) for b in batches]
    except (ValueError, TypeError) as exc:
        raise user_error(exc) from None
    md = [f"**{p.name}** on {r['gpus']}× {r['gpu']}, batch {r['batch']}, context {r['context']}, "
          f"{float(weight_bytes):g} bytes/weight:",
          f"**{r['tokens_per_s']:,.0f} output tokens/s** ({r['tokens_per_s_per_sequence']:,.1f} per sequence), "
          f"{r['bound']}-bound.",
          f"- bandwidth bound: B × {get_accelerator(gpu).bandwidth_tbps:g} TB/s × GPUs / (weights read "
          f"{r['weights_read_bytes'] / 1e9:.1f} GB + B × KV {r['kv_bytes_per_sequence'] / 1e9:.2f} GB) = "
          f"{r['bandwidth_bound_tokens_per_s']:,.0f} tok/s",
          f"- compute bound: peak × GPUs × {serving.DEFAULT_SERVING_MFU} / (2·N_active + 4·L·c·d) = "
          f"{r['compute_bound_tokens_per_s']:,.0f} tok/s"]
    if "prefill_flops" in r:
        md.append(f"- prefill of the prompt: {r['prefill_flops']:.3e} FLOPs (2·N·T + 2·L·T²·d) ≈ "
                  f"{r['prefill_seconds_at_mfu'] * 1000:,.0f} ms at MFU {serving.DEFAULT_SERVING_MFU}")
    if "usd_per_million_output_tokens" in r:
        md.append(f"- **${r['usd_per_million_output_tokens']:.3f} per 1M output tokens** at "
                  f"${r['price_usd_per_gpu_hour']:g}/GPU-h ({r['price_source']})")
    md.append(("- memory: needs {:.0f} GB of {:.0f} GB: {}".format(
        r["memory_needed_gb"], r["memory_available_gb"], "fits" if r["fits_in_memory"] else "**does not fit**")))
    md.append("\nA roofline: real servers reach maybe 50-80% of the bandwidth bound; prices are presets, not quotes.")
    fig = go.Figure()
    fig.add_scatter(x=batches, y=[s["bandwidth_bound_tokens_per_s"] for s in sweep], name="bandwidth bound",
                    hovertemplate="B=%{x}: %{y:,.0f} tok/s = B·BW/(weights + B·KV)<extra></extra>")
    fig.add_scatter(x=batches, y=[s["compute_bound_tokens_per_s"] for s in sweep], name="compute bound",
                    hovertemplate="B=%{x}: %{y:,.0f} tok/s = peak·MFU/(2N + 4Lcd)<extra></extra>")
    fits = [s["fits_in_memory"] for s in sweep]
    fig.add_scatter(x=[b for b, f in zip(batches, fits) if f],
                    y=[s["tokens_per_s"] for s, f in zip(sweep, fits) if f], name="min (fits in memory)",
                    mode="lines+markers", line=dict(width=3))
    fig.update_xaxes(type="log", title="batch size B")
    fig.update_yaxes(type="log", title="output tokens/s")
    return "\n".join(md), _layout(fig, "Decode throughput vs batch size")


# ------------------------------------------------------------------------------------------- sources
def sources_markdown() -> str:
    lines = ["#### Accelerators (dense peaks; the table in `costs/accelerators.py` is the single source of truth)",
             "| name | BF16 dense TFLOPS | FP8 dense | TF32 dense | memory | bandwidth | power | released | source |",
             "|---|---|---|---|---|---|---|---|---|"]
    for a in ACCELERATORS.values():
        lines.append(f"| {a.name} | {a.bf16_dense_tflops:g} | {a.fp8_dense_tflops or '—'} | "
                     f"{a.tf32_dense_tflops or '—'} | {a.memory_gb:g} GB | {a.bandwidth_tbps:g} TB/s | "
                     f"{str(int(a.tdp_w)) + ' W' if a.tdp_w else 'n/p'} | {a.date} | [datasheet]({a.source}) |")
    lines.append("\nNotes: " + " ".join(f"**{a.name}**: {a.notes}" for a in ACCELERATORS.values() if a.notes))
    lines += ["\n#### Price presets (indicative snapshots, not quotes: override them)",
              "| GPU | kind | $/GPU-hour | provider | as of | source |", "|---|---|---|---|---|---|"]
    for p in prices.GPU_PRICES:
        lines.append(f"| {p.gpu} | {p.kind} | {p.usd_per_gpu_hour:g} | {p.provider} | {p.as_of} | "
                     f"[link]({p.source}){' — ' + p.note if p.note else ''} |")
    lines.append(f"\nStorage: ${prices.STORAGE_USD_PER_GB_MONTH}/GB-month — {prices.STORAGE_SOURCE}. "
                 f"Egress: ${prices.EGRESS_USD_PER_GB}/GB — {prices.EGRESS_SOURCE}. MI300X has no price preset.")
    lines += ["\n#### Model presets", "| preset | params | active | tokens | L | d | heads | KV heads | vocab | "
              "context | source |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in PRESETS.values():
        lines.append(f"| {p.name} | {human(p.params)} | {human(p.active_params) if p.active_params else '—'} | "
                     f"{human(p.tokens)} | {p.n_layers} | {p.hidden} | {p.n_heads} | {p.n_kv_heads} | {p.vocab} | "
                     f"{p.context} | [link]({p.source}) {p.note} |")
    lines.append("\nMethods and anchors: EleutherAI *Transformer Math 101*; Epoch AI's compute-estimation "
                 "method; Hugging Face *model memory usage*; calflops; gpu_poor. Formulas: Kaplan et al. 2020 (6ND), "
                 "PaLM App. B (attention FLOPs), ZeRO (model states), Korthikanti et al. 2022 (activations), "
                 "Hoffmann et al. 2022 (scaling law).")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- URL state
def apply_preset(preset):
    if not preset or preset == CUSTOM:
        return gr.update(), gr.update(), gr.update()
    p = get_preset(preset)
    return (urlstate._format(p.params), urlstate._format(p.active_params) if p.active_params else "",
            urlstate._format(p.tokens))


def load_from_url(request: gr.Request):
    """Fill the form from ?params=...&tokens=...&gpu=... (bad values are ignored, never an error page)."""
    query = request.query_params if request is not None else {}
    state = urlstate.decode_state(query)
    fields = ["preset", "params", "active_params", "tokens", "gpu", "gpus", "mfu", "price"]
    updates = []
    for field in fields:
        if field not in state:
            updates.append(gr.update())
        elif field in ("params", "active_params", "tokens", "mfu", "price"):
            updates.append(urlstate._format(state[field]))
        else:
            updates.append(state[field])
    return updates


def build(demo: gr.Blocks) -> None:
    gr.Markdown("## Cost calculator · 成本计算\nWhat does it cost to train or serve a model of size N on GPU G? "
                "Every default is sourced (see *Sources*), and the *Calibration* tab shows how our estimates "
                "compare with published training runs. Sizes accept `7e9`, `7B`, `2T`.")
    with gr.Tabs():
        with gr.Tab("Training 训练"):
            with gr.Row():
                preset = gr.Dropdown([CUSTOM] + list(PRESETS), value="llama2-7b", label="Model preset",
                                     min_width=160)
                params = gr.Textbox("6.74e9", label="Parameters N", min_width=120)
                active = gr.Textbox("", label="Active params (MoE)", placeholder="dense", min_width=120)
                tokens = gr.Textbox("2e12", label="Training tokens D", min_width=120)
            with gr.Row():
                gpu = gr.Dropdown(list(ACCELERATORS), value="H100-80GB", label="GPU", min_width=140)
                gpus = gr.Number(1024, label="GPUs", step=1, min_width=100)  # no precision/minimum: Gradio fails on "nan" before our check
                mfu = gr.Textbox("", label="MFU", placeholder="calibrated default", min_width=100)
                price = gr.Textbox("", label="$/GPU-hour", placeholder="preset", min_width=100)
                price_kind = gr.Radio(["on-demand", "spot"], value="on-demand", label="Price preset",
                                      min_width=160)
            with gr.Accordion("Energy, storage and egress", open=False):
                with gr.Row():
                    pue = gr.Number(training.DEFAULT_PUE, label="PUE", min_width=100)
                    grid = gr.Number(training.DEFAULT_GRID_KG_PER_KWH, label="Grid kg CO₂e/kWh", min_width=120)
                    storage = gr.Textbox("", label="Storage $/GB-month",
                                         placeholder=str(prices.STORAGE_USD_PER_GB_MONTH), min_width=120)
                    egress = gr.Textbox("", label="Egress GB", placeholder="final bf16 weights once",
                                        min_width=120)
            run = gr.Button("Estimate", variant="primary")
            summary = gr.Markdown()
            with gr.Row():
                breakdown_plot = gr.Plot(label="Cost breakdown", min_width=300)
                size_plot = gr.Plot(label="Cost vs model size", min_width=300)
            with gr.Accordion("JSON (same keys as `python -m costs train --json`)", open=False):
                summary_json = gr.JSON()

        with gr.Tab("Memory 显存"):
            with gr.Row():
                m_preset = gr.Dropdown(list(PRESETS), value="llama2-7b", label="Architecture", min_width=160)
                m_params = gr.Textbox("", label="Params override", placeholder="preset", min_width=100)
                m_gpu = gr.Dropdown(list(ACCELERATORS), value="A100-80GB", label="GPU", min_width=120)
                m_opt = gr.Dropdown([(v, k) for k, v in OPT_LABELS.items()], value="adam_mixed",
                                    label="Optimizer", min_width=160)
            with gr.Row():
                m_zero = gr.Radio([0, 1, 2, 3], value=3, label="ZeRO stage", min_width=160)
                m_tp = gr.Number(1, label="Tensor parallel", precision=0, minimum=1, min_width=90)
                m_dp = gr.Number(8, label="Data parallel", precision=0, minimum=1, min_width=90)
                m_mb = gr.Number(1, label="Micro-batch", precision=0, minimum=1, min_width=90)
                m_seq = gr.Number(4096, label="Sequence", precision=0, minimum=1, min_width=90)
                m_rec = gr.Radio(list(memory.RECOMPUTE_MODES), value="selective", label="Recompute",
                                 min_width=200)
            m_run = gr.Button("Plan memory", variant="primary")
            m_md = gr.Markdown()
            m_plot = gr.Plot()
            gr.Markdown("Model states per GPU = (2 + 2 + K)·Ψ/TP, with ZeRO-1/2/3 dividing optimizer / + gradients "
                        "/ + weights by DP (Rajbhandari et al. 2019). "
                        "Activations per layer = s·b·h·(34 + 5·a·s/h)/TP "
                        "without recompute, 34·s·b·h/TP selective, 2·s·b·h/TP full (Korthikanti et al. 2022). "
                        "KV cache (Serving tab) = 2·L·n_kv·d_head·bytes·seq·batch.")

        with gr.Tab("Scaling 规模"):
            s_compute = gr.Textbox("1e24", label="Compute budget (FLOPs)")
            s_run = gr.Button("Advise", variant="primary")
            s_md = gr.Markdown()
            s_plot = gr.Plot()

        with gr.Tab("Serving 推理"):
            with gr.Row():
                v_preset = gr.Dropdown(list(PRESETS), value="llama3-8b", label="Model", min_width=160)
                v_gpu = gr.Dropdown(list(ACCELERATORS), value="H100-80GB", label="GPU", min_width=120)
                v_gpus = gr.Number(1, label="GPUs", precision=0, minimum=1, min_width=80)
                v_batch = gr.Number(16, label="Batch", precision=0, minimum=1, min_width=80)
            with gr.Row():
                v_ctx = gr.Number(4096, label="Context (tokens)", precision=0, minimum=1, min_width=100)
                v_prompt = gr.Number(1000, label="Prompt tokens", precision=0, minimum=1, min_width=100)
                v_bytes = gr.Dropdown([("bf16 (2 bytes)", 2.0), ("int8/fp8 (1)", 1.0), ("int4 (0.5)", 0.5)],
                                      value=2.0, label="Weights", min_width=120)
                v_price = gr.Textbox("", label="$/GPU-hour", placeholder="preset", min_width=100)
            v_run = gr.Button("Estimate serving", variant="primary")
            v_md = gr.Markdown()
            v_plot = gr.Plot()

        with gr.Tab("Calibration 校准"):
            gr.Plot(calibration_figure())
            gr.Markdown(calibration_markdown())

        with gr.Tab("Sources 来源"):
            gr.Markdown(sources_markdown())

    form = [params, tokens, gpu, gpus, mfu, price, active, preset, price_kind, pue, grid, storage, egress]
    outputs = [summary, summary_json, breakdown_plot, size_plot]
    run.click(estimate_training, form, outputs, api_name="estimate_training")
    # .input (user edits only): a preset arriving from the URL must not overwrite the URL's own params
    preset.input(apply_preset, preset, [params, active, tokens], api_visibility="private")

    url_inputs = [preset, params, active, tokens, gpu, gpus, mfu, price]  # order of urlstate.QUERY_KEYS
    for component in url_inputs:
        component.change(None, url_inputs, None, js=urlstate.SYNC_URL_JS, api_visibility="private")
    demo.load(load_from_url, None, url_inputs, api_visibility="private", show_progress="hidden").then(
        estimate_training, form, outputs, api_visibility="private")

    m_run.click(plan_memory, [m_preset, m_params, m_opt, m_zero, m_tp, m_dp, m_mb, m_seq, m_rec, m_gpu],
                [m_md, m_plot], api_visibility="private")
    s_run.click(scaling_advice, s_compute, [s_md, s_plot], api_visibility="private")
    v_run.click(serving_estimate, [v_preset, v_gpu, v_gpus, v_batch, v_ctx, v_bytes, v_price, v_prompt],
                [v_md, v_plot], api_visibility="private")


if __name__ == "__main__":
    with gr.Blocks(title="Cost calculator") as standalone:
        build(standalone)
    standalone.launch()
