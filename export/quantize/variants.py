"""Writing the CPU variants beside an export, gating them, and their build-manifest entries."""
from __future__ import annotations

import json
import time
from pathlib import Path

from export.quantize.blocks import BLOCK
from export.quantize.fused import build_fused_decoder
from export.quantize.gate import format_gate, is_decoder, quality_gate
from export.quantize.graph import ALL_INT4, INT8, LOSSLESS_FIRST, Recipe, load_model, quantize_model, save_model


def _bits_name(summary: dict) -> str:
    four = sum(v for k, v in summary["recipes"].items() if k.startswith("q4"))
    return "int4" if four * 2 > summary["matrices"] else "int8"


def _precision(summary: dict, fused: bool) -> str:
    parts = [f"{n}× {r}" for r, n in sorted(summary["recipes"].items())]
    exact = "weights exact vs fp32" if summary["max_abs_error"] == 0 else f"weights max |Δ| {summary['max_abs_error']:.1e}"
    text = f"{_bits_name(summary)} weight blocks of {BLOCK} ({', '.join(parts)}; {exact}), int8 activations"
    return text + (", fused graph" if fused else "")


def write_decoder_variant(model_dir: Path, recipe: Recipe, name: str | None = None, log=print) -> tuple[str, dict]:
    """Fused + quantized decoder -> model_<name>.onnx; returns (name, summary). name None: int4/int8 by content."""
    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    start = time.perf_counter()
    model = load_model(model_dir / "model.onnx")
    try:
        written, summary = build_fused_decoder(model, config, recipe)
        summary["fused"] = True
    except ValueError as exc:  # an architecture the fused graph does not cover: quantize the export as it is
        log(f"    fused graph not possible ({exc}); quantizing the exported graph")
        summary = dict(quantize_model(model, recipe), fused=False)
        written = model
    del model
    name = name or _bits_name(summary)
    summary["files"] = save_model(written, model_dir / f"model_{name}.onnx")
    summary["seconds"] = round(time.perf_counter() - start, 1)
    log(f"    {name}: {summary['recipes']} max |Δw| {summary['max_abs_error']:.2e} in {summary['seconds']} s")
    return name, summary


def write_classifier_variant(model_dir: Path, recipe: Recipe = INT8, name: str = "int8", log=print) -> tuple[str, dict]:
    model_dir = Path(model_dir)
    start = time.perf_counter()
    model = load_model(model_dir / "model.onnx")
    summary = quantize_model(model, recipe)
    summary["files"] = save_model(model, model_dir / f"model_{name}.onnx")
    summary["seconds"] = round(time.perf_counter() - start, 1)
    summary["fused"] = False
    log(f"    {name}: {summary['recipes']} max |Δw| {summary['max_abs_error']:.2e} in {summary['seconds']} s")
    return name, summary


def cpu_variant(spec) -> str | None:
    """The variant a model's registry entry pins as the CPU default (export extra "cpu_variant"), or None:
    then the first written variant that passes its gate serves on CPU."""
    return dict(spec.export.extra).get("cpu_variant")


GATE_KEYS = ("pass", "greedy_identical", "prompts", "first_divergence", "perplexity_fp32", "perplexity",
             "perplexity_change", "max_abs_diff", "same_label_fraction")


def add_cpu_variants(model_dir: Path, spec, variants: dict | None = None, lossy_int4: bool = False,
                     log=print) -> dict:
    """Write the CPU variants of one exported model beside its model.onnx, gate them, return the variants.

    `variants` is the manifest's current variants (default: fp32 only). The result adds one entry per
    written variant ({"file", "precision", "default_for", "devices": ["cpu"], "gate": {...}}); the first
    variant that passes the gate gets default_for ["cpu"] and "cpu" is removed from the others' default_for,
    unless the registry pins the CPU default (cpu_variant): then every variant is still written and gated
    (a deployer can choose one with LAB_VARIANT_<ID>), and only the pinned one is the default.
    Models with nothing to gain (encoders without a classification head) come back unchanged.
    """
    model_dir = Path(model_dir)
    merged = {k: dict(v) for k, v in (variants or {"fp32": {"file": "model.onnx", "precision": "fp32",
                                                             "default_for": ["cpu", "cuda"]}}).items()}
    written: list[tuple[str, dict]] = []
    if spec.task in ("text-generation", "translation") and is_decoder(model_dir):
        written.append(write_decoder_variant(model_dir, LOSSLESS_FIRST, log=log))
        if lossy_int4 and written[0][0] != "int4":
            written.append(write_decoder_variant(model_dir, ALL_INT4, "int4", log=log))
    elif spec.task == "text-classification":
        written.append(write_classifier_variant(model_dir, log=log))
    else:
        log(f"    {spec.id}: no CPU variant (task {spec.task})")
        return merged
    pinned = cpu_variant(spec)
    default = None
    for name, summary in written:
        file = summary["files"][0]
        gate = quality_gate(spec.id, name, model_dir, file=file)
        log(f"    gate {name}: {format_gate(gate)}")
        record_gate(gate)
        entry = {"file": file, "precision": _precision(summary, summary["fused"]), "default_for": [],
                 "devices": ["cpu"], "gate": {k: gate[k] for k in GATE_KEYS if k in gate}}
        if gate["pass"] and default is None and pinned in (None, name):
            default = name
            entry["default_for"] = ["cpu"]
        merged[name] = entry
    if default is None and pinned in merged and merged[pinned].get("gate", {}).get("pass", True):
        default = pinned  # fp32 (never gated) or a written variant that passed
        log(f"    CPU default: {pinned} (pinned by the registry's cpu_variant)")
    if default:
        for name, entry in merged.items():
            rest = [d for d in entry.get("default_for", []) if d != "cpu"]
            entry["default_for"] = ["cpu", *rest] if name == default else rest
    elif "fp32" in merged and not any("cpu" in e.get("default_for", []) for e in merged.values()):
        merged["fp32"]["default_for"] = ["cpu", *merged["fp32"].get("default_for", [])]  # nothing passed
    return merged


GATE_RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


def record_gate(gate: dict) -> Path:
    """Write a gate's result to export/results/gate-<model>-<variant>.json (committed: the run that decided
    which variant a CPU serves is part of the repository, not only of the model cache's build.json)."""
    from bench.common import git_commit, package_versions

    path = GATE_RESULTS_DIR / f"gate-{gate['model']}-{gate['variant']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = dict(gate, date=time.strftime("%Y-%m-%dT%H:%M:%S%z"), commit=git_commit(), versions=package_versions(),
                  device="cpu")
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False, default=str) + "\n")
    return path


def update_manifest(model_dir: Path, variants: dict) -> None:
    """Merge variants into an existing build.json (the CLI path; export/build.py writes its own)."""
    path = Path(model_dir) / "build.json"
    manifest = json.loads(path.read_text())
    manifest["variants"] = variants
    manifest["files"] = {v["file"]: {"bytes": (Path(model_dir) / v["file"]).stat().st_size} for v in variants.values()}
    path.write_text(json.dumps(manifest, indent=2))
