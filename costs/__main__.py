"""Command line: python -m costs {train,calibrate,memory,serve,gpus,scaling} ...

Contract relied on by other tools (keep stable):
  python -m costs train --params N --tokens D --gpu NAME [--gpus K] [--mfu F] [--price USD]
                        [--active-params N] --json
  prints one JSON object with at least flops, gpu_hours, mfu, gpu (canonical), wall_days (with --gpus) and
  cost_usd (when a price is given or preset). Bad input (unknown GPU, size <= 0, NaN/inf) -> message on
  stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import re
import sys

from costs import calibration, memory, scaling, serving, training
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
_money = _arg(lambda t: non_negative(t, "price"))
_gpu = _arg(lambda t: get_accelerator(t).name)


def _print(result: dict, as_json: bool, text: str) -> None:
    print(json.dumps(result, indent=None if as_json else 2, default=str) if as_json else text)


def cmd_train(args) -> int:
    arch = None
    if args.preset:
        p = get_preset(args.preset)
        arch = {"n_layers": p.n_layers, "n_heads": p.n_heads, "head_dim": p.head_dim, "seq_len": p.context}
    result = training.estimate_training(args.params, args.tokens, args.gpu, gpus=args.gpus, mfu=args.mfu,
                                        price=args.price, active_params=args.active_params, arch=arch,
                                        price_kind=args.price_kind)
    lines = [f"{result['gpu']}: {result['flops']:.3e} FLOPs (6ND), MFU {result['mfu']:.3f} ({result['mfu_basis']})",
             f"GPU-hours: {result['gpu_hours']:,.0f}"]
    if "wall_days" in result:
        lines.append(f"Wall clock on {result['gpus']} GPUs: {result['wall_days']:.1f} days")
    if "cost_usd" in result:
        lines.append(f"Compute cost: ${result['cost_usd']:,.0f} at ${result['price_usd_per_gpu_hour']}/GPU-h "
                     f"[{result['price_source']}]")
        lines.append(f"+ storage ${result['storage_cost_usd']:,.0f} + egress ${result['egress_cost_usd']:,.0f} "
                     f"= ${result['total_cost_usd']:,.0f}")
    if "energy_kwh" in result:
        lines.append(f"Energy: {result['energy_kwh']:,.0f} kWh (PUE {result['pue']}), "
                     f"{result['co2_tonnes']:,.1f} t CO2e at {result['grid_kg_co2_per_kwh']} kg/kWh")
    _print(result, args.json, "\n".join(lines))
    return 0


def cmd_calibrate(args) -> int:
    report = calibration.calibration_report()
    if args.json:
        print(json.dumps(report, default=str))
    else:
        print(calibration.format_report(report))
    return 0


def cmd_memory(args) -> int:
    p = get_preset(args.preset)
    params = args.params or p.params
    result = memory.plan_training_memory(params, p.n_layers, p.hidden, p.n_heads, args.seq_len or p.context,
                                         args.micro_batch, args.optimizer, args.zero, args.dp, args.tp,
                                         args.recompute, args.gpu)
    parts = ", ".join(f"{k} {v:.1f} GB" for k, v in result["per_gpu_gb"].items())
    text = (f"{p.name} ({human(params)} params), ZeRO-{args.zero}, TP {args.tp}, DP {args.dp}, "
            f"recompute={args.recompute}\nPer GPU: {parts} -> {result['total_per_gpu_gb']:.1f} GB")
    if "fits" in result:
        text += (f"\n{result['gpu']} ({result['usable_gb']:.0f} GB usable): "
                 f"{'fits' if result['fits'] else 'does NOT fit'}; minimum GPUs: {result['min_gpus']} "
                 f"({result['min_gpus_reason']})")
    _print(result, args.json, text)
    return 0


def cmd_serve(args) -> int:
    p = get_preset(args.preset)
    result = serving.estimate_serving(p.params, args.gpu, p.n_layers, p.hidden, p.n_kv_heads, p.head_dim,
                                      args.context, args.batch, args.gpus, p.active_params,
                                      weight_bytes=args.weight_bytes, price=args.price,
                                      kv_elems_per_token_per_layer=p.kv_elems_per_token_per_layer,
                                      prompt_tokens=args.prompt_tokens)
    text = (f"{p.name} on {result['gpus']}x {result['gpu']}, batch {result['batch']}, context {result['context']}: "
            f"{result['tokens_per_s']:,.0f} tok/s ({result['bound']}-bound)")
    if "usd_per_million_output_tokens" in result:
        text += f", ${result['usd_per_million_output_tokens']:.2f} per 1M output tokens"
    if not result["fits_in_memory"]:
        text += f"\nWARNING: needs {result['memory_needed_gb']:.0f} GB, only {result['memory_available_gb']:.0f} GB"
    _print(result, args.json, text)
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

    train = sub.add_parser("train", help="FLOPs, GPU-hours, wall-clock days, cost, energy")
    train.add_argument("--params", type=_size, required=True, help="parameters, e.g. 7e9 or 7B")
    train.add_argument("--tokens", type=_size, required=True, help="training tokens, e.g. 2e12 or 2T")
    train.add_argument("--gpu", type=_gpu, required=True, help="accelerator, e.g. H100-80GB, a100_80gb, TPUv4")
    train.add_argument("--gpus", type=_count, help="number of accelerators (adds wall_days)")
    train.add_argument("--mfu", type=_frac, help="model FLOPs utilisation 0-1 (default: calibrated per generation)")
    train.add_argument("--price", type=_money, help="USD per GPU-hour (default: the GPU's on-demand preset)")
    train.add_argument("--price-kind", choices=("on-demand", "spot"), default="on-demand")
    train.add_argument("--active-params", type=_size, help="active parameters per token (MoE)")
    train.add_argument("--preset", choices=sorted(PRESETS), help="adds the attention-FLOPs convention")
    train.add_argument("--json", action="store_true", help="print one JSON object")
    train.set_defaults(func=cmd_train)

    calib = sub.add_parser("calibrate", help="default MFU vs published training runs")
    calib.add_argument("--json", action="store_true")
    calib.set_defaults(func=cmd_calibrate)

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
    mem.add_argument("--json", action="store_true")
    mem.set_defaults(func=cmd_memory)

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

    gpus = sub.add_parser("gpus", help="the accelerator table with sources")
    gpus.add_argument("--json", action="store_true")
    gpus.set_defaults(func=cmd_gpus)

    scale = sub.add_parser("scaling", help="Chinchilla-optimal N and D for a compute budget")
    scale.add_argument("--compute", type=_size, required=True, help="training FLOPs, e.g. 1e24")
    scale.add_argument("--json", action="store_true")
    scale.set_defaults(func=cmd_scaling)
    return parser


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
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
