"""Serving-side views of the cost calculator: decode roofline, fleet, API vs self-host and the API price table.

Formatting only (numbers come from costs/serving.py, fleet.py, breakeven.py and costs/data/api_prices.csv).
"""
from __future__ import annotations

import plotly.graph_objects as go

from costs import api_prices, breakeven, fleet, serving, sources
from costs.accelerators import get_accelerator
from costs.units import human
from demos.costs_views import layout, money, note_line

SWEEP_BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]


def serving_view(name: str, weights: str, r: serving.ServingEstimate, sweep: list[serving.ServingEstimate]):
    md = [f"**{name}** on {r.gpus}× {r.gpu}, batch {r.batch}, context {r.context}, {weights} weights:",
          f"**{r.tokens_per_s:,.0f} output tokens/s** roofline ({r.tokens_per_s_per_sequence:,.1f} per sequence), "
          f"{r.bound}-bound.",
          f"- bandwidth bound: B × {get_accelerator(r.gpu).bandwidth_tbps:g} TB/s × GPUs / (weights read "
          f"{r.weights_read_bytes / 1e9:.1f} GB + B × KV {r.kv_bytes_per_sequence / 1e9:.2f} GB) = "
          f"{r.bandwidth_bound_tokens_per_s:,.0f} tok/s",
          f"- compute bound: peak × GPUs × {serving.DEFAULT_SERVING_MFU} / (2·N_active + 4·L·c·d) = "
          f"{r.compute_bound_tokens_per_s:,.0f} tok/s"]
    if r.prefill_flops is not None:
        md.append(f"- prefill of the prompt: {r.prefill_flops:.3e} FLOPs (2·N·T + 2·L·T²·d) ≈ "
                  f"{r.prefill_seconds_at_mfu * 1000:,.0f} ms at MFU {serving.DEFAULT_SERVING_MFU}")
    md.append("- memory: needs {:.0f} GB of {:.0f} GB usable: {}".format(
        r.memory_needed_gb, r.memory_available_gb, "fits" if r.fits_in_memory else "**does not fit**"))
    if r.usd_per_million_output_tokens is not None:
        md.append(f"- **${r.usd_per_million_output_tokens:.3f} per 1M output tokens** at "
                  f"${r.price_usd_per_gpu_hour:g}/GPU-h ({r.price_source})")
    elif not r.fits_in_memory:
        md.append("- no $ per token: this setup cannot run (add GPUs or lower the precision)")
    md.append(f"\nA roofline: measured servers reach about {sources.DECODE_EFFICIENCY.value:.0%} of the bandwidth "
              f"bound ({sources.DECODE_EFFICIENCY.source}, {sources.DECODE_EFFICIENCY.as_of}); the Fleet tab applies "
              "that gap. Prices are presets, not quotes.")
    fig = go.Figure()
    fig.add_scatter(x=SWEEP_BATCHES, y=[s.bandwidth_bound_tokens_per_s for s in sweep], name="bandwidth bound",
                    hovertemplate="B=%{x}: %{y:,.0f} tok/s = B·BW/(weights + B·KV)<extra></extra>")
    fig.add_scatter(x=SWEEP_BATCHES, y=[s.compute_bound_tokens_per_s for s in sweep], name="compute bound",
                    hovertemplate="B=%{x}: %{y:,.0f} tok/s = peak·MFU/(2N + 4Lcd)<extra></extra>")
    fits = [s.fits_in_memory for s in sweep]
    fig.add_scatter(x=[b for b, f in zip(SWEEP_BATCHES, fits) if f],
                    y=[s.tokens_per_s for s, f in zip(sweep, fits) if f], name="min (fits in memory)",
                    mode="lines+markers", line=dict(width=3))
    fig.update_xaxes(type="log", title="batch size B")
    fig.update_yaxes(type="log", title="output tokens/s")
    return "\n".join(md) + note_line(r.gpu_note), layout(fig, "Decode throughput vs batch size")


def fleet_markdown(r: fleet.FleetEstimate) -> str:
    if not r.fits:
        return f"**Does not fit.** {r.message}" + note_line(r.gpu_note)
    md = [f"### {r.model} on {r.gpu}: **{r.gpus} GPUs** ({r.replicas} replicas × TP {r.tp}) for {r.qps:g} QPS",
          f"Requests of {r.prompt_tokens} prompt + {r.output_tokens} output tokens; {r.weights} weights, {r.kv} KV.",
          "", "| | value | how |", "|---|---|---|",
          f"| KV budget | batch ≤ {r.max_batch_kv} | ({r.usable_gb_per_replica:.0f} GB usable − {r.weights_gb:.0f} GB "
          f"weights) / {r.kv_per_sequence_gb:.3f} GB per sequence |",
          f"| batch | {r.batch} | largest that meets TPOT {_target(r.tpot_target_s)} |",
          f"| TPOT | {r.tpot_s * 1000:.1f} ms {_met(r.tpot_met)} | roofline step / efficiency {r.efficiency:g} |",
          f"| TTFT | {r.ttft_s * 1000:.0f} ms {_met(r.ttft_met)} | prefill FLOPs / (peak × TP × calibrated MFU), "
          "no queueing |",
          f"| output tok/s per GPU | {r.output_tokens_per_s_per_gpu:,.0f} | roofline "
          f"{r.roofline_output_tokens_per_s_per_gpu:,.0f} × measured gap {r.efficiency:g} ({r.bound}-bound) |",
          f"| requests/s per replica | {r.requests_per_s_per_replica:,.2f} | 1 / (prefill + output × TPOT / batch) |"]
    if r.usd_per_hour is not None:
        md += [f"| **$ per 1M input tokens** | **${r.usd_per_million_input_tokens:.3f}** | prefill share of "
               f"${r.usd_per_hour:,.2f}/h |",
               f"| **$ per 1M output tokens** | **${r.usd_per_million_output_tokens:.3f}** | decode share |"]
        md.append(f"\nPrice ${r.price_usd_per_gpu_hour:g}/GPU-h ({r.price_source}).")
    else:
        md.append(f"\nNo price preset for {r.gpu}: enter a $/GPU-hour for $ per token.")
    md.append(f"\nMeasured-vs-roofline gap: {r.efficiency_source}.")
    if r.message:
        md.append(f"\n**Warning:** {r.message}.")
    return "\n".join(md) + note_line(r.gpu_note)


def _target(value: float | None) -> str:
    return "(no target)" if value is None else f"{value * 1000:g} ms"


def _met(flag: bool | None) -> str:
    return "" if flag is None else ("✓ meets target" if flag else "✗ misses target")


def breakeven_view(r: breakeven.BreakEven):
    if not r.fits:
        return f"**Does not fit.** {r.message}" + note_line(r.gpu_note), go.Figure()
    even = (f"**{human(r.break_even_monthly_tokens)} tokens/month**" if r.break_even_monthly_tokens is not None
            else "**never** on these GPUs")
    md = [f"### {r.model} on {r.gpus}× {r.gpu} at {r.utilisation:.0%} utilisation vs the API",
          f"Break-even: {even}. At your volume ({human(r.monthly_input_tokens)} in + "
          f"{human(r.monthly_output_tokens)} out per month) **{r.cheaper}** is cheaper: API "
          f"{money(r.api_monthly_usd)}/month vs self-host {money(r.selfhost_monthly_usd)}/month "
          f"({r.sets_needed} set(s) of {r.gpus} GPUs).",
          "", "| | value |", "|---|---|",
          f"| one set, a month | {money(r.set_monthly_usd)} = {r.gpus} × ${r.price_usd_per_gpu_hour:g}/GPU-h × "
          f"{breakeven.HOURS_PER_MONTH:g} h ({r.price_source}) |",
          f"| one set's capacity at {r.utilisation:.0%} | {human(r.set_capacity_monthly_tokens)} tokens/month "
          f"(TP {r.tp}, {r.replicas_per_set} replica(s), your input/output mix) |",
          f"| self-host $ per 1M tokens (full sets) | ${r.selfhost_usd_per_1m_tokens:.3f} |",
          f"| API $ per 1M tokens (your mix) | ${r.api_usd_per_1m_tokens:.3f} (${r.api_usd_per_1m_input:g} in, "
          f"${r.api_usd_per_1m_output:g} out) |"]
    if r.message:
        md.append(f"\n{r.message}.")
    md.append("\nSelf-hosting here counts GPUs only (no engineers, no redundancy across regions, no egress); "
              "capacity is the Fleet model's roofline × measured gap, without latency targets.")
    curves = breakeven.cost_curves(r)
    fig = go.Figure()
    fig.add_scatter(x=curves["monthly_tokens"], y=curves["api_usd"], name="API",
                    hovertemplate="%{x:.3s} tokens/month: $%{y:,.0f}<extra>API</extra>")
    fig.add_scatter(x=curves["monthly_tokens"], y=curves["selfhost_usd"], name=f"self-host ({r.gpus}× {r.gpu})",
                    line=dict(shape="hv"), hovertemplate="%{x:.3s} tokens/month: $%{y:,.0f}<extra>self-host</extra>")
    fig.add_scatter(x=[r.monthly_input_tokens + r.monthly_output_tokens], y=[r.api_monthly_usd], mode="markers",
                    name="your volume (API)", marker=dict(symbol="star", size=13, color="black"))
    if r.break_even_monthly_tokens is not None:
        fig.add_vline(x=r.break_even_monthly_tokens, line_dash="dot", annotation_text="break-even")
    fig.update_xaxes(type="log", title="tokens per month (your input/output mix)")
    fig.update_yaxes(type="log", title="USD per month")
    return "\n".join(md) + note_line(r.gpu_note), layout(fig, "API vs self-hosting, monthly cost")


def api_prices_markdown() -> str:
    return ("#### API prices per 1M tokens, USD (`costs/data/api_prices.csv`; check the provider's page before "
            "relying on a figure)\n\n" + api_prices.markdown_table("en"))
