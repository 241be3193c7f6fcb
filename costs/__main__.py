"""Command line: python -m costs {train,finetune,serve,fleet,breakeven,calibrate,memory,gpus,scaling,api-prices}

Contract relied on by other tools (keep stable):
  python -m costs train --params N --tokens D --gpu NAME [--gpus K] [--mfu F] [--price USD]
                        [--active-params N] --json
  prints one JSON object with at least flops, gpu_hours, mfu, gpu (canonical), wall_days (with --gpus) and
  cost_usd (when a price is given or preset); gpu_hours_low/high with the calibrated default MFU.
  finetune / serve / fleet / breakeven --json print `to_dict()` of their result dataclass (costs/finetune.py,
  serving.py, fleet.py, breakeven.py): the field names are the keys; a key is absent when not computed.
  Bad input (unknown GPU, size <= 0, NaN/inf, a value the model cannot use) -> "argument --FLAG: message" on
  stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import re
import sys

from costs import (
    api_prices,
    breakeven,
    calibration,
    finetune,
    fleet,
    memory,
    prices,
    scaling,
    serving,
    sources,
    training,
)
from costs.accelerators import ACCELERATORS, get_accelerator
from costs.presets import PRESETS, get_preset
from costs.units import fraction, human, non_negative, positive, positive_int


def _arg(parser):
    """Wrap a validator so argparse reports its ValueError as a usage error (exit code 2)."""
    def convert(text):
        try:
            return parser(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = getattr(parser, "__name__", "value")
    return convert


_size = _arg(lambda t: positive(t, "value"))
_count = _arg(lambda t: positive_int(t, "value"))
_frac = _arg(lambda t: fraction(t, "mfu"))
_share = _arg(lambda t: fraction(t, "value"))
_money = _arg(lambda t: non_negative(t, "price"))
_gpu = _arg(lambda t: get_accelerator(t).name)


def _print(result, as_json: bool, text: str) -> None:
    data = result.to_dict() if hasattr(result, "to_dict") else result
    print(json.dumps(data, default=str) if as_json else text)
    note = getattr(result, "gpu_note", None)
    if note and not as_json:
        print(f"note: {note}", file=sys.stderr)


def _band(low, high) -> str:
    return f" (published runs: {low:,.0f}-{high:,.0f}, 10-90 %)" if low is not None else ""


def cmd_train(args) -> int:
    arch = None
    if args.preset:
        p = get_preset(args.preset)
        arch = {"n_layers": p.n_layers, "n_heads": p.n_heads, "head_dim": p.head_dim, "seq_len": p.context}
    r = training.estimate_training(args.params, args.tokens, args.gpu, gpus=args.gpus, mfu=args.mfu,
                                   price=args.price, active_params=args.active_params, arch=arch,
                                   price_kind=args.price_kind, precision=args.precision)
    lines = [f"{r.gpu}: {r.flops:.3e} FLOPs (6ND), MFU {r.mfu:.3f} ({r.mfu_basis})",
             f"GPU-hours: {r.gpu_hours:,.0f}{_band(r.gpu_hours_low, r.gpu_hours_high)}"]
    if r.wall_days is not None:
        lines.append(f"Wall clock on {r.gpus} GPUs: {r.wall_days:.1f} days")
    if r.cost_usd is not None:
        lines.append(f"Compute cost: ${r.cost_usd:,.0f} at ${r.price_usd_per_gpu_hour}/GPU-h [{r.price_source}]")
        lines.append(f"+ storage ${r.storage.storage_cost_usd:,.0f} + egress ${r.storage.egress_cost_usd:,.0f} "
                     f"= ${r.total_cost_usd:,.0f}")
    if r.energy is not None:
        lines.append(f"Energy: {r.energy.energy_kwh:,.0f} kWh (PUE {r.energy.pue}), "
                     f"{r.energy.co2_tonnes:,.1f} t CO2e at {r.energy.grid_kg_co2_per_kwh} kg/kWh")
    _print(r, args.json, "\n".join(lines))
    return 0


def cmd_calibrate(args) -> int:
    report = calibration.write_report() if args.write else calibration.calibration_report()
    if args.json:
        print(json.dumps(report, default=str))
    else:
        print(calibration.format_report(report))
    return 0


def cmd_memory(args) -> int:
    p = get_preset(args.preset)
    params = args.params or p.params
    r = memory.plan_training_memory(params, p.n_layers, p.hidden, p.n_heads, args.seq_len or p.context,
                                    args.micro_batch, args.optimizer, args.zero, args.dp, args.tp,
                                    args.recompute, args.gpu, not args.no_sequence_parallel, args.flash_attention)
    parts = ", ".join(f"{k} {v:.1f} GB" for k, v in r.per_gpu_gb.items())
    text = (f"{p.name} ({human(params)} params), ZeRO-{args.zero}, TP {args.tp}, DP {args.dp}, "
            f"recompute={args.recompute}, sequence parallel={r.sequence_parallel}, "
            f"FlashAttention={r.flash_attention}\nPer GPU: {parts} -> {r.total_per_gpu_gb:.1f} GB")
    if r.fits is not None:
        text += (f"\n{r.gpu} ({r.usable_gb:.0f} GB usable): {'fits' if r.fits else 'does NOT fit'}; "
                 f"minimum GPUs: {r.min_gpus} ({r.min_gpus_reason})")
    _print(r, args.json, text)
    return 0


def cmd_serve(args) -> int:
    p = get_preset(args.preset)
    r = serving.estimate_serving(p.params, args.gpu, p.n_layers, p.hidden, p.n_kv_heads, p.head_dim,
                                 args.context, args.batch, args.gpus, p.active_params,
                                 weight_bytes=args.weight_bytes, price=args.price,
                                 kv_elems_per_token_per_layer=p.kv_elems_per_token_per_layer,
                                 prompt_tokens=args.prompt_tokens)
    text = (f"{p.name} on {r.gpus}x {r.gpu}, batch {r.batch}, context {r.context}: "
            f"{r.tokens_per_s:,.0f} tok/s ({r.bound}-bound roofline)")
    if r.usd_per_million_output_tokens is not None:
        text += f", ${r.usd_per_million_output_tokens:.2f} per 1M output tokens"
    if not r.fits_in_memory:
        text += (f"\nDOES NOT FIT: needs {r.memory_needed_gb:.0f} GB, {r.memory_available_gb:.0f} GB usable; "
                 "no $ per token for a setup that cannot run")
    _print(r, args.json, text)
    return 0


def cmd_finetune(args) -> int:
    r = finetune.estimate_finetune(args.gpu, args.method, args.objective, args.preset, args.params, args.rank,
                                   args.targets, args.tokens, args.epochs, args.seq_len, args.micro_batch,
                                   args.gpus, args.mfu, args.price, args.price_kind, not args.no_paged_optimizer)
    parts = ", ".join(f"{k} {v:.1f}" for k, v in r.per_gpu_gb.items())
    text = (f"{r.model}, {r.method} {r.objective} on {r.gpus}x {r.gpu}: trainable {human(r.trainable_params)} "
            f"({r.trainable_share:.2%})\nPer GPU (GB): {parts} -> {r.total_per_gpu_gb:.1f} of {r.usable_gb:.0f} "
            f"usable: {'fits' if r.fits else 'does NOT fit'}; minimum GPUs {r.min_gpus} ({r.min_gpus_reason})\n"
            f"GPU-hours {r.gpu_hours:,.1f}{_band(r.gpu_hours_low, r.gpu_hours_high)}, MFU {r.mfu:.3f}")
    if r.cost_usd is not None:
        text += f"\nCost ${r.cost_usd:,.2f} at ${r.price_usd_per_gpu_hour}/GPU-h [{r.price_source}]"
    _print(r, args.json, text)
    return 0


def cmd_fleet(args) -> int:
    r = fleet.estimate_fleet(args.gpu, args.qps, args.prompt_tokens, args.output_tokens, args.preset, args.params,
                             args.ttft, args.tpot, args.weights, args.kv, args.tp, args.price, args.price_kind,
                             args.efficiency)
    if not r.fits:
        text = r.message
    else:
        text = (f"{r.model} on {r.gpu}: {r.replicas} replicas x TP {r.tp} = {r.gpus} GPUs for {r.qps:g} QPS; "
                f"batch {r.batch} (KV allows {r.max_batch_kv}), TPOT {r.tpot_s * 1000:.0f} ms, TTFT "
                f"{r.ttft_s * 1000:.0f} ms; {r.output_tokens_per_s_per_gpu:,.0f} output tok/s per GPU "
                f"(roofline {r.roofline_output_tokens_per_s_per_gpu:,.0f} x efficiency {r.efficiency:g})")
        if r.usd_per_million_output_tokens is not None:
            text += (f"\n${r.usd_per_million_input_tokens:.3f} per 1M input, ${r.usd_per_million_output_tokens:.3f}"
                     f" per 1M output tokens at ${r.price_usd_per_gpu_hour}/GPU-h")
        if r.message:
            text += f"\nWARNING: {r.message}"
    _print(r, args.json, text)
    return 0


def cmd_breakeven(args) -> int:
    api_in, api_out = args.api_in, args.api_out
    if args.api_model:
        listed = api_prices.get_api_price(args.api_model)
        api_in = listed.input_usd_per_1m if api_in is None else api_in
        api_out = listed.output_usd_per_1m if api_out is None else api_out
    if api_in is None or api_out is None:
        raise ValueError("argument --api-in/--api-out: give both API prices or --api-model")
    r = breakeven.estimate_break_even(args.gpu, args.gpus, api_in, api_out, args.in_tokens, args.out_tokens,
                                      args.util, args.preset, args.params, args.price, args.price_kind,
                                      args.weights, args.kv)
    if not r.fits:
        text = r.message
    else:
        even = (f"{human(r.break_even_monthly_tokens)} tokens/month" if r.break_even_monthly_tokens is not None
                else "never on these GPUs")
        text = (f"{r.model} on {r.gpus}x {r.gpu} at {r.utilisation:.0%} utilisation: self-host "
                f"${r.selfhost_monthly_usd:,.0f}/month ({r.sets_needed} set(s)), API ${r.api_monthly_usd:,.0f}/month "
                f"-> {r.cheaper} is cheaper; break-even {even}")
        if r.message:
            text += f"\n{r.message}"
    _print(r, args.json, text)
    return 0


def cmd_api_prices(args) -> int:
    rows = api_prices.load_api_prices()
    text = "\n".join(p.label + f" [{p.source_url}]" for p in rows)
    _print({"api_prices": [vars(p) for p in rows]}, args.json, text)
    return 0


def cmd_gpus(args) -> int:
    rows = [acc.as_dict() for acc in ACCELERATORS.values()]
    text = "\n".join(f"{r['name']:<10} {r['bf16_dense_tflops']:>7.1f} TFLOPS  {r['memory_gb']:>4.0f} GB  "
                     f"{r['bandwidth_tbps']:>5.2f} TB/s  {r['tdp_w'] or '-':>5} W  {r['source']}" for r in rows)
    _print({"accelerators": rows}, args.json, text)
    return 0


def cmd_scaling(args) -> int:
    result = {"rule_20_tokens_per_param": scaling.chinchilla_rule(args.compute),
              "loss_fit_optimum": scaling.chinchilla_fit_optimum(args.compute),
              "overtraining": scaling.overtraining_tradeoff(args.compute)}
    rule, fit = result["rule_20_tokens_per_param"], result["loss_fit_optimum"]
    text = (f"C = {args.compute:.3e} FLOPs\n  D=20N rule: N={human(rule['params'])}, D={human(rule['tokens'])}, "
            f"loss {rule['loss']:.3f}\n  loss-fit optimum: N={human(fit['params'])}, D={human(fit['tokens'])}, "
            f"loss {fit['loss']:.3f}")
    _print(result, args.json, text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m costs", description="LLM training/serving cost calculator")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    calib = sub.add_parser("calibrate", help="default MFU vs published training runs")
    calib.add_argument("--json", action="store_true")
    calib.add_argument("--write", action="store_true", help=f"also write {calibration.REPORT_FILE.name}")
    calib.set_defaults(func=cmd_calibrate)
    _add_memory(sub)
    _add_serve(sub)
    _add_finetune(sub)
    _add_fleet(sub)
    _add_breakeven(sub)
    api = sub.add_parser("api-prices", help="the dated API price table (costs/data/api_prices.csv)")
    api.add_argument("--json", action="store_true")
    api.set_defaults(func=cmd_api_prices)
    gpus = sub.add_parser("gpus", help="the accelerator table with sources")
    gpus.add_argument("--json", action="store_true")
    gpus.set_defaults(func=cmd_gpus)
    scale = sub.add_parser("scaling", help="Chinchilla-optimal N and D for a compute budget")
    scale.add_argument("--compute", type=_size, required=True, help="training FLOPs, e.g. 1e24")
    scale.add_argument("--json", action="store_true")
    scale.set_defaults(func=cmd_scaling)
    return parser


def _add_train(sub) -> None:
    train = sub.add_parser("train", help="FLOPs, GPU-hours, wall-clock days, cost, energy")
    train.add_argument("--params", type=_size, required=True, help="parameters, e.g. 7e9 or 7B")
    train.add_argument("--tokens", type=_size, required=True, help="training tokens, e.g. 2e12 or 2T")
    train.add_argument("--gpu", type=_gpu, required=True, help="accelerator, e.g. H100-80GB, a100_80gb, TPUv4")
    train.add_argument("--gpus", type=_count, help="number of accelerators (adds wall_days)")
    train.add_argument("--mfu", type=_frac, help="model FLOPs utilisation 0-1 (default: the calibrated fit)")
    train.add_argument("--price", type=_money, help="USD per GPU-hour (default: the GPU's on-demand preset)")
    train.add_argument("--price-kind", choices=prices.PRICE_KINDS, default="on-demand")
    train.add_argument("--precision", choices=("bf16", "fp8"), default="bf16",
                       help="training precision: MFU is relative to that precision's dense peak")
    train.add_argument("--active-params", type=_size, help="active parameters per token (MoE)")
    train.add_argument("--preset", choices=sorted(PRESETS), help="adds the attention-FLOPs convention")
    train.add_argument("--json", action="store_true", help="print one JSON object")
    train.set_defaults(func=cmd_train)


def _add_memory(sub) -> None:
    mem = sub.add_parser("memory", help="training memory per GPU and minimum GPU count")
    mem.add_argument("--preset", choices=sorted(PRESETS), required=True)
    mem.add_argument("--params", type=_size, help="override the preset's parameter count")
    mem.add_argument("--gpu", type=_gpu)
    mem.add_argument("--optimizer", choices=sorted(memory.OPTIMIZER_BYTES_PER_PARAM), default="adam_mixed")
    mem.add_argument("--zero", type=int, choices=(0, 1, 2, 3), default=0)
    mem.add_argument("--dp", type=_count, default=1)
    mem.add_argument("--tp", type=_count, default=1)
    mem.add_argument("--micro-batch", type=_count, default=1)
    mem.add_argument("--seq-len", type=_count)
    mem.add_argument("--recompute", choices=memory.RECOMPUTE_MODES, default="none")
    mem.add_argument("--no-sequence-parallel", action="store_true",
                     help="activations without sequence parallelism (Korthikanti Eq. 1)")
    mem.add_argument("--flash-attention", action="store_true", help="attention scores are not stored")
    mem.add_argument("--json", action="store_true")
    mem.set_defaults(func=cmd_memory)


def _add_serve(sub) -> None:
    serve = sub.add_parser("serve", help="decode tokens/s bounds and $ per 1M output tokens")
    serve.add_argument("--preset", choices=sorted(PRESETS), required=True)
    serve.add_argument("--gpu", type=_gpu, required=True)
    serve.add_argument("--gpus", type=_count, default=1)
    serve.add_argument("--batch", type=_count, default=1)
    serve.add_argument("--context", type=_count, default=2048)
    serve.add_argument("--prompt-tokens", type=_count)
    serve.add_argument("--weight-bytes", type=_size, default=2.0, help="2 = bf16, 1 = int8/fp8, 0.5 = int4")
    serve.add_argument("--price", type=_money)
    serve.add_argument("--json", action="store_true")
    serve.set_defaults(func=cmd_serve)


def _model_args(cmd) -> None:
    cmd.add_argument("--preset", choices=sorted(PRESETS), help="model architecture")
    cmd.add_argument("--params", type=_size, help="parameters when no preset (Llama-like shape assumed)")
    cmd.add_argument("--gpu", type=_gpu, required=True)
    cmd.add_argument("--price", type=_money, help="USD per GPU-hour (default: the GPU's preset)")
    cmd.add_argument("--price-kind", choices=prices.PRICE_KINDS, default="on-demand")
    cmd.add_argument("--json", action="store_true", help="print one JSON object")


def _add_finetune(sub) -> None:
    ft = sub.add_parser("finetune", help="full / LoRA / QLoRA, SFT / DPO: memory, minimum GPUs, GPU-hours, $")
    _model_args(ft)
    ft.add_argument("--method", choices=finetune.METHODS, default="lora")
    ft.add_argument("--objective", choices=finetune.OBJECTIVES, default="sft")
    ft.add_argument("--rank", type=_count, default=sources.LORA_RANK.value)
    ft.add_argument("--targets", choices=finetune.TARGETS, default="attention-qv")
    ft.add_argument("--tokens", type=_size, default=sources.FINETUNE_TOKENS.value, help="dataset tokens per epoch")
    ft.add_argument("--epochs", type=_size, default=1)
    ft.add_argument("--seq-len", type=_count, default=sources.FINETUNE_SEQ_LEN.value)
    ft.add_argument("--micro-batch", type=_count, default=1)
    ft.add_argument("--gpus", type=_count, default=1)
    ft.add_argument("--mfu", type=_frac)
    ft.add_argument("--no-paged-optimizer", action="store_true", help="QLoRA: keep Adam states on the GPU")
    ft.set_defaults(func=cmd_finetune)


def _add_fleet(sub) -> None:
    fl = sub.add_parser("fleet", help="QPS + latency targets -> GPUs and $ per 1M input/output tokens")
    _model_args(fl)
    fl.add_argument("--qps", type=_size, default=sources.QPS.value)
    fl.add_argument("--prompt-tokens", type=_count, default=sources.PROMPT_TOKENS.value)
    fl.add_argument("--output-tokens", type=_count, default=sources.OUTPUT_TOKENS.value)
    fl.add_argument("--ttft", type=_size, default=sources.TTFT_TARGET_S.value, help="TTFT target, seconds")
    fl.add_argument("--tpot", type=_size, default=sources.TPOT_TARGET_S.value, help="TPOT target, seconds")
    fl.add_argument("--weights", choices=sorted(serving.WEIGHT_BYTES), default="fp16")
    fl.add_argument("--kv", choices=sorted(serving.KV_BYTES), default="fp16")
    fl.add_argument("--tp", type=_count, help="GPUs per replica (default: the cheapest of 1, 2, 4, 8)")
    fl.add_argument("--efficiency", type=_share, default=sources.DECODE_EFFICIENCY.value,
                    help="measured / roofline decode throughput")
    fl.set_defaults(func=cmd_fleet)


def _add_breakeven(sub) -> None:
    be = sub.add_parser("breakeven", help="API vs self-host: monthly tokens where self-hosting gets cheaper")
    _model_args(be)
    be.add_argument("--gpus", type=_count, default=1)
    be.add_argument("--util", type=_share, default=sources.UTILISATION.value, help="average utilisation 0-1")
    be.add_argument("--api-model", help="take API prices from costs/data/api_prices.csv")
    be.add_argument("--api-in", type=_money, help="API USD per 1M input tokens")
    be.add_argument("--api-out", type=_money, help="API USD per 1M output tokens")
    be.add_argument("--in-tokens", type=_size, default=sources.MONTHLY_INPUT_TOKENS.value)
    be.add_argument("--out-tokens", type=_size, default=sources.MONTHLY_OUTPUT_TOKENS.value)
    be.add_argument("--weights", choices=sorted(serving.WEIGHT_BYTES), default="fp16")
    be.add_argument("--kv", choices=sorted(serving.KV_BYTES), default="fp16")
    be.set_defaults(func=cmd_breakeven)


# Library messages name the quantity; the CLI adds the flag it came from (first match wins).
_FLAG_HINTS = (("(tp)", "--tp"), ("active params", "--active-params"), ("spot price", "--price-kind"),
               ("no price preset", "--price"), ("preset or a parameter count", "--preset/--params"),
               ("in_tokens", "--in-tokens/--out-tokens"), ("LoRA on the MLP", "--targets"),
               ("FP8", "--precision"), ("Unknown API model", "--api-model"), ("seq_len", "--seq-len"))


def _with_flag(message: str) -> str:
    if message.startswith("argument "):
        return message
    for needle, flag in _FLAG_HINTS:
        if needle in message:
            return f"argument {flag}: {message}"
    return message


def _join_negative_values(argv: list[str]) -> list[str]:
    """'--params -7e9' -> '--params=-7e9': argparse would take '-7e9' for an option and hide the real error."""
    out: list[str] = []
    for token in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and re.match(r"^-(\d|\.\d|inf|nan)", token, re.I):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    try:
        return args.func(args)
    except ValueError as exc:  # semantic errors found after parsing (e.g. active > total params)
        print(f"{parser.prog}: error: {_with_flag(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
